"""One write command at a time to the store, per process.

FerretDB v1 on SQLite deadlocks when two bulk write commands are in flight at once (each holds a
pooled connection per statement until it ends, then needs one more for its transaction: the
server stops answering). The mail writer and the facts consumer run in one process and write
concurrently, so every write of the matcher goes through this gate: `gated(db)` wraps the
database so that each write command (`bulk_write`, `insert_many`, `insert_one`, `replace_one`,
`update_one`, `update_many`, `delete_one`, `delete_many`) waits for the previous one to end.
Reads are not gated (a single `find`/`find_one` holds one connection). The cost is nothing on the
embedded store, which serialises writes on its one SQLite file anyway.

The lock is per event loop (tests run several loops in one process; an asyncio.Lock is bound to one).
"""
import asyncio
import weakref

_WRITES = frozenset({"bulk_write", "insert_many", "insert_one", "replace_one", "update_one", "update_many",
                     "delete_one", "delete_many", "find_one_and_update", "find_one_and_replace"})
_locks: "weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Lock]" = weakref.WeakKeyDictionary()


def gate() -> asyncio.Lock:
    loop = asyncio.get_running_loop()
    lock = _locks.get(loop)
    if lock is None:
        lock = _locks[loop] = asyncio.Lock()
    return lock


class GatedCollection:
    def __init__(self, collection) -> None:
        self._collection = collection

    def __getattr__(self, name: str):
        attr = getattr(self._collection, name)
        if name not in _WRITES:
            return attr

        async def write(*args, **kwargs):
            async with gate():
                return await attr(*args, **kwargs)
        return write


class GatedDatabase:
    def __init__(self, db) -> None:
        self._db = db

    def __getitem__(self, name: str) -> GatedCollection:
        return GatedCollection(self._db[name])

    def __getattr__(self, name: str):
        return getattr(self._db, name)


def gated(db) -> GatedDatabase:
    return db if isinstance(db, GatedDatabase) else GatedDatabase(db)
