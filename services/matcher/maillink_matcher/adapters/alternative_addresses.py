"""A user's verified Smart Bcc alternative addresses (`mail.user.addresses.v1`, from bcc-gateway):
own addresses, never participants. Kept on the user's `user_accounts` document (field `smart_bcc`)
beside their connected accounts, so the resolver reads every own address of a user in the one `_id`
lookup it already makes (SettingsStore.user_accounts). Written only by the facts consumer.

Each event is the user's complete set with a version; an older version never overwrites a newer
one. A change sets the document's `pending` flag (shared with connected-account changes: both
re-check the same messages, the user's), and SettingsStore.done clears it once the re-check is
published, so a crash in between is finished by the redelivered event.
"""
from pymongo.asynchronous.database import AsyncDatabase

from maillink_schemas.bcc import UserAddressesVerified


class AlternativeAddresses:
    def __init__(self, db: AsyncDatabase) -> None:
        self.accounts = db["user_accounts"]

    async def apply(self, event: UserAddressesVerified) -> bool:
        """Stores the set; True while the user's messages still need a re-check for it."""
        doc = await self.accounts.find_one({"_id": event.user_id}) or {}
        if doc.get("smart_bcc_version", 0) > event.version:
            return bool(doc.get("pending"))   # a replay of an older set
        addresses = sorted({a.strip().lower() for a in event.addresses if a.strip()})
        pending = bool(doc.get("pending")) or addresses != doc.get("smart_bcc", [])
        await self.accounts.update_one(
            {"_id": event.user_id},
            {"$set": {"smart_bcc": addresses, "smart_bcc_version": event.version, "pending": pending},
             "$setOnInsert": {"accounts": {}}}, upsert=True)
        return pending
