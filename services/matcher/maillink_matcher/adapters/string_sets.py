"""Documents that hold one set of strings (`{"_id": ..., <field>: [...]}`), added to in bulk: the
record views, their days lists, the address index.

On the embedded store an insert costs about a sixth of an update (FerretDB v1 on SQLite: ~7,900
inserts/s against ~770 `$addToSet`/s), and most documents the mail writer adds to are new (a
person's first message of a day, an address seen for the first time). So the caller says which
documents it knows to exist (`known`, a snapshot of `_id`s it keeps up to date; None: unknown) and
the rest are inserted; one that exists after all (another process wrote it, a redelivery) is
added to with `$addToSet` instead, so nothing is lost either way.
"""
from pymongo import UpdateOne

from maillink_runtime.mongo import bulk_write_chunked, insert_new

from .recent import RecentSet


async def add_strings(collection, field: str, items: dict[str, set[str]], known: RecentSet | set[str] | None) -> None:
    """Adds items[_id] to `field` of each document; updates `known` with every `_id` written."""
    new = [{"_id": i, field: sorted(v)} for i, v in items.items() if known is not None and i not in known]
    updates = {i: v for i, v in items.items() if known is None or i in known}
    for i in await insert_new(collection, new):   # it existed after all: add to it
        updates[new[i]["_id"]] = set(new[i][field])
    await bulk_write_chunked(collection, [UpdateOne({"_id": i}, {"$addToSet": {field: {"$each": sorted(v)}}}, upsert=True)
                                          for i, v in updates.items()])
    if known is not None:
        known.update(items)


async def snapshot_ids(collection, max_docs: int) -> RecentSet | None:
    """Every `_id` of the collection (a scan of `_id`s), or None when it is too large to keep; kept
    bounded as it grows (adapters/recent.py)."""
    if await collection.estimated_document_count() > max_docs:
        return None
    return RecentSet([d["_id"] async for d in collection.find({}, {"_id": 1})], limit=max(max_docs // 2, 1))
