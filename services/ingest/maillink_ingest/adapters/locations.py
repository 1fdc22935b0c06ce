"""Where each message sits on the server: message key -> (folder, UIDVALIDITY, UID), ingest's own.

Delivery records every location it publishes, so a mailbox command addressed by message key
(sync/commands.py) finds the message's current UIDs without asking the matcher. One document per
location, keyed by the location itself: recording again is an idempotent upsert, and a message in
two folders simply has two documents. A moved or expunged message leaves a stale entry until
someone forgets it; readers verify a location on the server before acting on it (UIDVALIDITY and
the UID), so a stale entry costs one check, never a wrong change.
"""
from pymongo import UpdateOne
from pymongo.asynchronous.database import AsyncDatabase

from maillink_schemas.mail import MailboxLocation


def _id(account_id: str, folder: str, uidvalidity: int, uid: int) -> str:
    return f"{account_id}\x1f{folder}\x1f{uidvalidity}\x1f{uid}"


class LocationStore:
    def __init__(self, db: AsyncDatabase) -> None:
        self._col = db["locations"]

    async def record(self, account: str, folder: str, uidvalidity: int, uid: int, message_key: str) -> None:
        await self.record_many(account, [(folder, uidvalidity, uid, message_key)])

    async def record_many(self, account: str, rows: list[tuple[str, int, int, str]]) -> None:
        if rows:
            await self._col.bulk_write([UpdateOne(
                {"_id": _id(account, folder, uidvalidity, uid)},
                {"$set": {"account_id": account, "folder": folder, "uidvalidity": uidvalidity, "uid": uid,
                          "message_key": key}}, upsert=True) for folder, uidvalidity, uid, key in rows],
                ordered=False)

    async def find(self, account: str, message_key: str) -> list[MailboxLocation]:
        docs = self._col.find({"account_id": account, "message_key": message_key})
        return sorted([MailboxLocation(folder=d["folder"], uidvalidity=d["uidvalidity"], uid=d["uid"])
                       async for d in docs], key=lambda loc: (loc.folder, loc.uidvalidity, loc.uid))

    async def forget(self, account: str, location: MailboxLocation) -> None:
        await self._col.delete_one({"_id": _id(account, location.folder, location.uidvalidity, location.uid)})

    async def delete_account(self, account: str) -> None:
        await self._col.delete_many({"account_id": account})

    async def ensure_indexes(self) -> None:
        await self._col.create_index([("account_id", 1), ("message_key", 1)])
