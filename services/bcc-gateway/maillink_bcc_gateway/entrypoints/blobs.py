"""GET /blobs/{blob_id}: the raw MIME of mail the gateway accepted (it owns these blobs), for a
trusted service (blobs:read) or a user holding a signed link from the query API, as at ingest."""
from fastapi import APIRouter, Depends, HTTPException, Path, Query, Response

from maillink_runtime.auth import Principal
from maillink_runtime.auth.dependencies import principal
from maillink_runtime.auth.links import link_is_valid
from maillink_runtime.blobs import BlobStore
from maillink_schemas.scopes import Scope



def blobs_router(blobs: BlobStore, link_secrets: list[bytes]) -> APIRouter:
    router = APIRouter()

    @router.get("/blobs/{blob_id}")
    async def blob(blob_id: str = Path(pattern=r"^[0-9a-f]{64}$"), caller: Principal = Depends(principal),
                   viewer: str | None = Query(None), exp: int | None = Query(None),
                   sig: str | None = Query(None, max_length=100)) -> Response:
        if not caller.has(Scope.BLOBS_READ):
            if viewer is None or exp is None or sig is None:
                raise HTTPException(403, "Raw messages need the blobs:read scope, or a link from the query API.")
            if caller.user_id != viewer:
                raise HTTPException(403, "This link was made for another user.")
            if not link_is_valid(link_secrets, blob_id, viewer, exp, sig):
                raise HTTPException(403, "This link has expired or is not valid; open the message again for a "
                                         "fresh one.")
        data = await blobs.get(blob_id)
        if data is None:
            raise HTTPException(404, f"No stored message {blob_id}.")
        return Response(data, media_type="message/rfc822")

    return router
