"""Route-level checks, after the middleware has verified the token: scopes (403) and the acting user."""
from fastapi import HTTPException, Request

from .principal import Principal


def principal(request: Request) -> Principal:
    found = getattr(request.state, "principal", None)
    if found is None:  # only reachable on a public route, where it must not be asked for
        raise HTTPException(401, "This endpoint needs a bearer token.")
    return found


def require(*scopes: str):
    """A dependency that returns the caller, or answers 403 naming the scope that is missing."""

    def check(request: Request) -> Principal:
        caller = principal(request)
        missing = [s for s in scopes if not caller.has(s)]
        if missing:
            raise HTTPException(403, f"The token does not grant {', '.join(missing)}, which this request needs.")
        return caller

    return check


def acting_user(caller: Principal) -> str:
    """The user a request acts for: only ever the token's `user_id`, never a parameter."""
    if not caller.user_id:
        raise HTTPException(403, "This request acts as a user, and the token names no acting user (claim user_id).")
    return caller.user_id


def check_blob_access(caller: Principal, blob_id: str, viewer: str | None, expires: int | None,
                      signature: str | None, link_secrets: list[bytes]) -> None:
    """Raw MIME is served to a trusted service with `blobs:read`, or through a link the query API
    signed for this very viewer (links.py). The one rule for every service that owns blobs."""
    from .links import link_is_valid
    if caller.has("blobs:read"):
        return
    if viewer is None or expires is None or signature is None:
        raise HTTPException(403, "Raw messages need the blobs:read scope, or a link from the query API.")
    if caller.user_id != viewer:
        raise HTTPException(403, "This link was made for another user.")
    if not link_is_valid(link_secrets, blob_id, viewer, expires, signature):
        raise HTTPException(403, "This link has expired or is not valid; open the message again for a fresh one.")
