"""Confirmation links for alternative addresses: signed, single-use, expiring. Pure.

The token names the address record, a nonce and the expiry, and carries an HMAC-SHA256 over them
with the shared link secrets (MAILLINK_LINK_KEYS: the first signs, every one verifies, so the
secret rotates without breaking links already mailed), in a domain of its own ("bcc-confirm") so
it can never be mistaken for a blob link. Single use comes from the nonce: confirming clears it
in the store, so a second use no longer matches.
"""
import base64
import hashlib
import hmac
from dataclasses import dataclass
from enum import StrEnum


@dataclass(frozen=True)
class LinkClaim:
    address_id: str
    nonce: str
    expires: int


class LinkState(StrEnum):
    VALID = "valid"
    EXPIRED = "expired"
    INVALID = "invalid"


def _mac(secret: bytes, claim: LinkClaim) -> str:
    message = "\x1f".join(("bcc-confirm", claim.address_id, claim.nonce, str(claim.expires))).encode()
    return base64.urlsafe_b64encode(hmac.new(secret, message, hashlib.sha256).digest()).rstrip(b"=").decode()


def make_token(secret: bytes, claim: LinkClaim) -> str:
    return f"{claim.address_id}.{claim.nonce}.{claim.expires}.{_mac(secret, claim)}"


def read_token(secrets: list[bytes], token: str, now: float) -> tuple[LinkState, LinkClaim | None]:
    parts = token.split(".")
    if len(parts) != 4 or not parts[2].isdigit():
        return LinkState.INVALID, None
    claim = LinkClaim(parts[0], parts[1], int(parts[2]))
    if not any(hmac.compare_digest(_mac(s, claim), parts[3]) for s in secrets):
        return LinkState.INVALID, None
    return (LinkState.EXPIRED if claim.expires < now else LinkState.VALID), claim
