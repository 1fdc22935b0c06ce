"""The tracking token: the one URL contract between outbound (which mints tokens into the pixel and
the rewritten links) and the tracker (which verifies them). Stdlib only, so both sides share it.

A token is URL-safe base64 (no padding) of

    version(1) kid(1) kind(1) issued_day(2) link_index(2) message_key(16 or n) mac(12)

- `kind` is open or click; bit 0x80 marks the sender's own view (outbound renders the sender's copy
  with it, and the tracker answers it without counting it); bit 0x40 says the message key is 32
  lower-case hex digits packed into 16 bytes (maillink's own keys), otherwise it is UTF-8.
- `issued_day` counts days since 2020-01-01: tokens expire after a configurable age.
- `mac` is HMAC-SHA256 over everything before it, truncated to 96 bits (forging one still takes
  about 2^96 tries; the token stays short: 47 characters for a maillink message key, so a tracked
  URL stays far under 200 characters).

Keys rotate: each key has a small numeric id and the time it became the signing key. The newest
active key signs; an older key still verifies until its successor has been active for the grace
period, then its tokens are refused like forged ones.
"""
import base64
import binascii
import hashlib
import hmac
import re
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from typing import Literal

VERSION = 1
MAC_BYTES = 12
KIND_OPEN, KIND_CLICK = 0, 1
_SENDER_VIEW, _HEX_KEY = 0x80, 0x40
_EPOCH = date(2020, 1, 1)
_EPOCH_ORDINAL = _EPOCH.toordinal()
_HEX32 = re.compile(r"[0-9a-f]{32}")
_DOMAIN = b"maillink-tracking\x00"
MAX_MESSAGE_KEY_BYTES = 64
MIN_SECRET_BYTES = 16

Kind = Literal["open", "click"]


@dataclass(frozen=True)
class TrackingKey:
    kid: int
    secret: bytes
    active_from: datetime


@dataclass(frozen=True)
class Keyring:
    """Keys newest first. `grace` is how long a replaced key keeps verifying."""

    keys: tuple[TrackingKey, ...]
    grace: timedelta

    def signing_key(self, now: datetime) -> TrackingKey:
        for key in self.keys:
            if key.active_from <= now:
                return key
        raise ValueError("no tracking key is active yet")

    def verifying_key(self, kid: int, now: datetime) -> TrackingKey | None:
        successor: TrackingKey | None = None
        for key in self.keys:  # newest first, so `successor` is the key that replaced `key`
            if key.kid == kid:
                if key.active_from > now:
                    return None
                if successor is not None and successor.active_from <= now - self.grace:
                    return None  # replaced longer ago than the grace period
                return key
            successor = key if key.active_from <= now else successor
        return None


def parse_keys(spec: str, grace: timedelta) -> Keyring:
    """`kid:YYYY-MM-DD:secret` items, comma-separated, e.g. `2:2026-11-01:…,1:2026-01-01:…`: key 2 signs
    from 1 November on; key 1 keeps verifying until 1 November + `grace`."""
    keys = []
    for item in (part.strip() for part in spec.split(",")):
        if not item:
            continue
        kid_text, since, secret = (item.split(":", 2) + ["", ""])[:3]
        if not kid_text.isdigit() or not 0 < int(kid_text) < 256:
            raise ValueError("a tracking key id must be a number from 1 to 255")
        try:
            active = datetime.combine(date.fromisoformat(since), datetime.min.time(), timezone.utc)
        except ValueError:
            raise ValueError(f"tracking key {kid_text}: expected kid:YYYY-MM-DD:secret") from None
        if len(secret.encode()) < MIN_SECRET_BYTES:
            raise ValueError(f"tracking key {kid_text}: the secret needs at least {MIN_SECRET_BYTES} bytes")
        keys.append(TrackingKey(int(kid_text), secret.encode(), active))
    if not keys:
        raise ValueError("no tracking keys configured")
    if len({k.kid for k in keys}) != len(keys):
        raise ValueError("tracking key ids must be unique")
    return Keyring(tuple(sorted(keys, key=lambda k: k.active_from, reverse=True)), grace)


@dataclass(frozen=True)
class TokenClaims:
    message_key: str
    kind: Kind
    link_index: int
    sender_view: bool
    issued: date
    kid: int


def _mac(secret: bytes, payload: bytes) -> bytes:
    return hmac.digest(secret, _DOMAIN + payload, hashlib.sha256)[:MAC_BYTES]


def mint(keyring: Keyring, message_key: str, kind: Kind, link_index: int = 0, *, sender_view: bool = False,
         now: datetime | None = None) -> str:
    now = now or datetime.now(timezone.utc)
    key = keyring.signing_key(now)
    if not 0 <= link_index < 65536:
        raise ValueError("link index out of range")
    flags = (KIND_CLICK if kind == "click" else KIND_OPEN) | (_SENDER_VIEW if sender_view else 0)
    if _HEX32.fullmatch(message_key):
        flags |= _HEX_KEY
        key_bytes = bytes.fromhex(message_key)
    else:
        key_bytes = message_key.encode()
        if not 0 < len(key_bytes) <= MAX_MESSAGE_KEY_BYTES:
            raise ValueError("message key must be 1 to 64 bytes")
    day = (now.date() - _EPOCH).days
    payload = bytes([VERSION, key.kid, flags]) + day.to_bytes(2, "big") + link_index.to_bytes(2, "big") + key_bytes
    return base64.urlsafe_b64encode(payload + _mac(key.secret, payload)).rstrip(b"=").decode()


_MIN_CHARS, _MAX_CHARS = 20, 120


def read(keyring: Keyring, token: str, *, max_age: timedelta, now: datetime | None = None) -> TokenClaims | None:
    """The token's claims, or None when it is malformed, forged, tampered, expired or signed by an
    unknown or retired key. Never raises on any input."""
    if not _MIN_CHARS <= len(token) <= _MAX_CHARS or not token.isascii():
        return None
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
    except (binascii.Error, ValueError):
        return None
    # Canonical form only: the decoder skips characters outside the alphabet and ignores spare
    # padding bits, so any second spelling of the same bytes is refused here.
    if base64.urlsafe_b64encode(raw).rstrip(b"=").decode() != token:
        return None
    if len(raw) < 7 + 1 + MAC_BYTES or raw[0] != VERSION:
        return None
    payload, mac = raw[:-MAC_BYTES], raw[-MAC_BYTES:]
    now = now or datetime.now(timezone.utc)
    key = keyring.verifying_key(payload[1], now)
    if key is None or not hmac.compare_digest(_mac(key.secret, payload), mac):
        return None
    flags = payload[2]
    kind_bits = flags & ~(_SENDER_VIEW | _HEX_KEY)
    if kind_bits not in (KIND_OPEN, KIND_CLICK):
        return None
    # Whole days as integers (the token's unit): date objects cost more than the HMAC.
    issued_day, today = int.from_bytes(payload[3:5], "big"), now.toordinal() - _EPOCH_ORDINAL
    if issued_day > today + 1 or today - issued_day > max_age.days:
        return None
    key_bytes = payload[7:]
    if flags & _HEX_KEY:
        if len(key_bytes) != 16:
            return None
        message_key = key_bytes.hex()
    else:
        try:
            message_key = key_bytes.decode()
        except UnicodeDecodeError:
            return None
    return TokenClaims(message_key=message_key, kind="click" if kind_bits == KIND_CLICK else "open",
                       link_index=int.from_bytes(payload[5:7], "big"), sender_view=bool(flags & _SENDER_VIEW),
                       issued=_EPOCH + timedelta(days=issued_day), kid=key.kid)
