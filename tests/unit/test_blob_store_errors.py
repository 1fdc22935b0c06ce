"""maillink_blob_store_errors_total counts what really failed in the object store (local files
here: a path blocked by a file, bytes damaged on disk), and not the ordinary answers "not found"
and "already there"."""
import hashlib

import pytest
from prometheus_client import REGISTRY

from maillink_runtime.blobs.store import CorruptBlob, open_blob_store


def errors(operation: str) -> float:
    return REGISTRY.get_sample_value("maillink_blob_store_errors_total", {"operation": operation}) or 0.0


async def test_a_failed_put_is_counted(tmp_path):
    store = open_blob_store(f"file://{tmp_path}/blobs")
    (tmp_path / "blobs").mkdir(exist_ok=True)
    (tmp_path / "blobs" / "ingest").write_bytes(b"a file where the key's directory must go")
    raw = b"Subject: hello\r\n\r\nbody\r\n"
    before = errors("put")
    with pytest.raises(Exception):
        await store.put_many({hashlib.sha256(raw).hexdigest(): raw})
    assert errors("put") == before + 1


async def test_damaged_bytes_are_counted_and_normal_answers_are_not(tmp_path):
    store = open_blob_store(f"file://{tmp_path}/blobs")
    raw = b"Subject: stored\r\n\r\nbody\r\n"
    blob_id = hashlib.sha256(raw).hexdigest()
    counts = {op: errors(op) for op in ("put", "get", "head", "verify")}
    await store.put_many({blob_id: raw})
    await store.put_many({blob_id: raw})                     # already there: not an error
    assert await store.get(blob_id) == raw
    assert await store.get("0" * 64) is None                  # not found: not an error
    assert await store.exists("0" * 64) is False
    assert {op: errors(op) for op in counts} == counts

    path = tmp_path / "blobs" / store.key(blob_id)
    path.chmod(0o644)
    path.write_bytes(raw.replace(b"body", b"bodY"))
    with pytest.raises(CorruptBlob):
        await store.get(blob_id)
    assert errors("verify") == counts["verify"] + 1
