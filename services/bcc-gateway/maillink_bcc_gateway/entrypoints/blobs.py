"""GET /blobs/{blob_id}: the raw MIME of mail the gateway accepted (it owns these blobs), for a
trusted service (blobs:read) or a user holding a signed link from the query API, as at ingest."""
from fastapi import APIRouter, Depends, HTTPException, Path, Query, Response

from maillink_runtime.auth import Principal
from maillink_runtime.auth.dependencies import check_blob_access, principal
from maillink_runtime.blobs import BlobStore



def blobs_router(blobs: BlobStore, link_secrets: list[bytes]) -> APIRouter:
    router = APIRouter()

    @router.get("/blobs/{blob_id}")
    async def blob(blob_id: str = Path(pattern=r"^[0-9a-f]{64}$"), caller: Principal = Depends(principal),
                   viewer: str | None = Query(None), exp: int | None = Query(None),
                   sig: str | None = Query(None, max_length=100)) -> Response:
        check_blob_access(caller, blob_id, viewer, exp, sig, link_secrets)
        data = await blobs.get(blob_id)
        if data is None:
            raise HTTPException(404, f"No stored message {blob_id}.")
        return Response(data, media_type="message/rfc822")

    return router
