"""Raw MIME as the previous version stored it in ingest's own database: read-only.

Layout (written until the object store replaced it): a manifest in `blobs` (`_id` = sha256,
`size`, `chunks`) written last, so a blob exists exactly when its manifest does, and its bytes in
`blob_chunks` as `<sha256>:<n>` documents of at most 1 MB. Kept so that an existing deployment
still serves those blobs, and so that `python -m maillink_ingest.migrate_blobs` can copy them.
"""
from collections.abc import AsyncIterator
from dataclasses import dataclass

from pymongo.asynchronous.database import AsyncDatabase


@dataclass(frozen=True)
class LegacyManifest:
    blob_id: str
    size: int
    chunks: int


class LegacyBlobs:
    def __init__(self, db: AsyncDatabase) -> None:
        self._chunks = db["blob_chunks"]
        self._manifests = db["blobs"]

    async def manifest(self, blob_id: str) -> LegacyManifest | None:
        doc = await self._manifests.find_one({"_id": blob_id})
        return _manifest(doc) if doc else None

    async def manifests(self) -> AsyncIterator[LegacyManifest]:
        # Sorted by _id, the one order FerretDB v1 serves without scanning twice; a rerun walks the
        # same order, so progress is comparable between runs.
        async for doc in self._manifests.find({}, {"size": 1, "chunks": 1}).sort("_id", 1):
            yield _manifest(doc)

    async def count(self) -> int:
        return await self._manifests.count_documents({})

    async def chunks(self, manifest: LegacyManifest) -> AsyncIterator[bytes]:
        # One lookup by _id per chunk: on FerretDB's SQLite backend only _id equality is pushed
        # down, so this stays ~1 ms per MB where a range query would scan the collection.
        for n in range(manifest.chunks):
            doc = await self._chunks.find_one({"_id": f"{manifest.blob_id}:{n}"})
            if doc is None:
                raise LookupError(f"legacy blob {manifest.blob_id}: chunk {n} of {manifest.chunks} is missing")
            yield bytes(doc["data"])


def _manifest(doc: dict) -> LegacyManifest:
    return LegacyManifest(doc["_id"], doc["size"], doc["chunks"])
