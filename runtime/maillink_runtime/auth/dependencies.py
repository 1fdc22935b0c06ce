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
