"""Verifying a bearer token into a Principal. Pure apart from the key lookup."""
import jwt

from .keys import ALGORITHMS
from .principal import Principal

REQUIRED_CLAIMS = ["exp", "iat", "aud", "sub"]


class Unauthorized(Exception):
    """401: the caller could not be identified. `str(exc)` is worded for a person."""


class Forbidden(Exception):
    """403: the caller is known but may not do this. `str(exc)` is worded for a person."""


async def verify(token: str, keys, audience: str, max_lifetime_s: int, issuer: str | None = None) -> Principal:
    try:
        header = jwt.get_unverified_header(token)
    except jwt.DecodeError:
        raise Unauthorized("The bearer token is malformed.") from None
    kid = header.get("kid")
    if header.get("alg") not in ALGORITHMS:
        raise Unauthorized(f"Tokens must be signed with {' or '.join(ALGORITHMS)}.")
    key = await keys.key(kid) if isinstance(kid, str) else None
    if key is None:
        raise Unauthorized("The token was signed with a key this service does not know (unknown or retired kid).")
    if key.algorithm_name != header["alg"]:
        raise Unauthorized("The token's algorithm does not match its key.")
    try:
        claims = jwt.decode(token, key.key, algorithms=[key.algorithm_name], audience=audience, issuer=issuer,
                            options={"require": REQUIRED_CLAIMS + (["iss"] if issuer else [])}, leeway=30)
    except jwt.ExpiredSignatureError:
        raise Unauthorized("The token has expired; ask for a new one.") from None
    except jwt.InvalidAudienceError:
        raise Unauthorized(f"The token is not meant for this service (audience must include {audience}).") from None
    except jwt.MissingRequiredClaimError as exc:
        raise Unauthorized(f"The token lacks the required claim '{exc.claim}'.") from None
    except jwt.InvalidTokenError:
        raise Unauthorized("The token's signature or claims are invalid.") from None
    if claims["exp"] - claims["iat"] > max_lifetime_s:
        raise Unauthorized(f"The token lives longer than the {max_lifetime_s} s this service accepts; "
                           "use a short-lived token.")
    return Principal(subject=str(claims["sub"]), user_id=_str_or_none(claims.get("user_id")),
                     company_id=_str_or_none(claims.get("company_id")),
                     scopes=frozenset(str(claims.get("scope", "")).split()), key_id=kid)


def _str_or_none(value) -> str | None:
    return str(value) if value not in (None, "") else None
