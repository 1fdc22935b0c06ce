"""Against the real store (FerretDB): status and folder-state writes of many accounts share bulk
commands and still land exactly as if written one by one; many accounts asking for their folder
states at once share scans and each gets its own, current states."""
import asyncio

import pytest
from pymongo import monitoring

from maillink_ingest.adapters.accounts import AccountStore
from maillink_ingest.adapters.batched_writes import BatchedWrites
from maillink_ingest.adapters.folder_state import FolderState, FolderStateStore
from maillink_runtime import mongo
from maillink_schemas.accounts import SyncState
from tests.conftest import MONGODB_URL

pytestmark = pytest.mark.integration
ACCOUNTS = 300


class Commands(monitoring.CommandListener):
    """Counts the commands the client sends, by name."""

    def __init__(self) -> None:
        self.names: list[str] = []

    def started(self, event) -> None:
        self.names.append(event.command_name)

    def succeeded(self, event) -> None: ...

    def failed(self, event) -> None: ...


@pytest.fixture
async def store(namespace):
    commands = Commands()
    client = mongo.connect(MONGODB_URL, event_listeners=[commands])
    try:
        yield client[f"{namespace.replace('.', '_')}maillink_ingest"], commands
    finally:
        await client.close()


async def test_status_writes_of_many_accounts_share_commands_and_all_land(store):
    db, commands = store
    accounts = AccountStore(db)
    commands.names.clear()
    await asyncio.gather(*(accounts.set_status(f"a{i}", SyncState.CONNECTING, None) for i in range(ACCOUNTS)))
    writes = [n for n in commands.names if n in ("update", "insert")]
    assert len(writes) < ACCOUNTS / 5  # bulk commands of up to 40, not one per account
    docs = {d["_id"]: d async for d in db["account_status"].find({})}
    assert len(docs) == ACCOUNTS and all(d["state"] == "connecting" for d in docs.values())


async def test_writes_of_one_document_waiting_together_end_as_applied_in_order(store):
    db, _ = store
    writes = BatchedWrites(db["docs"])
    await writes.update("d", {"a": 1, "b": 1}, upsert=True)
    # The first of these goes out at once; the others wait together and are merged.
    await asyncio.gather(writes.update("d", {"a": 2}), writes.update("d", {"b": 3, "c": 3}),
                         writes.update("d", unset=("a",)), writes.update("d", {"e": 5}))
    assert await db["docs"].find_one({"_id": "d"}) == {"_id": "d", "b": 3, "c": 3, "e": 5}
    await asyncio.gather(writes.replace("d", {"x": 1}), writes.update("d", {"y": 2}), writes.update("d", unset=("x",)))
    assert await db["docs"].find_one({"_id": "d"}) == {"_id": "d", "y": 2}
    await writes.update("absent", unset=("refused",))  # no upsert: nothing is created
    assert await db["docs"].find_one({"_id": "absent"}) is None


async def test_a_cancelled_write_that_was_not_sent_yet_is_dropped(store):
    db, _ = store
    writes = BatchedWrites(db["docs"], chunk=1)
    first = asyncio.create_task(writes.update("first", {"v": 1}, upsert=True))
    second = asyncio.create_task(writes.update("second", {"v": 1}, upsert=True))
    await asyncio.sleep(0)  # both queued; "first" goes out alone (chunk=1), "second" waits
    second.cancel()
    await first
    with pytest.raises(asyncio.CancelledError):
        await second
    await writes.update("third", {"v": 1}, upsert=True)  # the writer goes on after a cancellation
    assert sorted([d["_id"] async for d in db["docs"].find({})]) == ["first", "third"]


async def test_folder_states_of_many_accounts_are_read_in_shared_scans(store):
    db, commands = store
    states = FolderStateStore(db)
    await asyncio.gather(*(states.save(FolderState(f"a{i}", folder, synced=i))
                           for i in range(ACCOUNTS) for folder in ("INBOX", "Sent")))
    commands.names.clear()
    found = await asyncio.gather(*(states.for_account(f"a{i}") for i in range(ACCOUNTS)))
    assert [sorted((s.folder, s.synced) for s in got) for got in found] == \
        [[("INBOX", i), ("Sent", i)] for i in range(ACCOUNTS)]
    assert commands.names.count("find") <= 2  # the first caller's scan, then one for everyone else
    # A caller sees what it wrote before it asked, and gets objects of its own.
    again = await asyncio.gather(states.for_account("a1"), states.for_account("a1"))
    assert again[0] is not again[1] and again[0][0] is not again[1][0]
    one = again[0][0]
    one.synced = 999
    await states.save(one)
    assert {s.folder: s.synced for s in await states.for_account("a1")}[one.folder] == 999
    assert await states.for_account("nobody") == []


async def test_the_folder_index_names_the_stored_folders_without_a_scan(store):
    db, commands = store
    states = FolderStateStore(db)
    # States stored before the index existed are indexed once, at start.
    await db["folder_state"].insert_many([{"_id": f"old\x1f{f}", "account_id": "old", "folder": f}
                                          for f in ("INBOX", "Archive")])
    await states.build_index()
    await states.build_index()  # once per database: the second start does not scan
    await db["folder_state"].insert_one({"_id": "old\x1fLater", "account_id": "old", "folder": "Later"})
    await states.build_index()
    assert await states.folders("old") == ["Archive", "INBOX"]
    # New folders are named before their first state is saved; a deleted state leaves the index.
    await states.remember("new", "INBOX")
    await states.remember("new", "INBOX")
    await states.remember("new", "Sent")
    await states.save(FolderState("new", "Sent"))
    commands.names.clear()
    assert await states.folders("new") == ["INBOX", "Sent"]
    assert commands.names == ["find"]  # one read by _id
    await states.delete("new", "Sent")
    assert await states.folders("new") == ["INBOX"]
    await states.delete_account("old")
    assert await states.folders("old") == []
