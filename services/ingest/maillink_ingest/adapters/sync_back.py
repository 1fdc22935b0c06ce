"""Whose mailbox may be changed by CRM actions: each user's sync-back setting, from mail.settings.v1.

The matcher owns the settings; ingest keeps this one bit per user (a projection of the compacted
topic, rebuilt by replaying it). A replayed, older record never overwrites a newer one: the
stored version only grows. Company-scope records carry no sync-back setting and are ignored.
"""
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from maillink_schemas.matcher import MailSettingsChanged, SettingsScope


class SyncBackSettings:
    def __init__(self, db: AsyncDatabase) -> None:
        self._col = db["sync_back"]

    async def apply(self, settings: MailSettingsChanged) -> None:
        if settings.scope != SettingsScope.USER:
            return
        doc = {"_id": settings.owner_id, "sync_back": settings.sync_back, "version": settings.version}
        try:
            await self._col.replace_one({"_id": settings.owner_id, "version": {"$lte": settings.version}}, doc,
                                        upsert=True)
        except DuplicateKeyError:
            pass  # a newer version is stored: this record is older (a replay)

    async def enabled(self, user_id: str) -> bool:
        doc = await self._col.find_one({"_id": user_id})
        return bool(doc and doc.get("sync_back"))
