"""ingest's copy of account configuration (credentials encrypted) and each account's sync status."""
from datetime import datetime, timezone

from pymongo.asynchronous.database import AsyncDatabase

from maillink_schemas.accounts import AccountConfigured, SyncState


class AccountStore:
    def __init__(self, db: AsyncDatabase) -> None:
        self._accounts = db["accounts"]
        self._status = db["account_status"]

    async def save(self, account: AccountConfigured) -> None:
        # A stale version never overwrites a newer one (replays of the compacted topic).
        existing = await self._accounts.find_one({"_id": account.account_id}, {"version": 1})
        if existing is None or existing.get("version", 0) <= account.version:
            doc = {"_id": account.account_id, **account.model_dump(mode="json")}
            await self._accounts.replace_one({"_id": account.account_id}, doc, upsert=True)

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
