"""Per-user mail settings (and each company's blocklist) with the time each took effect, and the
addresses of every mailbox account a user connected. Written only by the facts consumer
(handlers/facts.py), keyed like their topics, so each document has a single writer."""
from pymongo.asynchronous.database import AsyncDatabase

from maillink_schemas.matcher import MailSettingsChanged

from .messages import by_ids


def settings_key(scope: str, owner_id: str) -> str:
    return f"{scope}:{owner_id}"


class SettingsStore:
    def __init__(self, db: AsyncDatabase) -> None:
        self.settings = db["settings"]
        self.accounts = db["user_accounts"]

    async def add(self, event: MailSettingsChanged) -> dict:
        """Appends the change to the history (idempotent by version); returns the stored entry."""
        key = settings_key(event.scope, event.owner_id)
        entry = {**event.model_dump(mode="python", exclude={"event_id", "occurred_at", "scope", "owner_id"}),
                 "effective_at": event.occurred_at}
        doc = await self.settings.find_one({"_id": key}) or {"_id": key, "history": []}
        if all(e.get("version") != event.version for e in doc["history"]):
            doc["history"] = sorted([*doc["history"], entry], key=lambda e: e["version"])[-100:]
            await self.settings.replace_one({"_id": key}, doc, upsert=True)
        return entry

    async def histories(self, keys: list[str]) -> dict[str, list[dict]]:
        return {k: d.get("history", []) for k, d in (await by_ids(self.settings, keys)).items()}

    async def current(self, scope: str, owner_id: str) -> dict | None:
        doc = await self.settings.find_one({"_id": settings_key(scope, owner_id)})
        return max(doc["history"], key=lambda e: e["version"]) if doc and doc.get("history") else None

    # --- the user's connected accounts (own addresses) ----------------------------------------
    async def set_account(self, user_id: str, account_id: str, email: str | None, company_id: str | None) -> bool:
        """Records (or with email None, forgets) one account's address. True while the user's
        messages still need a re-check for it (`pending` survives a crash until `done`)."""
        doc = await self.accounts.find_one({"_id": user_id}) or {"_id": user_id, "accounts": {}}
        before = dict(doc["accounts"])
        if email:
            doc["accounts"][account_id] = email.lower()
        else:
            doc["accounts"].pop(account_id, None)
        if company_id:
            doc["company_id"] = company_id
        doc["pending"] = doc.get("pending", False) or before != doc["accounts"]
        await self.accounts.replace_one({"_id": user_id}, doc, upsert=True)
        return doc["pending"]

    async def done(self, user_id: str) -> None:
        await self.accounts.update_one({"_id": user_id}, {"$set": {"pending": False}})

    async def user_accounts(self, user_ids: list[str]) -> dict[str, dict]:
        return await by_ids(self.accounts, user_ids)
