"""Reads by `_id`, the one query the embedded store answers without a full scan."""
import asyncio

_CONCURRENCY = 64


async def by_ids(collection, ids: list[str], projection: dict | None = None) -> dict[str, dict]:
    """One `_id` lookup each, a few at a time: an `$in` on `_id` is a full scan on the embedded store."""
    found: dict[str, dict] = {}
    gate = asyncio.Semaphore(_CONCURRENCY)

    async def one(doc_id: str) -> None:
        async with gate:
            doc = await collection.find_one({"_id": doc_id}, projection)
        if doc is not None:
            found[doc_id] = doc

    await asyncio.gather(*(one(i) for i in dict.fromkeys(ids)))
    return found
