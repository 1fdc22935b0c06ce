"""Waiting out a filesystem that still avoids recently freed inodes, before a benchmark writes files.

Found with perf on these machines: the root filesystem is ext4 *without a journal*, and there ext4's
inode allocator (fs/ext4/ialloc.c, find_inode_bit -> recently_deleted) passes over every inode
freed in the last minute or more (60 s, plus 300 s while its inode-table block is dirty), reading
each one's deletion time. After a benchmark or the test suite removed thousands of files, every file
created in the same block groups pays for a walk over all of them: creating a 10 KB file went from
~0.04 ms to 0.3-1.1 ms, for about two minutes after an `rm -rf` of 8,000 files (it is cheap again
only in the first second, while the deletion time is not yet in the past).

That was the wandering CPU of earlier figures: make bench-ingest removed mbsync's 20,000-file maildir
right before (a) wrote its 20,000 blobs (the "bimodal system CPU of blob file creation": 1.4 s or
6-8 s per run), and make bench-bcc's gateway spent a quarter of its samples in open(O_TMPFILE) after
the previous run removed its blobs. Neither is the code under test, so a benchmark that creates
files calls settle() first (and removes its own files only after measuring).
"""
import os
import time
from pathlib import Path

PROBE_FILES = 300
QUIET_MS = 0.12      # a quiet filesystem here: 0.03-0.06 ms per file; a settling one: 0.15-1.6 ms
LIMIT_S = 400.0      # the longest window (60 s + 300 s) and some
AFTER_REMOVAL_S = 180.0  # a benchmark's own removal of 20,000-40,000 files: the probes alone missed it once
QUIET_PROBES = 2     # in a row, CONFIRM_S apart: right after a removal a probe is cheap for ~1 s (the
CONFIRM_S = 5.0      # deletion time is not yet in the past), and a bench run next to it was not


def create_cost_ms(directory: Path, files: int = PROBE_FILES) -> float:
    """Mean milliseconds to create, write (10 KB) and close one file in `directory` (fanned out as
    the blob store does); the files are left there, since removing them would free inodes again."""
    data = os.urandom(10_000)
    started = time.perf_counter()
    for number in range(files):
        name = os.urandom(16).hex()
        sub = directory / name[:2]
        sub.mkdir(parents=True, exist_ok=True)
        fd = os.open(sub / name, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        try:
            os.write(fd, data)
        finally:
            os.close(fd)
    return 1000 * (time.perf_counter() - started) / files


def removed(stamp: Path) -> None:
    """Records that a benchmark just removed its files (settle() waits AFTER_REMOVAL_S from then)."""
    stamp.parent.mkdir(parents=True, exist_ok=True)
    stamp.write_text(str(time.time()))


def settle(directory: Path, say=print, limit_s: float = LIMIT_S, sleep=time.sleep, stamp: Path | None = None,
           clock=time.time) -> float:
    """Waits until creating files next to `directory` costs what it costs on a quiet filesystem (at
    most `limit_s`), and until AFTER_REMOVAL_S have passed since the removal recorded in `stamp` (the
    probes cover the block groups of 300 files; a run that writes 20,000 reaches further); returns
    the seconds waited. The probes live in `directory` itself, which the caller removes with the rest
    of its work after measuring. MAILLINK_BENCH_NO_SETTLE=1 skips it."""
    if os.environ.get("MAILLINK_BENCH_NO_SETTLE") == "1":
        return 0.0
    try:
        since = clock() - float(stamp.read_text()) if stamp else None
    except (OSError, ValueError):
        since = None
    if since is not None and 0 <= since < AFTER_REMOVAL_S:
        say(f"a benchmark removed its files {since:.0f} s ago; waiting {AFTER_REMOVAL_S - since:.0f} s "
            "(ext4 without a journal skips freshly freed inodes, fs_settle.py)…", flush=True)
        sleep(AFTER_REMOVAL_S - since)
    started, quiet, told = time.monotonic(), 0, False
    for attempt in range(1000):
        cost = create_cost_ms(directory / f"probe{attempt}")
        waited = time.monotonic() - started
        quiet = quiet + 1 if cost <= QUIET_MS else 0
        if quiet >= QUIET_PROBES:
            if told:
                say(f"filesystem settled after {waited:.0f} s ({cost:.3f} ms per new file)", flush=True)
            return waited
        if waited > limit_s:
            say(f"WARNING: creating a file still costs {cost:.2f} ms after {waited:.0f} s; measuring anyway "
                "(figures that write files will be low)", flush=True)
            return waited
        if quiet:
            sleep(CONFIRM_S)
            continue
        if not told:
            told = True
            say(f"creating a file costs {cost:.2f} ms (quiet: under {QUIET_MS} ms): files removed in the last "
                "minutes (ext4 without a journal skips their inodes, fs_settle.py); waiting…", flush=True)
        sleep(10)
    return time.monotonic() - started

