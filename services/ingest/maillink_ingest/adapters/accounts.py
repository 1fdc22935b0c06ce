"""ingest's copy of account configuration (credentials encrypted) and each account's sync status."""
import asyncio
from datetime import datetime, timezone

from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from maillink_schemas.accounts import AccountConfigured, SyncState


class AccountStore:
    def __init__(self, db: AsyncDatabase) -> None:
        self._accounts = db["accounts"]
        self._status = db["account_status"]

    async def save(self, account: AccountConfigured) -> bool:
        """Stores `account` unless a newer version is stored; True when it was stored.

        Only ingest's account consumer calls this: the partition that carries an account has one
        consumer, which applies its records in order, so there is one writer per account. (The API
        used to save too, and lost the race with the consumer: E11000 and HTTP 500. FerretDB v1 on
        SQLite does not even make a filtered replace atomic: two concurrent writers can both match
        and the older version lands last. One writer avoids both.) The filter keeps a replayed,
        older record from overwriting a newer one; when it matches nothing, the upsert's insert
        collides with the newer document, which is the "newer one is there" case.
        """
        doc = {"_id": account.account_id, **account.model_dump(mode="json")}
        try:
            await self._accounts.replace_one({"_id": account.account_id, "version": {"$lte": account.version}},
                                             doc, upsert=True)
            return True
        except DuplicateKeyError:
            return False

    async def wait_applied(self, account_id: str, version: int, timeout_s: float, poll_s: float = 0.05) -> bool:
        """Waits until the stored account has reached `version` (read-your-writes for the API)."""
        deadline = asyncio.get_running_loop().time() + timeout_s
        while True:
            doc = await self._accounts.find_one({"_id": account_id}, {"version": 1})
            if doc is not None and doc.get("version", 0) >= version:
                return True
            if asyncio.get_running_loop().time() > deadline:
                return False
            await asyncio.sleep(poll_s)

    async def get(self, account_id: str) -> AccountConfigured | None:
        doc = await self._accounts.find_one({"_id": account_id})
        return AccountConfigured.model_validate(doc) if doc else None

    async def set_status(self, account_id: str, state: SyncState, error: str | None, synced: int | None = None) -> None:
        update = {"state": state.value, "error": error, "updated_at": datetime.now(timezone.utc)}
        if synced is not None:
            update["messages_synced"] = synced
        await self._status.update_one({"_id": account_id}, {"$set": update}, upsert=True)

    async def status(self, account_id: str) -> dict | None:
        return await self._status.find_one({"_id": account_id})
