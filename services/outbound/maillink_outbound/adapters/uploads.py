"""Uploaded attachments, stored once by content (sha256) in outbound's own database, so a send
request (on Kafka, whose records stay under ~1 MB, and in the store, whose documents stay under
16 MB) carries a reference instead of the bytes. Chunks of 4 MB; writes are idempotent."""
import hashlib

from bson import Binary
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

CHUNK = 4 * 1024 * 1024
OWNER = "outbound"


class UploadStore:
    def __init__(self, db: AsyncDatabase) -> None:
        self._chunks, self._manifests = db["upload_chunks"], db["uploads"]

    async def put(self, data: bytes) -> str:
        blob_id = hashlib.sha256(data).hexdigest()
        if await self._manifests.find_one({"_id": blob_id}, {"_id": 1}):
            return blob_id
        for i in range(0, max(len(data), 1), CHUNK):
            try:
                await self._chunks.insert_one({"_id": f"{blob_id}:{i // CHUNK}", "data": Binary(data[i:i + CHUNK])})
            except DuplicateKeyError:
                pass  # an earlier, interrupted put of the same content
        # The manifest last: a blob is readable only once all its chunks are stored.
        await self._manifests.update_one({"_id": blob_id}, {"$set": {"size": len(data),
                                                                     "chunks": -(-len(data) // CHUNK)}}, upsert=True)
        return blob_id

    async def get(self, blob_id: str) -> bytes | None:
        manifest = await self._manifests.find_one({"_id": blob_id})
        if manifest is None:
            return None
        parts = [await self._chunks.find_one({"_id": f"{blob_id}:{i}"}) for i in range(manifest["chunks"])]
        if any(p is None for p in parts):
            return None
        data = b"".join(bytes(p["data"]) for p in parts)
        return data if hashlib.sha256(data).hexdigest() == blob_id else None
