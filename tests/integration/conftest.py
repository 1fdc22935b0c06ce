"""Blob-store backends for integration tests: local files, and S3 on a real versitygw.

versitygw is started through the project's own script (deploy/local/versitygw.sh) with its own run
dir under the shared one, only if it is not running already, and stopped again only if this session
started it. `S3_PORT` picks its port (default 10900)."""
import hashlib
import os
import subprocess
import uuid
from dataclasses import dataclass

import obstore
import pytest
from bson import Binary
from obstore.store import ObjectStore

from maillink_runtime.blobs.location import open_store, parse_blob_url
from maillink_runtime.blobs.store import BlobStore, open_blob_store
from maillink_ingest.adapters.legacy_blobs import LegacyBlobs
from tests.conftest import ROOT, RUN_DIR, service_db

VERSITYGW = ROOT / "deploy/local/versitygw.sh"
MB = 1024 * 1024


@dataclass
class Backend:
    url: str
    options: dict

    def blobs(self, legacy: LegacyBlobs | None = None) -> BlobStore:
        return open_blob_store(self.url, legacy=legacy, **self.options)

    def raw(self) -> ObjectStore:
        """A second, plain client of the same store: to remove or damage objects behind the BlobStore's back."""
        return open_store(parse_blob_url(self.url), **self.options)


@pytest.fixture(scope="session")
def s3_server():
    env = {**os.environ, "MAILLINK_RUN_DIR": str(RUN_DIR / "s3-tests"), "S3_PORT": os.environ.get("S3_PORT", "10900")}
    running = subprocess.run(["bash", str(VERSITYGW), "status"], env=env, capture_output=True).returncode == 0
    if not running:
        subprocess.run(["bash", str(VERSITYGW), "start"], env=env, check=True)
    out = subprocess.run(["bash", str(VERSITYGW), "env"], env=env, capture_output=True, text=True, check=True).stdout
    yield dict(line.split("=", 1) for line in out.splitlines() if "=" in line)
    if not running:
        subprocess.run(["bash", str(VERSITYGW), "stop"], env=env, check=True)


@pytest.fixture(params=["local", "s3"])
async def backend(request, tmp_path, monkeypatch):
    if request.param == "local":
        yield Backend(tmp_path.as_uri(), {})
        return
    s3 = request.getfixturevalue("s3_server")
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):  # obstore reads credentials from the environment
        monkeypatch.setenv(name, s3[name])
    backend = Backend(f"{s3['MAILLINK_BLOB_URL']}{uuid.uuid4().hex}",
                      {"endpoint": s3["AWS_ENDPOINT_URL"], "region": s3["AWS_REGION"], "allow_http": True})
    yield backend
    raw = backend.raw()  # each test has a prefix of its own; leave the bucket as it was
    async for batch in obstore.list(raw):
        await obstore.delete_async(raw, [meta["path"] for meta in batch])


@pytest.fixture
async def ingest_db(namespace):
    async with service_db(namespace, "maillink_ingest") as database:
        yield database


async def store_legacy(db, raw: bytes, *, blob_id: str | None = None, drop_chunk: int | None = None) -> str:
    """Writes a blob exactly as the previous (FerretDB) BlobStore did: 1 MB chunks, then the manifest."""
    blob_id = blob_id or hashlib.sha256(raw).hexdigest()
    offsets = list(range(0, max(len(raw), 1), MB))
    chunks = [{"_id": f"{blob_id}:{n}", "data": Binary(raw[off:off + MB])} for n, off in enumerate(offsets)
              if n != drop_chunk]
    await db["blob_chunks"].insert_many(chunks)
    await db["blobs"].insert_one({"_id": blob_id, "size": len(raw), "chunks": len(offsets)})
    return blob_id
