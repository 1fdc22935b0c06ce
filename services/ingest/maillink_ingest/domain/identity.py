"""The identity of a message record.

One message, one record: the same message seen twice (two folders, Gmail labels, a Bcc copy,
re-delivery after a crash, a UIDVALIDITY reset) must get the same key. Message-ID alone is not
safe (it repeats legitimately and some mail has none), so the key combines it with content that
every copy shares: the Date, From and Subject headers as written and the body bytes. Headers that
differ between copies (Received, Delivered-To, X-*) are left out on purpose.
"""
import hashlib

from maillink_schemas.base import deterministic_id
from maillink_schemas.mail import Envelope


def body_digest(raw: bytes) -> str:
    split = raw.find(b"\r\n\r\n")
    if split < 0:
        split = raw.find(b"\n\n")
    body = raw[split:] if split >= 0 else b""
    # Line endings differ between servers and copies (CRLF vs LF); trailing space is often trimmed.
    return hashlib.sha256(body.replace(b"\r\n", b"\n").strip()).hexdigest()


def message_key(account_id: str, envelope: Envelope, raw: bytes) -> str:
    sender = envelope.from_[0].email if envelope.from_ else ""
    date = envelope.date.isoformat() if envelope.date else ""
    return deterministic_id(account_id, envelope.message_id or "", date, sender, envelope.subject, body_digest(raw))


def blob_id(raw: bytes) -> str:
    return hashlib.sha256(raw).hexdigest()
