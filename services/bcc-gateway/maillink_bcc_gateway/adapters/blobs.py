"""Raw MIME of accepted mail, content-addressed (sha256), owned by the gateway.

INTERIM: the shared obstore-backed blob store (branch `blobstore`, moving to runtime/) replaces
this class with a one-line change in app.py; it has the same two methods. Until then, one file per
blob under `root/<2 hex>/<sha256>`, written to a temporary name and renamed (atomic on POSIX), so
a reader never sees half a blob and a repeated write of the same content is harmless.
"""
import asyncio
import os
from pathlib import Path
from typing import Protocol


class BlobStore(Protocol):
    async def put_many(self, blobs: dict[str, bytes]) -> None: ...

    async def open(self, blob_id: str) -> bytes | None: ...


class LocalBlobs:
    def __init__(self, root: Path) -> None:
        self._root = root

    def _path(self, blob_id: str) -> Path:
        return self._root / blob_id[:2] / blob_id

    async def put_many(self, blobs: dict[str, bytes]) -> None:
        await asyncio.to_thread(self._write_all, blobs)

    def _write_all(self, blobs: dict[str, bytes]) -> None:
        for blob_id, data in blobs.items():
            path = self._path(blob_id)
            if path.exists():
                continue
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_name(f".{blob_id}.{os.getpid()}.tmp")
            with open(tmp, "wb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp, path)

    async def open(self, blob_id: str) -> bytes | None:
        path = self._path(blob_id)
        return await asyncio.to_thread(path.read_bytes) if path.exists() else None
