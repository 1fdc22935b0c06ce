"""Makes a group of files written by obstore's LocalStore durable: one fsync pass per group.

What obstore 0.12.1's LocalStore does (traced with strace): a put writes `<path>#<n>` (O_EXCL),
then renames it onto `<path>` (mode "overwrite") or hard-links it (mode "create"; EEXIST becomes
AlreadyExistsError) and removes the staging file. A reader never sees a half-written blob, but it
never fsyncs: after a power cut a blob whose event was already published could be empty or gone.

Measured here (ext4, 2,000 blobs of 2-22 KB in groups of 200, a 2-core machine shared with other
work, so ranges over runs): obstore without fsync 1.4-3.9k blobs/s; + fsync of each file and each
directory one after another 0.66-1.1k/s; + the same fsyncs in parallel threads 0.82-0.91k/s;
+ one syncfs(2) per group 0.9-2.0k/s; our own Python temp file + fdatasync + rename 0.44k/s.
So obstore writes (its Rust writer is the fastest) and this module then fsyncs the group's files
and directories in parallel. Not syncfs: it flushes every dirty file on the filesystem (Kafka's
log, the SQLite store), so its cost depends on the neighbours, and Python reaches it only
through ctypes on Linux. A blob that already existed is fsynced too: an earlier attempt may have
written it and died before its own fsync, and fsync of a clean file costs next to nothing.
"""
import asyncio
import os
from collections.abc import Iterable
from pathlib import Path


async def fsync_group(root: Path, keys: Iterable[str]) -> None:
    files = [root / key for key in keys]
    await asyncio.gather(*(asyncio.to_thread(_fsync, f) for f in files))
    # Then the directory entries, up to the store's root: new fan-out directories were created too.
    dirs = {parent for f in files for parent in f.parents if parent == root or root in parent.parents}
    await asyncio.gather(*(asyncio.to_thread(_fsync, d) for d in dirs))


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
