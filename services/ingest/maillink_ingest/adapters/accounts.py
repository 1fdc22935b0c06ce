"""ingest's copy of account configuration (credentials encrypted) and each account's sync status."""
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

        The API and ingest's own account consumer write the same account within milliseconds of
        each other. One conditional replace settles it with no read first: the filter matches only
        an older (or equal) version; when it matches nothing, the upsert's insert collides with the
        newer document (duplicate key), which means "a newer one is there" — or, for a brand-new
        account, that the other writer inserted first, so the replace is tried once more.
        """
        doc = {"_id": account.account_id, **account.model_dump(mode="json")}
        for _ in range(3):
            try:
                await self._accounts.replace_one({"_id": account.account_id, "version": {"$lte": account.version}},
                                                 doc, upsert=True)
                return True
            except DuplicateKeyError:
                stored = await self._accounts.find_one({"_id": account.account_id}, {"version": 1})
                if stored is not None and stored.get("version", 0) > account.version:
                    return False
        raise RuntimeError(f"account {account.account_id} could not be saved after three attempts")

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
