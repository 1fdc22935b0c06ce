"""Makes a group of files written by obstore's LocalStore durable before their events are published.

What obstore 0.12.1's LocalStore does (traced with strace): a put writes `<path>#<n>` (O_EXCL),
then renames it onto `<path>` (mode "overwrite") or hard-links it (mode "create"; EEXIST becomes
AlreadyExistsError) and removes the staging file. A reader never sees a half-written blob, but it
never fsyncs: after a power cut a blob whose event was already published could be empty or gone.

Two ways to flush, chosen by the size of the group:

- **Small groups (<= PER_FILE_MAX files; the Smart Bcc gateway stores one blob per SMTP session):
  each file is fdatasynced (in parallel), then each directory that got a new entry is fsynced (and,
  the first time this process meets a fan-out directory, its parents up to the store's root, since
  it may have just been created). On ext4 the file's fdatasync commits the journal transaction that also
  holds the new directory entry, so the directory's fsync finds it committed and costs little.
  Nothing but these files is written out.
- **Large groups (ingest's initial sync, hundreds of blobs per group): one syncfs(2)** of the
  store's filesystem: it covers the files, the new fan-out directories and their entries in one
  journal commit. Its price: it also writes out every other dirty file on the same filesystem
  (Kafka's logs, on a single-disk machine), so it costs a fixed 15-30 ms under load, which a
  large group amortises and a single blob does not.

Measured (ext4, 2-core machine shared with other work): through BlobStore.put_many, 4,000 blobs of
3-18 KB in groups of 200: no flush 0.9-1.8k blobs/s, syncfs 1.1-1.7k/s, fsync of every file
0.74-0.79k/s, fsync of every file and directory 0.53-0.70k/s. One blob per put from 16 concurrent
sessions while Kafka takes writes (make bench-bcc): syncfs 14.6 ms per put, per-file about 1-3 ms
(docs/bcc-gateway.md has the figures). Where syncfs is missing (not Linux/glibc), every group is
flushed per file. A blob that already existed is flushed too: an earlier attempt may have written
it and died before its flush.
"""
import asyncio
import ctypes
import os
from collections.abc import Iterable
from pathlib import Path

_syncfs = getattr(ctypes.CDLL(None, use_errno=True), "syncfs", None)
PER_FILE_MAX = 16
# Fan-out directories whose own entry (and their parents') this process has made durable.
_durable_dirs: set[Path] = set()


async def fsync_group(root: Path, keys: Iterable[str]) -> None:
    files = [root / key for key in keys]
    if not files:
        return
    if _syncfs is not None and len(files) > PER_FILE_MAX:
        await asyncio.to_thread(_sync_filesystem, files[0])
        _durable_dirs.update(f.parent for f in files)   # syncfs covered the new directories too
        return
    # In parallel: concurrent fdatasyncs share journal commits, one after another each pays its own
    # (8 blobs under write load: 4-5 ms in parallel, 25-60 ms in sequence).
    await asyncio.gather(*(asyncio.to_thread(_fsync, path, True) for path in files))
    directories = list(dict.fromkeys(f.parent for f in files))
    # A directory met for the first time may be new: its entry lives in its parent, up to the root.
    parents = {p for d in directories if d not in _durable_dirs for p in d.parents if p == root or root in p.parents}
    await asyncio.gather(*(asyncio.to_thread(_fsync, d) for d in [*directories, *parents]))
    _durable_dirs.update(directories)


def _sync_filesystem(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        if _syncfs(fd) != 0:  # since Linux 5.8 this reports writeback errors, e.g. EIO or ENOSPC
            err = ctypes.get_errno()
            raise OSError(err, f"syncfs: {os.strerror(err)}", str(path))
    finally:
        os.close(fd)


def _fsync(path: Path, data_only: bool = False) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fdatasync(fd) if data_only else os.fsync(fd)
    finally:
        os.close(fd)
