"""Where each delivered message sits: (folder, UIDVALIDITY, UID) -> message key, Message-ID, flags, blob.

Ingest's own record of what it published. It turns a server's "UID 7 vanished" or "UID 7 is
\\Seen now" into events about a message key, lets a UIDVALIDITY change be checked against the
Message-IDs seen before, and lets reconciliation find delivered messages whose blob is missing.
A location that left the server is kept with `gone_at` until its expunge event is published
(see sync/changes.py for why that waits).
"""
import asyncio
from dataclasses import dataclass
from datetime import datetime

from pymongo import ReplaceOne, UpdateOne
from pymongo.asynchronous.database import AsyncDatabase

from maillink_runtime.mongo import bulk_write_chunked, insert_new


@dataclass(frozen=True)
class Location:
    folder: str
    uidvalidity: int
    uid: int
    message_key: str
    message_id: str | None
    flags: tuple[str, ...]
    blob_id: str
    gone_at: datetime | None = None


BY_ID_MAX = 50  # UIDs read one by one (by _id) before one scan is cheaper


def _id(account_id: str, folder: str, uidvalidity: int, uid: int) -> str:
    return f"{account_id}\x1f{folder}\x1f{uidvalidity}\x1f{uid}"


def _set(account_id: str, loc: "Location", fields: dict) -> UpdateOne:
    return UpdateOne({"_id": _id(account_id, loc.folder, loc.uidvalidity, loc.uid)}, {"$set": fields})


def _document(account_id: str, i: Location) -> dict:
    return {"account_id": account_id, "folder": i.folder, "uidvalidity": i.uidvalidity, "uid": i.uid,
            "message_key": i.message_key, "message_id": i.message_id, "flags": list(i.flags),
            "blob_id": i.blob_id, "gone_at": None}


def _location(doc: dict) -> Location:
    return Location(doc["folder"], doc["uidvalidity"], doc["uid"], doc["message_key"], doc.get("message_id"),
                    tuple(doc.get("flags", ())), doc["blob_id"], doc.get("gone_at"))


class LocationStore:
    def __init__(self, db: AsyncDatabase) -> None:
        self._col = db["locations"]

    async def record(self, account_id: str, items: list[Location]) -> None:
        # Measured on FerretDB v1: a batch of upserts cost ~5x the whole rest of delivery, plain inserts
        # a fraction of it. Redeliveries are rare, so insert, and replace only what already existed.
        docs = {_id(account_id, i.folder, i.uidvalidity, i.uid): _document(account_id, i) for i in items}
        if not docs:
            return
        keys = list(docs)
        existing = await insert_new(self._col, [{"_id": k, **docs[k]} for k in keys])
        await bulk_write_chunked(self._col, [ReplaceOne({"_id": keys[i]}, docs[keys[i]]) for i in existing])

    async def in_folder(self, account_id: str, folder: str, uidvalidity: int | None = None,
                        uids: list[int] | None = None) -> dict[int, Location]:
        query: dict = {"account_id": account_id, "folder": folder, "gone_at": None}
        if uidvalidity is not None:
            query["uidvalidity"] = uidvalidity
        if uids is not None:
            query["uid"] = {"$in": uids}
        return {d["uid"]: _location(d) async for d in self._col.find(query)}

    async def at(self, account_id: str, folder: str, uidvalidity: int, uids: list[int]) -> dict[int, Location]:
        """The current locations of these UIDs. FerretDB v1 pushes down only `_id` equality: a few
        are read by `_id` (about 1 ms each), many by one scan of the collection."""
        if len(uids) > BY_ID_MAX:
            return await self.in_folder(account_id, folder, uidvalidity, uids)
        docs = await asyncio.gather(*(self._col.find_one({"_id": _id(account_id, folder, uidvalidity, uid)})
                                      for uid in uids))
        return {d["uid"]: _location(d) for d in docs if d is not None and d.get("gone_at") is None}

    async def for_message(self, account_id: str, message_key: str) -> list[Location]:
        """Every current location of one message (sync-back commands address messages by key)."""
        docs = self._col.find({"account_id": account_id, "message_key": message_key, "gone_at": None})
        return sorted([_location(d) async for d in docs], key=lambda loc: (loc.folder, loc.uidvalidity, loc.uid))

    async def other_generations(self, account_id: str, folder: str, uidvalidity: int) -> list[Location]:
        return [_location(d) async for d in self._col.find(
            {"account_id": account_id, "folder": folder, "uidvalidity": {"$ne": uidvalidity}, "gone_at": None})]

    async def relabel(self, account_id: str, folder: str, old: int, new: int) -> None:
        """A spurious UIDVALIDITY change: the same messages at the same UIDs, under the new number."""
        moved = [loc for loc in (await self.in_folder(account_id, folder, old)).values()]
        await self.record(account_id, [Location(loc.folder, new, loc.uid, loc.message_key, loc.message_id,
                                                loc.flags, loc.blob_id) for loc in moved])
        await self.forget(account_id, moved)

    async def set_flags(self, account_id: str, changes: list[tuple[Location, tuple[str, ...]]]) -> None:
        if changes:
            await bulk_write_chunked(self._col, [_set(account_id, loc, {"flags": list(flags)}) for loc, flags in changes])

    async def mark_gone(self, account_id: str, locations: list[Location], at: datetime) -> None:
        if locations:
            # In small commands: one of hundreds of updates deadlocks FerretDB v1 (runtime/mongo.py).
            await bulk_write_chunked(self._col, [_set(account_id, loc, {"gone_at": at}) for loc in locations])

    async def gone(self, account_id: str, folder: str) -> list[Location]:
        return [_location(d) async for d in self._col.find(
            {"account_id": account_id, "folder": folder, "gone_at": {"$ne": None}})]

    async def whole_folder(self, account_id: str, folder: str) -> list[Location]:
        """Every stored location of a folder: all UIDVALIDITY generations, gone ones (expunge pending) too."""
        return sorted([_location(d) async for d in self._col.find({"account_id": account_id, "folder": folder})],
                      key=lambda loc: (loc.uidvalidity, loc.uid))

    async def forget(self, account_id: str, locations: list[Location]) -> None:
        if locations:
            await self._col.delete_many({"_id": {"$in": [_id(account_id, loc.folder, loc.uidvalidity, loc.uid)
                                                         for loc in locations]}})

    async def delete_account(self, account_id: str) -> None:
        """A removed account's locations go with its credentials and folder state."""
        await self._col.delete_many({"account_id": account_id})

    async def ensure_indexes(self) -> None:
        await self._col.create_index([("account_id", 1), ("folder", 1), ("uidvalidity", 1)])
        await self._col.create_index([("account_id", 1), ("message_key", 1)])  # sync-back: by message key
