"""A projection of a compacted topic, one document per record id; an older version never
overwrites a newer one, so a replay or a late redelivery changes nothing."""
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError


class VersionedStore:
    def __init__(self, db: AsyncDatabase, name: str) -> None:
        self.collection = db[name]

    async def put(self, record_id: str, version: int, doc: dict) -> bool:
        # The filter keeps an older record from overwriting a newer one; when it matches nothing
        # because a newer one is stored, the upsert's insert hits the _id and is refused.
        try:
            await self.collection.replace_one({"_id": record_id, "version": {"$lte": version}},
                                              {**doc, "_id": record_id, "version": version}, upsert=True)
            return True
        except DuplicateKeyError:
            return False

    async def get(self, record_id: str | None) -> dict | None:
        if not record_id:
            return None
        doc = await self.collection.find_one({"_id": record_id})
        return None if doc is None or doc.get("deleted") else doc
