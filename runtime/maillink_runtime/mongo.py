"""The document store client: PyMongo's native async API (Motor's official successor)."""
from pymongo import AsyncMongoClient
from pymongo.asynchronous.database import AsyncDatabase


def connect(url: str) -> AsyncMongoClient:
    # Majority-acknowledged writes: an effect counts as durable only once the store says so.
    return AsyncMongoClient(url, serverSelectionTimeoutMS=5000, w="majority", tz_aware=True)


async def ping(db: AsyncDatabase) -> None:
    await db.command("ping")
