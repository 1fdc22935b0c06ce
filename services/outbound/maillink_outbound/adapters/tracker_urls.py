"""The one seam to the tracker's URL and token format (docs/outbound.md, "Tracking: what is
assumed"). The tracker service verifies these tokens; if its format differs, only this module changes.

Assumed format:
    tracking_id = deterministic_id("tracking", message_id)       (32 hex chars)
    open:  {base}/t/o/{tracking_id}.{sig("o", tracking_id)}.gif
    click: {base}/t/c/{tracking_id}/{index}.{sig("c", tracking_id, index)}
    sig(...) = base64url(HMAC-SHA256(secret, ":".join(parts)))[:22], without padding
The tracking id comes from the Message-ID, not the message key: the key digests the body, and the
body contains these URLs. TrackingRegistered carries both, so the tracker maps one to the other.
"""
import base64
import hashlib
import hmac

from maillink_schemas.base import deterministic_id

from ..domain.tracking import TrackerUrls


def tracking_id(message_id: str) -> str:
    return deterministic_id("tracking", message_id)


def sign(secret: str, *parts: str) -> str:
    mac = hmac.new(secret.encode(), ":".join(parts).encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(mac).decode().rstrip("=")[:22]


def tracker_urls(base_url: str, secret: str, message_id: str) -> tuple[str, TrackerUrls]:
    tid, base = tracking_id(message_id), base_url.rstrip("/")
    return tid, TrackerUrls(
        click=lambda index: f"{base}/t/c/{tid}/{index}.{sign(secret, 'c', tid, str(index))}",
        pixel=f"{base}/t/o/{tid}.{sign(secret, 'o', tid)}.gif",
    )
