"""Blobs stored in FerretDB by the previous version: still served (read-through), and copied into
the object store by `python -m maillink_ingest.migrate_blobs`, verified and idempotent."""
import hashlib
import os
import subprocess
import sys

import pytest

from maillink_runtime.blobs.store import CorruptBlob
from maillink_ingest.adapters.legacy_blobs import LegacyBlobs
from maillink_ingest.migrate_blobs import migrate
from tests.conftest import MONGODB_URL
from tests.integration.conftest import MB, store_legacy

pytestmark = pytest.mark.integration


async def test_legacy_blobs_are_served_then_migrated_once(ingest_db, backend):
    db = ingest_db
    raws = [os.urandom(2 * MB + 777), os.urandom(4_000), b""]
    ids = [await store_legacy(db, raw) for raw in raws]
    damaged = await store_legacy(db, b"tampered", blob_id=hashlib.sha256(b"original").hexdigest())
    incomplete = await store_legacy(db, os.urandom(MB + 1), drop_chunk=1)
    legacy = LegacyBlobs(db)

    # Read-through: not in the object store yet, served (streamed, verified) from the legacy collections.
    blobs = backend.blobs(legacy)
    opened = await blobs.open(ids[0])
    chunks = [c async for c in opened.chunks]
    assert opened.size == len(raws[0]) and len(chunks) == 3 and b"".join(chunks) == raws[0]
    assert await blobs.get(ids[2]) == b""
    with pytest.raises(CorruptBlob):
        await blobs.get(damaged)
    assert not await blobs.exists(ids[0])

    outcome = await migrate(legacy, blobs, batch=2)
    assert outcome.copied == 3 and outcome.present == 0
    assert set(outcome.failed) == {damaged, incomplete}
    assert "do not hash" in outcome.failed[damaged] and "chunk 1 of 2 is missing" in outcome.failed[incomplete]

    # Now served by the object store alone, and a rerun copies nothing.
    alone = backend.blobs(legacy=None)
    assert [await alone.get(i) for i in ids] == raws
    again = await migrate(legacy, blobs, batch=2)
    assert (again.copied, again.present, len(again.failed)) == (0, 3, 2)


async def test_the_migration_command(ingest_db, namespace, tmp_path):
    db = ingest_db
    raws = [os.urandom(1_500_000), os.urandom(10)]
    ids = [await store_legacy(db, raw) for raw in raws]
    env = {**os.environ, "MONGODB_URL": MONGODB_URL, "MAILLINK_NAMESPACE": namespace,
           "MAILLINK_BLOB_URL": tmp_path.as_uri()}
    command = [sys.executable, "-m", "maillink_ingest.migrate_blobs"]
    first = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)
    assert first.returncode == 0, first.stderr
    assert first.stdout.startswith("copied 2, already there 0, failed 0")
    assert "2/2" in first.stderr  # progress
    stored = {p.name: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()}
    assert stored == dict(zip(ids, raws))
    assert all(p.relative_to(tmp_path).parts == (f"{namespace}ingest", p.name[:2], p.name)
               for p in tmp_path.rglob("*") if p.is_file())
    second = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)
    assert second.returncode == 0 and second.stdout.startswith("copied 0, already there 2, failed 0")
