"""The two public endpoints, GET and HEAD on /o/{token} (the open pixel) and /c/{token} (the click
redirect), listed in maillink_runtime.auth.PUBLIC_ROUTES: a mail client cannot send a token; the
signed tracking token in the path is the credential. They answer only these ways: the pixel, a
302 to a registered URL, a plain 404, or (a click while the store cannot be read) a plain 503.

They are plain ASGI, in front of FastAPI (the process serves `app.served_app`), because the pixel
is the service's hot path: profiled under wrk (docs/tracker.md), FastAPI's routing, dependency and
per-request telemetry layers cost more than everything the tracker itself does. The paths match exactly what the listed
templates match (one non-empty segment after the prefix); anything else goes on to FastAPI.
"""
import base64

from prometheus_client import Counter

from maillink_runtime.auth import PUBLIC_ROUTES

from ..edge import Answer, Edge

PIXEL_ROUTE, CLICK_ROUTE = "/o/{token}", "/c/{token}"
assert {PIXEL_ROUTE, CLICK_ROUTE} <= PUBLIC_ROUTES, "the tracker's public paths must be listed as public"

# The smallest transparent GIF: 43 bytes.
GIF = base64.b64decode("R0lGODlhAQABAIAAAP///wAAACH5BAEAAAAALAAAAAABAAEAAAICRAEAOw==")
NOT_FOUND_PAGE = b"Not found.\n"
# no-store: every open reaches us (as far as a proxy like Gmail's lets it); never a cookie. Only
# Cache-Control: uvicorn checks every header with a regex, and HTTP/1.0's Pragma/Expires add nothing.
_NO_STORE = [(b"cache-control", b"no-store, no-cache, must-revalidate, max-age=0")]
_PIXEL_HEADERS = [(b"content-type", b"image/gif"), (b"content-length", str(len(GIF)).encode()), *_NO_STORE]
_NOT_FOUND_HEADERS = [(b"content-type", b"text/plain; charset=utf-8"),
                      (b"content-length", str(len(NOT_FOUND_PAGE)).encode()), *_NO_STORE]
_REDIRECT_HEADERS = [(b"content-length", b"0"), *_NO_STORE]
UNAVAILABLE_PAGE = b"Try again shortly.\n"
_UNAVAILABLE_HEADERS = [(b"content-type", b"text/plain; charset=utf-8"),
                        (b"content-length", str(len(UNAVAILABLE_PAGE)).encode()), (b"retry-after", b"5"), *_NO_STORE]


# By status code, so 5xx is visible (alert MaillinkTracker5xx); a failure that escapes counts as the
# 500 uvicorn answers with. Children are looked up once per status: the pixel is the hot path.
RESPONSES = Counter("tracker_responses_total", "Answers of the public tracking endpoints by HTTP status", ["status"])
_BY_STATUS: dict[int, object] = {}


def _count(status: int) -> None:
    counter = _BY_STATUS.get(status)
    if counter is None:
        counter = _BY_STATUS[status] = RESPONSES.labels(str(status))
    counter.inc()


class PublicEndpoints:
    """ASGI middleware: answers the public tracking paths itself, passes everything else on."""

    def __init__(self, app, edge: Edge) -> None:
        self.app, self.edge = app, edge

    async def __call__(self, scope, receive, send):
        if scope["type"] == "http" and scope["method"] in ("GET", "HEAD"):
            path: str = scope["path"]
            if len(path) > 3 and path[0] == "/" and path[2] == "/" and path[1] in "oc" and "/" not in path[3:]:
                try:
                    return await self._answer(path[1], path[3:], scope, send)
                except Exception:
                    _count(500)
                    raise
        return await self.app(scope, receive, send)

    async def _answer(self, which: str, token: str, scope, send) -> None:
        method = scope["method"]
        user_agent = next((v.decode("latin-1") for k, v in scope["headers"] if k == b"user-agent"), "")
        client = scope.get("client")
        ip = client[0] if client else None
        if which == "o":
            answer: Answer = await self.edge.open(token, method, user_agent, ip)
            if answer.found:
                return await _respond(send, 200, _PIXEL_HEADERS, GIF, method)
        else:
            answer = await self.edge.click(token, method, user_agent, ip)
            if answer.found and answer.location is not None:
                # The registered URL as is: safe_target() admitted printable ASCII only.
                return await _respond(send, 302, [(b"location", answer.location.encode("ascii")), *_REDIRECT_HEADERS],
                                      b"", method)
            if answer.unavailable:
                return await _respond(send, 503, _UNAVAILABLE_HEADERS, UNAVAILABLE_PAGE, method)
        await _respond(send, 404, _NOT_FOUND_HEADERS, NOT_FOUND_PAGE, method)


async def _respond(send, status: int, headers: list, body: bytes, method: str) -> None:
    _count(status)
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": b"" if method == "HEAD" else body})
