"""Outbound's seam to the tracker's URLs: the pixel and the rewritten links, with tokens minted by
the one token definition both services share (maillink_schemas.tracking_token; docs/tracker.md).

    pixel:      {base}/o/{mint(keys, tracking_id, "open")}
    link i:     {base}/c/{mint(keys, tracking_id, "click", i)}

The token carries the message's *tracking id*, not its message key: the key digests the body, and
the body contains these URLs. The tracking id comes from the Message-ID (fixed before the body is
built); `TrackingRegistered` carries both, and the tracker keys its registrations by the tracking
id, so it maps a token to the message key.

Deterministic for a given message: a crashed send is rebuilt byte for byte (service_layer/recovery.py),
so the tokens are minted "at" the message's Date (it picks the signing key and the issued day).
"""
from datetime import datetime

from maillink_schemas import tracking_token as tt
from maillink_schemas.base import deterministic_id

from ..domain.tracking import TrackerUrls


def tracking_id(message_id: str) -> str:
    return deterministic_id("tracking", message_id)


def tracker_urls(base_url: str, keyring: tt.Keyring, message_id: str, date: datetime) -> tuple[str, TrackerUrls]:
    tid, base = tracking_id(message_id), base_url.rstrip("/")
    return tid, TrackerUrls(
        click=lambda index: f"{base}/c/{tt.mint(keyring, tid, 'click', index, now=date)}",
        pixel=f"{base}/o/{tt.mint(keyring, tid, 'open', now=date)}",
    )
