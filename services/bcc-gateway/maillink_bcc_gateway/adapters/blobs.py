"""Raw MIME of accepted mail, content-addressed (sha256), owned by the gateway.

INTERIM: the shared obstore-backed blob store (branch `blobstore`, moving to runtime/) replaces
this class with a one-line change in app.py; it has the same `put_many` and `get`. Until then, one
file per blob under `root/<2 hex>/<sha256>`, written to a temporary name and renamed (atomic on
POSIX), so a reader never sees half a blob and a repeated write of the same content is harmless.
A batch is made durable with one syncfs(2) of the blob filesystem (the same choice, measured, as
the shared store), falling back to an fsync per file and directory where syncfs is missing.
"""
import asyncio
import ctypes
import os
from pathlib import Path
from typing import Protocol

_libc = ctypes.CDLL(None, use_errno=True)
_syncfs = getattr(_libc, "syncfs", None)


class BlobStore(Protocol):
    async def put_many(self, blobs: dict[str, bytes]) -> None: ...

    async def get(self, blob_id: str) -> bytes | None: ...


class LocalBlobs:
    def __init__(self, root: Path) -> None:
        self._root = root

    def _path(self, blob_id: str) -> Path:
        return self._root / blob_id[:2] / blob_id

    async def put_many(self, blobs: dict[str, bytes]) -> None:
        await asyncio.to_thread(self._write_all, blobs)

    def _write_all(self, blobs: dict[str, bytes]) -> None:
        written = []
        for blob_id, data in blobs.items():
            path = self._path(blob_id)
            if path.exists():
                continue
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_name(f".{blob_id}.{os.getpid()}.tmp")
            tmp.write_bytes(data)
            os.replace(tmp, path)
            written.append(path)
        if written:
            _make_durable(self._root, written)

    async def get(self, blob_id: str) -> bytes | None:
        path = self._path(blob_id)
        return await asyncio.to_thread(path.read_bytes) if path.exists() else None


def _make_durable(root: Path, paths: list[Path]) -> None:
    if _syncfs is not None:
        fd = os.open(root, os.O_RDONLY)
        try:
            if _syncfs(fd) == 0:
                return
        finally:
            os.close(fd)
    for path in paths:
        for target in (path, path.parent):
            fd = os.open(target, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
