"""Regression (found by `make chaos`): a real UIDVALIDITY reset of a folder of 637 messages made
ingest mark every old location gone in ONE bulk command of 637 updates. FerretDB v1 (SQLite) holds a
pooled connection per statement until the command ends: the pool ran dry and the server deadlocked,
so that database answered nothing any more (ingest's sync and its accounts API hung for good).
Against the real store: bulk updates of hundreds of locations complete and apply to every one."""
import asyncio
from datetime import datetime, timezone

import pytest

from maillink_ingest.adapters.locations import Location, LocationStore
from maillink_runtime import mongo
from tests.conftest import MONGODB_URL

pytestmark = pytest.mark.integration
COUNT = 600  # well past the ~100 statements at which one command exhausted the pool


def locations(uidvalidity: int) -> list[Location]:
    return [Location("INBOX", uidvalidity, uid, f"key-{uid}", f"<m{uid}@example.com>", (), "0" * 64)
            for uid in range(1, COUNT + 1)]


async def test_hundreds_of_location_updates_go_through_and_leave_the_store_answering(namespace):
    client = mongo.connect(MONGODB_URL)
    db = client[f"{namespace.replace('.', '_')}maillink_ingest"]
    store, old = LocationStore(db), locations(7)
    try:
        await store.record("acc", old)
        now = datetime.now(timezone.utc)
        # The guard only turns a deadlock into a failure instead of a hung test run.
        await asyncio.wait_for(store.set_flags("acc", [(loc, ("\\Seen",)) for loc in old]), 120)
        await asyncio.wait_for(store.mark_gone("acc", old, now), 120)
        await asyncio.wait_for(store.record("acc", old), 120)  # redelivery: every one a replace

        docs = [d async for d in db["locations"].find({"account_id": "acc"})]
        assert len(docs) == COUNT
        assert all(d["flags"] == [] and d["gone_at"] is None for d in docs)  # the replace restored them

        await asyncio.wait_for(store.set_flags("acc", [(loc, ("\\Seen",)) for loc in old]), 120)
        await asyncio.wait_for(store.mark_gone("acc", old, now), 120)
        assert len(await store.gone("acc", "INBOX")) == COUNT
        assert all(d["flags"] == ["\\Seen"] for d in await db["locations"].find({"account_id": "acc"}).to_list())
    finally:
        await client.close()
