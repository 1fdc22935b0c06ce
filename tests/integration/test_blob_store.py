"""The blob store against real backends: local files and S3 (versitygw over TCP)."""
import asyncio
import hashlib
import os

import obstore
import pytest

from maillink_runtime.blobs.store import READ_CHUNK, CorruptBlob

pytestmark = pytest.mark.integration


def blob(size: int) -> tuple[str, bytes]:
    raw = os.urandom(size)
    return hashlib.sha256(raw).hexdigest(), raw


async def read_all(blobs, blob_id) -> tuple[int, list[bytes]]:
    opened = await blobs.open(blob_id)
    return opened.size, [chunk async for chunk in opened.chunks]


async def test_put_twice_then_stream_back_in_chunks(backend):
    blobs = backend.blobs()
    small, large = blob(3_000), blob(2 * READ_CHUNK + 12_345)
    await blobs.put_many(dict([small, large]))
    first = await obstore.head_async(backend.raw(), blobs.key(large[0]))
    await blobs.put_many(dict([small, large]))  # idempotent: nothing is rewritten
    assert await obstore.head_async(backend.raw(), blobs.key(large[0])) == first

    size, chunks = await read_all(blobs, large[0])
    assert size == len(large[1]) and len(chunks) > 1 and b"".join(chunks) == large[1]  # streamed, not whole
    assert await blobs.get(small[0]) == small[1]
    assert await blobs.exists(small[0]) and not await blobs.exists(blob(10)[0])


async def test_a_removed_blob_is_reported_missing(backend):
    blobs = backend.blobs()
    blob_id, raw = blob(5_000)
    await blobs.put_many({blob_id: raw})
    await obstore.delete_async(backend.raw(), blobs.key(blob_id))
    assert await blobs.open(blob_id) is None and not await blobs.exists(blob_id)
    assert await blobs.open("not-a-sha256") is None


async def test_concurrent_puts_of_the_same_blob_all_succeed(backend, tmp_path):
    blobs = backend.blobs()
    blob_id, raw = blob(200_000)
    await asyncio.gather(*(blobs.put_many({blob_id: raw}) for _ in range(8)))
    assert await blobs.get(blob_id) == raw
    # obstore stages local writes as "<key>#<n>"; none may be left behind.
    assert not [p for p in tmp_path.rglob("*") if "#" in p.name]


async def test_a_damaged_blob_is_never_served_complete(backend):
    blobs = backend.blobs()
    blob_id, raw = blob(2 * READ_CHUNK)
    await blobs.put_many({blob_id: raw})
    damaged = raw[:-1] + bytes([raw[-1] ^ 1])
    await obstore.put_async(backend.raw(), blobs.key(blob_id), damaged)
    opened = await blobs.open(blob_id)
    received = []
    with pytest.raises(CorruptBlob):
        async for chunk in opened.chunks:
            received.append(chunk)
    assert len(b"".join(received)) < len(raw)  # the last chunk was held back


async def test_a_blob_under_the_wrong_id_is_refused(backend):
    blobs = backend.blobs()
    blob_id, _ = blob(100)
    with pytest.raises(ValueError, match="not the sha256"):
        await blobs.put_many({blob_id: b"other bytes"})
    assert not await blobs.exists(blob_id)


@pytest.mark.parametrize("mode", ["syncfs", "per-file", "per-file-without-syncfs"])
async def test_local_groups_are_flushed_either_way(tmp_path, monkeypatch, mode):
    from maillink_runtime.blobs import durability as local_durability
    from maillink_runtime.blobs.store import open_blob_store

    if mode == "syncfs":
        if local_durability._syncfs is None:
            pytest.skip("no syncfs(2) on this platform")
        monkeypatch.setattr(local_durability, "PER_FILE_MAX", 0)   # every group counts as large
    elif mode == "per-file-without-syncfs":
        monkeypatch.setattr(local_durability, "_syncfs", None)
        monkeypatch.setattr(local_durability, "PER_FILE_MAX", 0)
    blobs = open_blob_store(tmp_path.as_uri())
    group = dict(blob(n) for n in (10, 20_000, 0))
    await blobs.put_many(group)
    assert {blob_id: await blobs.get(blob_id) for blob_id in group} == group
    with pytest.raises(FileNotFoundError):  # the flush really opens what it flushes
        await local_durability.fsync_group(tmp_path, [blobs.key(blob(5)[0])])


async def test_a_small_group_syncs_each_file_and_its_directory_and_new_directories_parents_once(tmp_path, monkeypatch):
    from maillink_runtime.blobs import durability as local_durability
    from maillink_runtime.blobs.store import open_blob_store

    synced: list[tuple[str, bool]] = []
    real = local_durability._fsync
    monkeypatch.setattr(local_durability, "_fsync",
                        lambda path, data_only=False: (synced.append((str(path), data_only)), real(path, data_only)))
    monkeypatch.setattr(local_durability, "_syncfs", None)   # never the whole filesystem for small groups
    blobs = open_blob_store(tmp_path.as_uri())
    first, raw = blob(10)
    await blobs.put_many({first: raw})
    fanout = tmp_path / blobs.key(first).rpartition("/")[0]
    assert sorted(synced) == sorted([(str(tmp_path / blobs.key(first)), True), (str(fanout), False),
                                     (str(fanout.parent), False), (str(tmp_path), False)])
    synced.clear()
    second = next(b for b in (blob(n) for n in range(11, 5000)) if b[0][:2] == first[:2])
    await blobs.put_many(dict([second]))
    assert sorted(synced) == sorted([(str(tmp_path / blobs.key(second[0])), True), (str(fanout), False)])


async def test_a_written_blob_is_readable_at_once_and_made_durable_by_its_flush(tmp_path, monkeypatch):
    """The Smart Bcc gateway publishes while the flush runs: the bytes must be readable after write_many,
    and it is flush_many that syncs them (write_many alone syncs nothing)."""
    from maillink_runtime.blobs import durability as local_durability
    from maillink_runtime.blobs.store import open_blob_store

    synced: list[str] = []
    real = local_durability._fsync
    monkeypatch.setattr(local_durability, "_fsync",
                        lambda path, data_only=False: (synced.append(str(path)), real(path, data_only)))
    monkeypatch.setattr(local_durability, "_syncfs", None)
    blobs = open_blob_store(tmp_path.as_uri())
    blob_id, raw = blob(100)
    await blobs.write_many({blob_id: raw})
    assert await blobs.get(blob_id) == raw and synced == []
    await blobs.flush_many([blob_id])
    assert str(tmp_path / blobs.key(blob_id)) in synced
    with pytest.raises(ValueError):
        await blobs.write_many({blob(5)[0]: b"other bytes"})  # the id must still be the bytes' sha256


@pytest.mark.parametrize("size", [3_000, 300_000])  # written on the loop / through obstore's thread
async def test_a_local_blob_left_short_by_a_power_cut_is_rewritten_by_the_retry(tmp_path, size):
    # After a power cut before its flush, a new file's directory entry can be on disk without its data:
    # the blob is there, empty or short. The sender retries (it got no 250 / no ack); the retry's put
    # must rewrite it, or the conditional put would keep the broken copy for good.
    from maillink_runtime.blobs.store import open_blob_store

    blobs = open_blob_store(tmp_path.as_uri())
    blob_id, raw = blob(size)
    path = tmp_path / blobs.key(blob_id)
    path.parent.mkdir(parents=True, exist_ok=True)
    for left in (b"", raw[: size // 2]):
        path.write_bytes(left)
        await blobs.put_many({blob_id: raw})
        assert path.read_bytes() == raw and await blobs.get(blob_id) == raw
    whole = path.stat().st_ino
    await blobs.put_many({blob_id: raw})  # a whole blob is left as it is
    assert path.stat().st_ino == whole
    assert not [p for p in tmp_path.rglob("*") if "#" in p.name]


@pytest.mark.parametrize("nameless", [True, False])
async def test_a_large_local_group_is_written_whole_from_the_writing_threads(tmp_path, nameless):
    # Ingest's groups of hundreds go through WRITE_THREADS threads: every blob readable, one left short
    # by a power cut rewritten, one already whole left as it is, and no staging file left behind.
    from maillink_runtime.blobs import store as store_mod
    from maillink_runtime.blobs.store import open_blob_store

    blobs = open_blob_store(tmp_path.as_uri())
    if not nameless:
        blobs._nameless = False
    group = dict(blob(n) for n in range(100, 100 + 10 * store_mod.LOOP_WRITE_COUNT))
    short_id, whole_id = list(group)[:2]
    short_path, whole_path = tmp_path / blobs.key(short_id), tmp_path / blobs.key(whole_id)
    for path, content in ((short_path, group[short_id][:7]), (whole_path, group[whole_id])):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content)
    whole = whole_path.stat().st_ino
    await blobs.put_many(group)
    assert {blob_id: await blobs.get(blob_id) for blob_id in group} == group
    assert whole_path.stat().st_ino == whole
    assert not [p for p in tmp_path.rglob("*") if "#" in p.name]


@pytest.mark.parametrize("nameless", [True, False])  # O_TMPFILE + linkat, or the staging file beside it
async def test_both_ways_of_writing_a_small_local_blob_give_the_same_files(tmp_path, nameless):
    from maillink_runtime.blobs.store import open_blob_store

    blobs = open_blob_store(tmp_path.as_uri())
    if not nameless:
        blobs._nameless = False
    written = [blob(size) for size in (0, 1, 2_000, 200_000)]
    await blobs.write_many(dict(written))
    await blobs.write_many(dict(written[:2]))  # again: left as they are
    for blob_id, raw in written:
        assert (tmp_path / blobs.key(blob_id)).read_bytes() == raw and await blobs.get(blob_id) == raw
    files = sorted(p.name for p in tmp_path.rglob("*") if p.is_file())
    assert files == sorted(blob_id for blob_id, _ in written)  # nothing else left behind
    if nameless:
        assert blobs._nameless is True  # Linux with /proc: the nameless way was taken, not skipped
