"""GET /blobs/{blob_id}: raw MIME streamed from the object store (or a legacy copy), cached by hash.
Shared by the services that own blobs (ingest, bcc-gateway): a trusted service (blobs:read) or a user
holding a signed link from the query API may read them.

The ETag is the blob id itself (the sha256 of the bytes), so it is known before a byte is read and
never changes: a client holding it gets 304 without the body. Content-Length comes from the store,
so a stream cut short (a blob that fails verification) is seen as incomplete by every client.
"""
from typing import Annotated

from fastapi import APIRouter, Depends, Header, HTTPException, Path, Query
from fastapi.responses import Response, StreamingResponse

from ..auth import Principal
from ..auth.dependencies import check_blob_access, principal
from .store import BlobStore

IfNoneMatch = Annotated[str | None, Header()]
# Immutable by construction (content-addressed); `private` because the route is per-viewer.
CACHE = "private, max-age=31536000, immutable"


def etag(blob_id: str) -> str:
    return f'"{blob_id}"'


def not_modified(if_none_match: str | None, blob_id: str) -> bool:
    # RFC 9110 13.1.2: a list of entity tags or "*", compared weakly (a W/ prefix does not matter).
    tags = [tag.strip() for tag in (if_none_match or "").split(",")]
    return any(tag == "*" or tag.removeprefix("W/") == etag(blob_id) for tag in tags)


async def blob_response(blobs: BlobStore, blob_id: str, if_none_match: str | None) -> Response:
    blob = await blobs.open(blob_id)
    if blob is None:
        raise HTTPException(404, f"No stored message {blob_id}.")
    headers = {"ETag": etag(blob_id), "Cache-Control": CACHE}
    if not_modified(if_none_match, blob_id):
        await blob.chunks.aclose()
        return Response(status_code=304, headers=headers)
    return StreamingResponse(blob.chunks, media_type="message/rfc822",
                             headers={**headers, "Content-Length": str(blob.size)})


def blobs_router(blobs: BlobStore, link_secrets: list[bytes]) -> APIRouter:
    router = APIRouter()

    @router.get("/blobs/{blob_id}")
    async def blob(blob_id: str = Path(pattern=r"^[0-9a-f]{64}$"), caller: Principal = Depends(principal),
                   viewer: str | None = Query(None), exp: int | None = Query(None),
                   sig: str | None = Query(None, max_length=100), if_none_match: IfNoneMatch = None) -> Response:
        check_blob_access(caller, blob_id, viewer, exp, sig, link_secrets)
        return await blob_response(blobs, blob_id, if_none_match)

    return router
