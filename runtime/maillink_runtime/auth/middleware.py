"""Default deny: every request needs a valid bearer token unless its path is in PUBLIC_ROUTES.

A pure ASGI middleware, not a per-route dependency, so a route added later (FastAPI's /docs and
/openapi.json included) can never be forgotten: it is closed until listed as public.
"""
import json
import re

import structlog
from starlette.routing import compile_path

from .principal import Principal
from .public import PUBLIC_ROUTES
from .tokens import Unauthorized, verify


def _public_matcher(routes: frozenset[str]):
    static = {r for r in routes if "{" not in r}
    templated = [compile_path(r)[0] for r in routes if "{" in r]

    def is_public(path: str) -> bool:
        return path in static or any(p.match(path) for p in templated)

    return is_public


class AuthMiddleware:
    def __init__(self, app, *, keys, audience: str, max_lifetime_s: int, issuer: str | None,
                 public_routes: frozenset[str] = PUBLIC_ROUTES) -> None:
        self.app, self._keys, self._audience = app, keys, audience
        self._max_lifetime_s, self._issuer = max_lifetime_s, issuer
        self._is_public = _public_matcher(public_routes)

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or self._is_public(scope["path"]):
            return await self.app(scope, receive, send)
        token = _bearer(scope)
        if token is None:
            return await _deny(send, "This endpoint needs a bearer token (Authorization: Bearer <token>).")
        try:
            principal: Principal = await verify(token, self._keys, self._audience, self._max_lifetime_s, self._issuer)
        except Unauthorized as exc:
            return await _deny(send, str(exc))
        except OSError:
            return await _deny(send, "The service cannot read its key set right now; try again shortly.", 503)
        scope.setdefault("state", {})["principal"] = principal
        with structlog.contextvars.bound_contextvars(caller=principal.subject, acting_user=principal.user_id):
            await self.app(scope, receive, send)


_BEARER = re.compile(rb"^Bearer +([A-Za-z0-9_\-.=]+) *$", re.IGNORECASE)


def _bearer(scope) -> str | None:
    for name, value in scope.get("headers", ()):
        if name == b"authorization":
            match = _BEARER.match(value)
            return match.group(1).decode() if match else None
    return None


async def _deny(send, detail: str, status: int = 401) -> None:
    body = json.dumps({"detail": detail}).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    if status == 401:
        headers.append((b"www-authenticate", b'Bearer error="invalid_token"'))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
