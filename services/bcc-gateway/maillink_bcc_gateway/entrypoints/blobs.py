"""GET /blobs/{blob_id}: the raw MIME of mail the gateway accepted (it owns these blobs), for a
trusted service (blobs:read) or a user holding a signed link from the query API, as at ingest.
Streamed with the same ETag/Content-Length rules as ingest's route, never read whole into memory."""
from fastapi import APIRouter, Depends, Path, Query, Response

from maillink_runtime.auth import Principal
from maillink_runtime.auth.dependencies import check_blob_access, principal
from maillink_runtime.blobs import BlobStore
from maillink_runtime.blobs.download import IfNoneMatch, blob_response


def blobs_router(blobs: BlobStore, link_secrets: list[bytes]) -> APIRouter:
    router = APIRouter()

    @router.get("/blobs/{blob_id}")
    async def blob(blob_id: str = Path(pattern=r"^[0-9a-f]{64}$"), caller: Principal = Depends(principal),
                   viewer: str | None = Query(None), exp: int | None = Query(None),
                   sig: str | None = Query(None, max_length=100), if_none_match: IfNoneMatch = None) -> Response:
        check_blob_access(caller, blob_id, viewer, exp, sig, link_secrets)
        return await blob_response(blobs, blob_id, if_none_match)

    return router
