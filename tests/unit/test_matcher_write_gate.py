"""The matcher's write gate (adapters/write_gate.py): the mail writer and the facts consumer share
one process, and two write commands in flight at once deadlock FerretDB v1 on SQLite."""
import asyncio

from maillink_matcher.adapters.write_gate import gated


class Recording:
    """A collection that records how many write commands overlap."""

    def __init__(self, log):
        self.log = log

    async def _write(self, *args, **kwargs):
        self.log["now"] += 1
        self.log["max"] = max(self.log["max"], self.log["now"])
        await asyncio.sleep(0.01)
        self.log["now"] -= 1
        return "written"

    bulk_write = insert_many = update_one = replace_one = _write

    async def find_one(self, *args):
        self.log["reads"] += 1
        await asyncio.sleep(0.01)
        return {"_id": 1}


def test_write_commands_of_two_consumers_never_overlap():
    log = {"now": 0, "max": 0, "reads": 0}
    db = gated({"messages": Recording(log), "persons": Recording(log)})

    async def main():
        results = await asyncio.gather(*(db["messages"].bulk_write([]) for _ in range(5)),
                                       *(db["persons"].update_one({}, {}) for _ in range(5)),
                                       db["persons"].insert_many([]))
        return results

    assert asyncio.run(main()) == ["written"] * 11
    assert log["max"] == 1


def test_reads_are_not_gated():
    log = {"now": 0, "max": 0, "reads": 0}
    db = gated({"messages": Recording(log)})

    async def main():
        await asyncio.gather(db["messages"].bulk_write([]), *(db["messages"].find_one({}) for _ in range(3)))

    asyncio.run(main())
    assert log["reads"] == 3 and log["max"] == 1
    assert gated(db) is db
