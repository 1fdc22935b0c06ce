"""The document store client: PyMongo's native async API (Motor's official successor)."""
import asyncio
import weakref
from pathlib import Path

from pymongo import AsyncMongoClient
from pymongo.errors import BulkWriteError
from pymongo.asynchronous.database import AsyncDatabase


def tls_options(ca_file: Path | None = None, cert_key_file: Path | None = None) -> dict:
    """Client options for MONGODB_TLS_CA_FILE / MONGODB_TLS_CERT_KEY_FILE; a URL's own tls=true needs none.

    Either file turns TLS on. Certificates and host names are always verified (PyMongo's default;
    settings refuse URLs that switch it off)."""
    options = {}
    if ca_file:
        options["tlsCAFile"] = str(ca_file)
    if cert_key_file:
        options["tlsCertificateKeyFile"] = str(cert_key_file)
    return {"tls": True, **options} if options else {}


def connect(url: str, **tls) -> AsyncMongoClient:
    # Majority-acknowledged writes: an effect counts as durable only once the store says so.
    return AsyncMongoClient(url, serverSelectionTimeoutMS=5000, w="majority", tz_aware=True, **tls)


# FerretDB v1 (SQLite) holds one pooled connection per statement of an update command until the
# command ends, then needs one more for its transaction: a bulk write of ~100 updates exhausts the
# pool and deadlocks the whole server (every later query on that database hangs). The matcher met
# it in its benchmark; `make chaos` met it in ingest (a UIDVALIDITY reset of a 637-message folder
# marks every old location gone in one command). So bulk updates go in small commands, and (the
# write gate below) one write command at a time per process: three commands of 40 in flight at
# once from one process deadlock it just the same (tests/integration/test_store_write_gate_deadlock.py).
BULK_CHUNK = 40

# --- the write gate ---------------------------------------------------------------------------
# One lock per event loop (tests run several loops in one process; an asyncio.Lock is bound to one).
# bulk_write_chunked and insert_new take it around every command they send, so every service's bulk
# writes are serialised; `gated(db)` extends it to every write command of a database (the matcher,
# whose mail writer and facts consumer share one process and write concurrently). Reads are not
# gated: a find holds one connection. The cost is nothing on the embedded store, which serialises
# writes on its one SQLite file anyway.
_WRITES = frozenset({"bulk_write", "insert_many", "insert_one", "replace_one", "update_one", "update_many",
                     "delete_one", "delete_many", "find_one_and_update", "find_one_and_replace"})
_gates: "weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Lock]" = weakref.WeakKeyDictionary()


def write_gate() -> asyncio.Lock:
    loop = asyncio.get_running_loop()
    lock = _gates.get(loop)
    if lock is None:
        lock = _gates[loop] = asyncio.Lock()
    return lock


class GatedCollection:
    """A collection whose write commands each wait for the previous one of the process to end."""

    def __init__(self, collection) -> None:
        self.ungated = collection

    def __getattr__(self, name: str):
        attr = getattr(self.ungated, name)
        if name not in _WRITES:
            return attr

        async def write(*args, **kwargs):
            async with write_gate():
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


def _ungated(collection):
    """The helpers below take the gate themselves: through a GatedCollection they would wait for
    a lock they hold (asyncio.Lock is not re-entrant)."""
    return collection.ungated if isinstance(collection, GatedCollection) else collection


async def bulk_write_chunked(collection, operations: list, chunk: int = BULK_CHUNK) -> None:
    """`bulk_write(ordered=False)` in commands of at most `chunk` operations, one at a time per process
    (see above)."""
    target = _ungated(collection)
    for i in range(0, len(operations), chunk):
        async with write_gate():
            await target.bulk_write(operations[i:i + chunk], ordered=False)


# Inserts do not hold the connections that deadlock big update commands, so they go in large ones.
INSERT_CHUNK = 1000
DUPLICATE_KEY = 11000


async def insert_new(collection, docs: list[dict], chunk: int = INSERT_CHUNK) -> list[int]:
    """`insert_many(ordered=False)` of documents believed new; returns the positions (in `docs`) of those
    whose `_id` was already taken, for the caller to replace or merge (a redelivery). On FerretDB v1 a
    plain insert costs a fraction of an upsert, and redeliveries are rare. Other errors are raised.
    One command at a time per process, like bulk_write_chunked."""
    target = _ungated(collection)
    taken: list[int] = []
    for start in range(0, len(docs), chunk):
        try:
            async with write_gate():
                await target.insert_many(docs[start:start + chunk], ordered=False)
        except BulkWriteError as exc:
            errors = exc.details.get("writeErrors", [])
            if any(e.get("code") != DUPLICATE_KEY for e in errors):
                raise
            taken.extend(start + e["index"] for e in errors)
    return taken


async def ping(db: AsyncDatabase) -> None:
    await db.command("ping")
