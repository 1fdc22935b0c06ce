"""GET /blobs/{blob_id}: streamed from the object store or a legacy copy, with ETag and 304."""
import hashlib
import os

import httpx
import pytest
from fastapi import FastAPI

from maillink_ingest.adapters.legacy_blobs import LegacyBlobs
from maillink_ingest.entrypoints.http import accounts_router
from maillink_runtime.auth import Principal
from maillink_runtime.auth.dependencies import principal
from maillink_schemas.scopes import Scope
from tests.integration.conftest import MB, store_legacy

pytestmark = pytest.mark.integration


@pytest.fixture
async def client_and_blobs(backend, ingest_db):
    blobs = backend.blobs(LegacyBlobs(ingest_db))
    app = FastAPI()
    # Only the blob route is exercised; who may call it is tested with real tokens in tests/e2e/test_trust.py.
    app.include_router(accounts_router(None, None, blobs, None, None, link_secrets=[]))
    app.dependency_overrides[principal] = lambda: Principal("crm-archive", scopes=frozenset({Scope.BLOBS_READ}))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://ingest") as client:
        yield client, blobs


async def test_download_streams_with_etag_and_honours_if_none_match(client_and_blobs):
    client, blobs = client_and_blobs
    raw = os.urandom(3 * MB + 5)
    blob_id = hashlib.sha256(raw).hexdigest()
    await blobs.put_many({blob_id: raw})

    async with client.stream("GET", f"/blobs/{blob_id}") as response:
        chunks = [chunk async for chunk in response.aiter_raw()]
    assert response.status_code == 200 and response.headers["content-type"] == "message/rfc822"
    assert response.headers["etag"] == f'"{blob_id}"' and response.headers["content-length"] == str(len(raw))
    assert hashlib.sha256(b"".join(chunks)).hexdigest() == blob_id

    for header in (f'"{blob_id}"', f'W/"{blob_id}", "other"', "*"):
        cached = await client.get(f"/blobs/{blob_id}", headers={"If-None-Match": header})
        assert cached.status_code == 304 and cached.content == b"" and cached.headers["etag"] == f'"{blob_id}"'
    stale = await client.get(f"/blobs/{blob_id}", headers={"If-None-Match": '"0000"'})
    assert stale.status_code == 200 and stale.content == raw


async def test_legacy_blobs_download_the_same_way(client_and_blobs, ingest_db):
    client, _ = client_and_blobs
    raw = os.urandom(MB + 9)
    blob_id = await store_legacy(ingest_db, raw)
    response = await client.get(f"/blobs/{blob_id}")
    assert response.status_code == 200 and response.content == raw
    assert response.headers["etag"] == f'"{blob_id}"' and response.headers["content-length"] == str(len(raw))
    assert (await client.get(f"/blobs/{blob_id}", headers={"If-None-Match": f'"{blob_id}"'})).status_code == 304


async def test_unknown_blobs_are_404_even_for_if_none_match_star(client_and_blobs):
    client, _ = client_and_blobs
    assert (await client.get(f"/blobs/{'0' * 64}")).status_code == 404
    assert (await client.get(f"/blobs/{'0' * 64}", headers={"If-None-Match": "*"})).status_code == 404
