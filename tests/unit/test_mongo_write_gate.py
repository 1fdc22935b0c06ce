"""The write gate (runtime mongo.py): one write command at a time per process, because several bulk
write commands in flight at once deadlock FerretDB v1 on SQLite (tests/integration/test_store_write_gate_deadlock.py
shows it on the real server). bulk_write_chunked and insert_new take it for every service; `gated(db)`
extends it to every write of a database (the matcher) without taking it twice."""
import asyncio

from maillink_runtime.mongo import bulk_write_chunked, gated, insert_new


class Recording:
    """A collection that records how many write commands overlap."""

    def __init__(self, log):
        self.log = log

    async def _write(self, *args, **kwargs):
        self.log["now"] += 1
        self.log["max"] = max(self.log["max"], self.log["now"])
        self.log["commands"] += 1
        await asyncio.sleep(0.01)
        self.log["now"] -= 1
        return "written"

    bulk_write = insert_many = update_one = replace_one = _write

    async def find_one(self, *args):
        self.log["reads"] += 1
        await asyncio.sleep(0.01)
        return {"_id": 1}


def _log():
    return {"now": 0, "max": 0, "reads": 0, "commands": 0}


def test_write_commands_of_two_consumers_never_overlap():
    log = _log()
    db = gated({"messages": Recording(log), "persons": Recording(log)})

    async def main():
        return await asyncio.gather(*(db["messages"].bulk_write([]) for _ in range(5)),
                                    *(db["persons"].update_one({}, {}) for _ in range(5)),
                                    db["persons"].insert_many([]))

    assert asyncio.run(main()) == ["written"] * 11
    assert log["max"] == 1


def test_reads_are_not_gated():
    log = _log()
    db = gated({"messages": Recording(log)})

    async def main():
        await asyncio.gather(db["messages"].bulk_write([]), *(db["messages"].find_one({}) for _ in range(3)))

    asyncio.run(main())
    assert log["reads"] == 3 and log["max"] == 1
    assert gated(db) is db


def test_bulk_helpers_are_gated_for_every_caller():
    # Plain collections (ingest, outbound): the helpers' commands never overlap, across tasks.
    log = _log()
    a, b = Recording(log), Recording(log)

    async def main():
        await asyncio.gather(bulk_write_chunked(a, list(range(200))), bulk_write_chunked(b, list(range(200))),
                             insert_new(a, [{"_id": i} for i in range(2500)]))

    asyncio.run(main())
    assert log["max"] == 1 and log["commands"] == 5 + 5 + 3


def test_bulk_helpers_through_a_gated_database_take_the_gate_once():
    # Through gated(db) (the matcher) the helpers must not wait for the lock they hold: this would
    # hang (asyncio.Lock is not re-entrant); the wait_for only turns a hang into a failure.
    log = _log()
    db = gated({"messages": Recording(log), "persons": Recording(log)})

    async def main():
        await asyncio.wait_for(asyncio.gather(
            bulk_write_chunked(db["messages"], list(range(100))), insert_new(db["persons"], [{"_id": 1}]),
            db["persons"].update_one({}, {})), 30)

    asyncio.run(main())
    assert log["max"] == 1 and log["commands"] == 3 + 1 + 1
