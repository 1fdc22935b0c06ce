"""A token that changes whenever the facts consumer changes a fact the mail writer decides from.

The mail writer keeps the facts in memory (adapters/facts_cache.py) and reads this one document
per batch instead of re-reading every fact: the same token before and after a batch means no
fact changed in between. The facts consumer writes a fresh random token (never an increment:
FerretDB v1 does not make a read-modify-write atomic, and two lost increments could restore an
old value; two racing random tokens still differ from the one the writer read). Order on the
facts side: change the fact, then the token, then look for the affected messages."""
import uuid

from pymongo.asynchronous.database import AsyncDatabase

_ID = "facts"


class FactsClock:
    def __init__(self, db: AsyncDatabase) -> None:
        self.collection = db["facts_clock"]

    async def tick(self) -> None:
        await self.collection.replace_one({"_id": _ID}, {"_id": _ID, "token": uuid.uuid4().hex}, upsert=True)

    async def token(self) -> str | None:
        doc = await self.collection.find_one({"_id": _ID})
        return doc["token"] if doc else None
