"""The messages index, threads and message-id -> thread map, in matcher's own database."""
from pymongo import DESCENDING
from pymongo.errors import DuplicateKeyError
from pymongo.asynchronous.database import AsyncDatabase

from maillink_schemas.base import deterministic_id


class MessageStore:
    def __init__(self, db: AsyncDatabase) -> None:
        self._messages = db["messages"]
        self._threads = db["threads"]
        self._refs = db["thread_refs"]

    async def get(self, message_key: str) -> dict | None:
        return await self._messages.find_one({"_id": message_key})

    async def insert_if_absent(self, doc: dict, location: dict | None) -> dict:
        """Stores the message once; a later sighting only adds where else it sits. Returns the stored doc."""
        # Not an upsert with $setOnInsert: FerretDB v1 drops null fields and empty arrays from a
        # $setOnInsert document. A plain insert keeps the document whole; losing the race to a
        # concurrent insert of the same key is the idempotent case.
        try:
            await self._messages.insert_one({**doc, "locations": [location] if location else []})
        except DuplicateKeyError:
            if location:
                await self.add_location(doc["_id"], location)
        return await self._messages.find_one({"_id": doc["_id"]})

    async def add_location(self, message_key: str, location: dict) -> None:
        await self._messages.update_one({"_id": message_key}, {"$addToSet": {"locations": location}})

    async def mark_published(self, message_key: str) -> None:
        await self._messages.update_one({"_id": message_key}, {"$set": {"published": True}})

    # --- threads -------------------------------------------------------------------------
    async def thread_of_references(self, account_id: str, ids: list[str]) -> str | None:
        # One _id lookup each, nearest ancestor first (an $in read scans on the embedded store).
        for message_id in ids[:20]:
            doc = await self._refs.find_one({"_id": deterministic_id(account_id, message_id)})
            if doc:
                return doc["thread_id"]
        return None

    async def remember_message_id(self, account_id: str, message_id: str, thread_id: str) -> None:
        key = deterministic_id(account_id, message_id)
        await self._refs.update_one({"_id": key}, {"$setOnInsert": {"thread_id": thread_id}}, upsert=True)

    async def thread_deal(self, thread_id: str) -> str | None:
        doc = await self._threads.find_one({"_id": thread_id}, {"deal_id": 1})
        return doc.get("deal_id") if doc else None

    async def set_thread_deal_if_unset(self, thread_id: str, deal_id: str) -> None:
        await self._threads.update_one({"_id": thread_id}, {"$setOnInsert": {"deal_id": deal_id}}, upsert=True)

    # --- queries -------------------------------------------------------------------------
    async def visible(self, criteria: dict, viewer: str, limit: int) -> list[dict]:
        # Private mail is visible to its owner only: no other user, not even an admin.
        query = {**criteria, "deleted": False, "$or": [{"visibility": "shared"}, {"user_id": viewer}]}
        cursor = self._messages.find(query, {"locations": 0}).sort("sort_date", DESCENDING).limit(limit)
        return [d async for d in cursor]

    async def ensure_indexes(self) -> None:
        await self._messages.create_index([("person_ids", 1), ("sort_date", -1)])
        await self._messages.create_index([("deal_id", 1), ("sort_date", -1)])
        await self._messages.create_index([("user_id", 1), ("sort_date", -1)])
        await self._messages.create_index("thread_id")
