"""The document store client: PyMongo's native async API (Motor's official successor)."""
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
# marks every old location gone in one command). So bulk updates go in small commands.
BULK_CHUNK = 40


async def bulk_write_chunked(collection, operations: list, chunk: int = BULK_CHUNK) -> None:
    """`bulk_write(ordered=False)` in commands of at most `chunk` operations (see above)."""
    for i in range(0, len(operations), chunk):
        await collection.bulk_write(operations[i:i + chunk], ordered=False)


# Inserts do not hold the connections that deadlock big update commands, so they go in large ones.
INSERT_CHUNK = 1000
DUPLICATE_KEY = 11000


async def insert_new(collection, docs: list[dict], chunk: int = INSERT_CHUNK) -> list[int]:
    """`insert_many(ordered=False)` of documents believed new; returns the positions (in `docs`) of those
    whose `_id` was already taken, for the caller to replace or merge (a redelivery). On FerretDB v1 a
    plain insert costs a fraction of an upsert, and redeliveries are rare. Other errors are raised."""
    taken: list[int] = []
    for start in range(0, len(docs), chunk):
        try:
            await collection.insert_many(docs[start:start + chunk], ordered=False)
        except BulkWriteError as exc:
            errors = exc.details.get("writeErrors", [])
            if any(e.get("code") != DUPLICATE_KEY for e in errors):
                raise
            taken.extend(start + e["index"] for e in errors)
    return taken


async def ping(db: AsyncDatabase) -> None:
    await db.command("ping")
