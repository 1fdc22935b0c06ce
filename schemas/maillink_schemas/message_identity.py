"""The identity of a message record: part of the contract, because two producers must agree on it.

Ingest computes it for every message it finds (the Sent copy included) and outbound computes it
for every message it sends, so the matcher links a sent message once, whichever it hears of first
(moved here from services/ingest/maillink_ingest/domain/identity.py; ingest imports it from here).

One message, one record: the same message seen twice (two folders, Gmail labels, a Bcc copy,
re-delivery after a crash, a UIDVALIDITY reset) must get the same key. Message-ID alone is not
safe (it repeats legitimately and some mail has none), so the key combines it with content that
every copy shares: the Date, From and Subject headers as written and the body bytes. Headers that
differ between copies (Received, Delivered-To, X-*, Bcc) are left out on purpose.
"""
import hashlib
from datetime import datetime

from .base import deterministic_id
from .mail import Envelope


def body_digest(raw: bytes) -> str:
    split = raw.find(b"\r\n\r\n")
    if split < 0:
        split = raw.find(b"\n\n")
    body = raw[split:] if split >= 0 else b""
    # Line endings differ between servers and copies (CRLF vs LF); trailing space is often trimmed.
    return hashlib.sha256(body.replace(b"\r\n", b"\n").strip()).hexdigest()


def key_of(account_id: str, message_id: str | None, date: datetime | None, sender: str, subject: str,
           digest: str) -> str:
    """`date` in UTC, `sender` the lower-cased From address, `subject` decoded with runs of white
    space made one space (as ingest's envelope parser gives them)."""
    return deterministic_id(account_id, message_id or "", date.isoformat() if date else "", sender, subject, digest)


def message_key(account_id: str, envelope: Envelope, raw: bytes) -> str:
    sender = envelope.from_[0].email if envelope.from_ else ""
    return key_of(account_id, envelope.message_id, envelope.date, sender, envelope.subject, body_digest(raw))
