"""Raw MIME, stored once and content-addressed (sha256) in ingest's own collections.

Not GridFS: GridFS writes chunks then the file document with plain inserts, so a crash in
between leaves chunks that make the retry fail on the unique index. Here every write is an
upsert keyed by (blob, chunk number) and the manifest is written last, so a blob exists exactly
when its manifest does, and a retry simply overwrites what a crash left behind.
"""
from datetime import datetime, timezone

from bson import Binary
from pymongo import ReplaceOne
from pymongo.asynchronous.database import AsyncDatabase

CHUNK = 1024 * 1024  # far below the 16 MB document limit


class BlobStore:
    def __init__(self, db: AsyncDatabase) -> None:
        self._chunks = db["blob_chunks"]
        self._manifests = db["blobs"]

    async def put_many(self, blobs: dict[str, bytes]) -> int:
        """Store each (blob_id -> bytes) not stored yet; returns how many were new."""
        if not blobs:
            return 0
        have = {d["_id"] async for d in self._manifests.find({"_id": {"$in": list(blobs)}}, {"_id": 1})}
        missing = {k: v for k, v in blobs.items() if k not in have}
        if not missing:
            return 0
        chunk_ops = [ReplaceOne({"_id": f"{blob_id}:{n}"}, {"_id": f"{blob_id}:{n}", "blob": blob_id, "n": n,
                                                         "data": Binary(raw[off:off + CHUNK])}, upsert=True)
                     for blob_id, raw in missing.items() for n, off in enumerate(range(0, max(len(raw), 1), CHUNK))]
        await self._chunks.bulk_write(chunk_ops, ordered=False)
        now = datetime.now(timezone.utc)
        await self._manifests.bulk_write([
            ReplaceOne({"_id": blob_id}, {"_id": blob_id, "size": len(raw), "chunks": -(-max(len(raw), 1) // CHUNK),
                                          "stored_at": now}, upsert=True)
            for blob_id, raw in missing.items()], ordered=False)
        return len(missing)

    async def get(self, blob_id: str) -> bytes | None:
        manifest = await self._manifests.find_one({"_id": blob_id})
        if manifest is None:
            return None
        parts = [d async for d in self._chunks.find({"blob": blob_id}).sort("n", 1)]
        return b"".join(bytes(p["data"]) for p in parts[: manifest["chunks"]])

    async def ensure_indexes(self) -> None:
        await self._chunks.create_index([("blob", 1), ("n", 1)])
