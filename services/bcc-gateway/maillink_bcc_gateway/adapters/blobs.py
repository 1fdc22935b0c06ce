"""Raw MIME of accepted mail, content-addressed (sha256), owned by the gateway.

INTERIM: the shared obstore-backed blob store (branch `blobstore`, moving to runtime/) replaces
this class with a one-line change in app.py; it has the same `put_many` and `get`. Until then, one
file per blob under `root/<2 hex>/<sha256>`, written to a temporary name and renamed (atomic on
POSIX), so a reader never sees half a blob and a repeated write of the same content is harmless.

Durability before the 250: each new file is fdatasync'ed and each directory that got a new name is
fsync'ed, all in parallel (the filesystem's journal commits them together). Not syncfs(2): measured
during make bench-bcc, with Kafka writing its logs on the same filesystem, a syncfs flushed those
too and took 12-26 ms per batch; the files' own syncs took about a millisecond.
"""
import asyncio
import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Protocol

_SYNCS = ThreadPoolExecutor(max_workers=16, thread_name_prefix="blob-sync")


class BlobStore(Protocol):
    async def put_many(self, blobs: dict[str, bytes]) -> None: ...

    async def get(self, blob_id: str) -> bytes | None: ...


class LocalBlobs:
    def __init__(self, root: Path) -> None:
        self._root = root

    def _path(self, blob_id: str) -> Path:
        return self._root / blob_id[:2] / blob_id

    async def put_many(self, blobs: dict[str, bytes]) -> None:
        # One hand-off from the event loop per batch; the syncs then run side by side.
        await asyncio.to_thread(self._put_all, {self._path(blob_id): data for blob_id, data in blobs.items()})

    def _put_all(self, blobs: dict[Path, bytes]) -> None:
        new = {path: data for path, data in blobs.items() if not path.exists()}
        list(_SYNCS.map(lambda item: _write(*item), new.items()))
        list(_SYNCS.map(_sync_dir, {path.parent for path in new}))

    async def get(self, blob_id: str) -> bytes | None:
        path = self._path(blob_id)
        return await asyncio.to_thread(path.read_bytes) if path.exists() else None


def _write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o640)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
        os.fdatasync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)


def _sync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
