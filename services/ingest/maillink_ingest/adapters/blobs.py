"""Raw MIME, stored once and content-addressed (sha256) in ingest's own collections.

Not GridFS: GridFS writes chunks then the file document, and a crash in between leaves chunks
that make its retry fail on the unique index. Here chunk ids are derived from the content
(`<sha256>:<n>`), so a chunk that already exists is by definition the right one: inserts ignore
duplicate-key errors, the manifest is written last, and a blob exists exactly when its manifest
does. Plain unordered inserts, no reads first: on the embedded store an upsert or an `$in` read
scans, and a batch insert is one statement (measured in make bench-ingest).
"""
from datetime import datetime, timezone

from bson import Binary
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import BulkWriteError

DUPLICATE_KEY = 11000

CHUNK = 1024 * 1024  # far below the 16 MB document limit


class BlobStore:
    def __init__(self, db: AsyncDatabase) -> None:
        self._chunks = db["blob_chunks"]
        self._manifests = db["blobs"]

    async def put_many(self, blobs: dict[str, bytes]) -> None:
        """Stores each (blob_id -> bytes); blobs stored before are left as they are."""
        if not blobs:
            return
        chunks = [{"_id": f"{blob_id}:{n}", "data": Binary(raw[off:off + CHUNK])}
                  for blob_id, raw in blobs.items() for n, off in enumerate(range(0, max(len(raw), 1), CHUNK))]
        await _insert_new(self._chunks, chunks)
        now = datetime.now(timezone.utc)
        await _insert_new(self._manifests, [{"_id": blob_id, "size": len(raw), "chunks": -(-max(len(raw), 1) // CHUNK),
                                             "stored_at": now} for blob_id, raw in blobs.items()])

    async def get(self, blob_id: str) -> bytes | None:
        manifest = await self._manifests.find_one({"_id": blob_id})
        if manifest is None:
            return None
        parts = [await self._chunks.find_one({"_id": f"{blob_id}:{n}"}) for n in range(manifest["chunks"])]
        return b"".join(bytes(p["data"]) for p in parts)


async def _insert_new(collection: AsyncCollection, docs: list[dict]) -> None:
    try:
        await collection.insert_many(docs, ordered=False)
    except BulkWriteError as exc:
        others = [e for e in exc.details.get("writeErrors", []) if e.get("code") != DUPLICATE_KEY]
        if others or exc.details.get("writeConcernErrors"):
            raise
