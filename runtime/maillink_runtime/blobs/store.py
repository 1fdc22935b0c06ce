"""Raw MIME, stored once and content-addressed (sha256), in an object store through obstore.

Not the document store: FerretDB v1 keeps binary data as base64 inside JSON in SQLite, and storing
MIME there took two-thirds of ingest's time (make bench-ingest). Local files are the embedded
default, S3 (or any S3-compatible server) the production choice; both behind one obstore API.

Writes are idempotent without reading first: a put is conditional (mode "create": If-None-Match
on S3, a hard link on local files), so a blob stored before is never rewritten, and a server that
ignores the condition just rewrites identical bytes. The one exception: a local file found with the
wrong size (left short by a power cut before its flush) is replaced, see `_short`. Measured against a HEAD before each PUT
(1,000 blobs, groups of 200): on S3 (versitygw) HEAD+PUT ran 0.85k/s for new blobs against 1.1k/s
conditional and 1.3k/s unconditional, and 2.7k/s against 1.9k/s when all existed; on local files
the conditional put ran 6.2k/s for new blobs against 2.6-2.8k/s, and 7.4k/s against HEAD's 11.6k/s
when all existed. New blobs are the common case (initial sync), so no HEAD.

Reads stream in chunks and are verified against the key: the last chunk is released only once the
sha256 of the whole matched, so a corrupted blob can never be received complete.
"""
import asyncio
import errno
import hashlib
import os
import secrets
import threading
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Protocol
from pathlib import Path

import obstore
from obstore.exceptions import AlreadyExistsError
from obstore.store import ObjectStore
from prometheus_client import Counter

from .location import blob_key, is_blob_id, open_store, parse_blob_url
from .durability import fsync_group

READ_CHUNK = 1024 * 1024
# Local blobs up to this size are written on the event loop (page cache only, well under a
# millisecond); larger ones through obstore's I/O thread, so a big write never stalls the loop.
LOOP_WRITE_MAX = 256 * 1024
# ...and only in small groups (the gateway writes one per SMTP session). Ingest's groups of hundreds
# are written the same way, from WRITE_THREADS threads (the system calls release the GIL): measured
# against obstore's put_async gathered per blob, which hands every blob to its I/O thread and back
# (docs/ingest-sync.md, "Initial-sync throughput").
LOOP_WRITE_COUNT = 16
WRITE_THREADS = 2
# "Not found" and "already there" are answers, not errors; everything else is (alert MaillinkBlobStoreErrors).
ERRORS = Counter("maillink_blob_store_errors_total", "Object store operations that failed, by operation "
                 "(put, get, head; verify: stored bytes that do not hash to their id)", ["operation"])


class LegacySource(Protocol):
    """Blobs a service stored before it had an object store (ingest: FerretDB's blob collections)."""

    async def manifest(self, blob_id: str): ...

    def chunks(self, manifest) -> AsyncIterator[bytes]: ...


class CorruptBlob(Exception):
    """The stored bytes do not hash to the blob's id."""


@dataclass
class Blob:
    size: int
    chunks: AsyncIterator[bytes]


class BlobStore:
    def __init__(self, store: ObjectStore, *, owner: str = "ingest", local_root: Path | None = None,
                 legacy: LegacySource | None = None) -> None:
        self._store, self._owner, self._local_root, self._legacy = store, owner, local_root, legacy
        self._root_str = str(local_root) if local_root is not None else ""
        self._made_dirs: set[str] = set()  # shared by the writing threads: adding a str to a set is atomic
        self._nameless: bool | None = None  # O_TMPFILE + linkat works here (None: not tried yet)
        self._root_fd: int | None = None
        self._root_fd_lock = threading.Lock()  # the writing threads open it once between them

    async def put_many(self, blobs: dict[str, bytes]) -> None:
        """Stores each (blob_id -> bytes), durably, before returning; blobs stored before are left as they are."""
        await self.write_many(blobs)
        await self.flush_many(blobs)

    async def write_many(self, blobs: dict[str, bytes]) -> None:
        """The first half of put_many: stored and readable (a process crash keeps them: on local files they
        are in the page cache), but not yet durable against a power cut on local files until flush_many."""
        for blob_id, raw in blobs.items():
            if hashlib.sha256(raw).hexdigest() != blob_id:
                # A wrong key would be kept forever: conditional puts never replace it.
                raise ValueError(f"blob id {blob_id} is not the sha256 of its {len(raw)} bytes")
        if self._local_root is not None and len(blobs) <= LOOP_WRITE_COUNT:
            small = {blob_id: raw for blob_id, raw in blobs.items() if len(raw) <= LOOP_WRITE_MAX}
            for blob_id, raw in small.items():
                self._write_local(self.key(blob_id), raw)
            blobs = {blob_id: raw for blob_id, raw in blobs.items() if blob_id not in small}
        elif self._local_root is not None:
            items = [(self.key(blob_id), raw) for blob_id, raw in blobs.items()]
            share = -(-len(items) // WRITE_THREADS)
            await asyncio.gather(*(asyncio.to_thread(self._write_local_all, items[i:i + share])
                                   for i in range(0, len(items), share)))
            return
        await asyncio.gather(*(self._put_new(self.key(blob_id), raw) for blob_id, raw in blobs.items()))

    async def flush_many(self, blob_ids) -> None:
        """The second half: makes blobs written by write_many durable (local files: fdatasync or syncfs;
        an object store has made them durable before acknowledging the put)."""
        if self._local_root is not None:
            try:
                await fsync_group(self._local_root, [self.key(blob_id) for blob_id in blob_ids])
            except Exception:
                ERRORS.labels("put").inc()
                raise

    async def open(self, blob_id: str) -> Blob | None:
        """The blob's size and a verified stream of its bytes; None when it is stored nowhere."""
        if not is_blob_id(blob_id):
            return None
        try:
            result = await obstore.get_async(self._store, self.key(blob_id))
        except FileNotFoundError:
            return await self._open_legacy(blob_id)
        except Exception:
            ERRORS.labels("get").inc()
            raise
        return Blob(result.meta["size"], verified(blob_id, result.stream(min_chunk_size=READ_CHUNK)))

    async def get(self, blob_id: str) -> bytes | None:
        blob = await self.open(blob_id)
        return None if blob is None else b"".join([chunk async for chunk in blob.chunks])

    async def exists(self, blob_id: str) -> bool:
        """In the object store itself (legacy copies do not count)."""
        try:
            await obstore.head_async(self._store, self.key(blob_id))
            return True
        except FileNotFoundError:
            return False
        except Exception:
            ERRORS.labels("head").inc()
            raise

    def key(self, blob_id: str) -> str:
        return blob_key(self._owner, blob_id)

    async def _put_new(self, key: str, raw: bytes) -> None:
        try:
            # One request per blob: the bytes are in memory already, and S3's conditional put does
            # not apply to multipart uploads.
            await obstore.put_async(self._store, key, raw, mode="create", use_multipart=False)
        except AlreadyExistsError:
            if self._local_root is not None and _short(self._local_root / key, len(raw)):
                await obstore.put_async(self._store, key, raw, mode="overwrite", use_multipart=False)
        except Exception:
            ERRORS.labels("put").inc()
            raise

    def _write_local_all(self, items: list[tuple[str, bytes]]) -> None:
        for key, raw in items:
            self._write_local(key, raw)

    def _write_local(self, key: str, raw: bytes) -> None:
        """One blob into local files, on the calling thread (the loop for small groups, WRITE_THREADS
        threads for large ones), as obstore's LocalStore writes it in mode "create": the bytes written to
        a file without a name, then linked onto the blob's path (an existing blob is left as it is); a
        reader never sees a half-written blob. Why not obstore here: for a 2 KB message its put cost
        ~0.25 ms of CPU, mostly the hand-off to its I/O thread and back, against ~0.04 ms for these four
        system calls, which only touch the page cache (measured for make bench-bcc,
        docs/bcc-gateway.md). Nothing is synced: flush_many does that.

        The nameless file is Linux's O_TMPFILE, linked by linkat(AT_SYMLINK_FOLLOW) through
        /proc/self/fd: no staging name to create and remove (0.065 -> 0.04 ms per 2 KB blob). Where the
        filesystem or /proc does not allow it, a staging file beside the blob (O_EXCL), hard-linked
        and removed, as before."""
        # Plain strings, not Path objects: this runs once per message of an initial sync.
        path = f"{self._root_str}/{key}"
        try:
            parent = os.path.dirname(path)
            if parent not in self._made_dirs:
                os.makedirs(parent, exist_ok=True)
                self._made_dirs.add(parent)
            if self._nameless is not False and self._write_nameless(path, parent, key, raw):
                return
            self._write_staged(path, raw)
        except Exception:
            ERRORS.labels("put").inc()
            raise

    def _root_dir_fd(self) -> int:
        if self._root_fd is None:
            with self._root_fd_lock:
                if self._root_fd is None:
                    self._root_fd = os.open(self._root_str, os.O_RDONLY | os.O_DIRECTORY)
        return self._root_fd

    def _write_nameless(self, path: str, parent: str, key: str, raw: bytes) -> bool:
        """False when the nameless way is not available here (then it is not tried again)."""
        try:
            fd = os.open(parent, os.O_WRONLY | os.O_TMPFILE, 0o644)
        except OSError as error:
            if error.errno in (errno.EOPNOTSUPP, errno.EISDIR, errno.EINVAL, errno.ENOENT):
                self._nameless = False  # kernel or filesystem without O_TMPFILE
                return False
            raise
        try:
            _write_all(fd, raw)
            try:
                # linkat(AT_FDCWD, "/proc/self/fd/N", root, key, AT_SYMLINK_FOLLOW): CPython calls
                # linkat (with AT_SYMLINK_FOLLOW) only when a dir fd is given.
                os.link(f"/proc/self/fd/{fd}", key, dst_dir_fd=self._root_dir_fd())
            except FileExistsError:
                if _short(path, len(raw)):
                    self._write_staged(path, raw)  # replaced atomically through a staging name
            except FileNotFoundError:
                if self._nameless is None and not os.path.exists(f"/proc/self/fd/{fd}"):
                    self._nameless = False  # no /proc here
                    return False
                raise
        finally:
            os.close(fd)
        self._nameless = True
        return True

    def _write_staged(self, path: str, raw: bytes) -> None:
        staging = f"{path}#{secrets.token_hex(6)}"
        fd = os.open(staging, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        try:
            _write_all(fd, raw)
        finally:
            os.close(fd)
        linked = False
        try:
            os.link(staging, path)
        except FileExistsError:
            if _short(path, len(raw)):
                os.replace(staging, path)  # atomic: readers see the old file or the whole new one
                linked = True  # the staging name is gone with the rename
        finally:
            if not linked:
                os.unlink(staging)

    async def _open_legacy(self, blob_id: str) -> Blob | None:
        manifest = await self._legacy.manifest(blob_id) if self._legacy else None
        if manifest is None:
            return None
        return Blob(manifest.size, verified(blob_id, self._legacy.chunks(manifest)))


def _write_all(fd: int, raw: bytes) -> None:
    view = memoryview(raw)
    while view:
        view = view[os.write(fd, view):]


def _short(path: str | Path, size: int) -> bool:
    """A local blob that is already there but not whole. After a power cut, a file whose new directory
    entry reached the disk before its data (its flush had not finished) can be left empty or short;
    the sender's retry must then rewrite it, or the conditional put would keep the broken copy for good
    (its event published by the retry). Same sha256 path, so the size is the one thing to check here;
    reads verify the hash anyway."""
    try:
        return os.stat(path).st_size != size
    except FileNotFoundError:
        return True


async def verified(blob_id: str, chunks: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    digest, held = hashlib.sha256(), None
    async for chunk in chunks:
        if held is not None:
            yield held
        digest.update(chunk)
        held = chunk
    if digest.hexdigest() != blob_id:
        ERRORS.labels("verify").inc()
        raise CorruptBlob(f"blob {blob_id}: stored bytes hash to {digest.hexdigest()}")
    if held is not None:
        yield held


def open_blob_store(url: str, *, owner: str = "ingest", legacy: LegacySource | None = None, endpoint: str | None = None,
            region: str | None = None, allow_http: bool = False) -> BlobStore:
    location = parse_blob_url(url)
    store = open_store(location, endpoint=endpoint, region=region, allow_http=allow_http)
    local_root = Path(location.root) if location.scheme == "file" else None
    return BlobStore(store, owner=owner, local_root=local_root, legacy=legacy)
