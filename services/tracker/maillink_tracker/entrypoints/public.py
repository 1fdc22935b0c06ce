"""The two public endpoints (listed in maillink_runtime.auth.PUBLIC_ROUTES): a mail client cannot
send a token. They answer only three ways: the pixel, a 302 to a registered URL, or a plain 404."""
import base64

from fastapi import APIRouter, Request
from fastapi.responses import Response

from ..edge import Edge

PIXEL_ROUTE, CLICK_ROUTE = "/o/{token}", "/c/{token}"
# The smallest transparent GIF: 43 bytes.
GIF = base64.b64decode("R0lGODlhAQABAIAAAP///wAAACH5BAEAAAAALAAAAAABAAEAAAICRAEAOw==")
# no-store: every open reaches us (as far as a proxy like Gmail's lets it); never a cookie.
_NO_STORE = {"Cache-Control": "no-store, no-cache, must-revalidate, max-age=0", "Pragma": "no-cache",
             "Expires": "0"}
_NOT_FOUND_PAGE = b"Not found.\n"


def not_found() -> Response:
    return Response(_NOT_FOUND_PAGE, status_code=404, media_type="text/plain; charset=utf-8", headers=_NO_STORE)


def public_router(edge: Edge) -> APIRouter:
    router = APIRouter(tags=["public tracking"])

    @router.api_route(PIXEL_ROUTE, methods=["GET", "HEAD"], include_in_schema=False)
    async def pixel(token: str, request: Request) -> Response:
        answer = await edge.open(token, request.method, request.headers.get("user-agent", ""),
                                 request.client.host if request.client else None)
        if not answer.found:
            return not_found()
        return Response(GIF, media_type="image/gif", headers=_NO_STORE)

    @router.api_route(CLICK_ROUTE, methods=["GET", "HEAD"], include_in_schema=False)
    async def click(token: str, request: Request) -> Response:
        answer = await edge.click(token, request.method, request.headers.get("user-agent", ""),
                                  request.client.host if request.client else None)
        if not answer.found or answer.location is None:
            return not_found()
        # Location is the registered URL as is: safe_target() admitted printable ASCII only.
        return Response(status_code=302, headers={"Location": answer.location, **_NO_STORE})

    return router
