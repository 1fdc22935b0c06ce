"""The identity of a message record.

One message, one record: the same message seen twice (two folders, Gmail labels, a Bcc copy,
re-delivery after a crash, a UIDVALIDITY reset) must get the same key. Message-ID alone is not
safe (it repeats legitimately and some mail has none), so the key combines it with content that
every copy shares: the Date, From and Subject headers as written and the body bytes. Headers that
differ between copies (Received, Delivered-To, X-*) are left out on purpose.

Shared by ingest (synced copies) and bcc-gateway (Bcc copies) so both compute the identical key
for the identical message; it moved here from ingest's domain/identity.py unchanged. What Bcc
delivery changes, measured in tests/integration/test_bcc_identity.py: Received/Return-Path/
Authentication-Results are prepended, the Sent copy keeps its Bcc header while the delivered copy
has none, line endings arrive as CRLF, and a relay that meets a server without 8BITMIME re-encodes
an 8bit body as quoted-printable. None of those is in the key except the last, which the gateway
prevents by announcing 8BITMIME (so no relay needs to downgrade).
"""
import hashlib
import re
from datetime import datetime

from .base import deterministic_id
from .mail import Envelope


# A CR that does not start a CRLF (the only case where deleting every CR differs from CRLF -> LF).
_LONE_CR = re.compile(rb"\r(?!\n)")


def body_digest(raw: bytes) -> str:
    split = raw.find(b"\r\n\r\n")
    if split < 0:
        split = raw.find(b"\n\n")
    body = raw[split:] if split >= 0 else b""
    # Line endings differ between servers and copies (CRLF vs LF); trailing space is often trimmed.
    # CRLF -> LF is done by deleting every CR when each one starts a CRLF (nearly all mail):
    # bytes.replace with a 2-byte pattern cost ~17 us of the ~24 us of this function on the bench's
    # 9 KB messages, translate ~6 us and the search for a lone CR ~4 us. Same bytes either way
    # (tests/unit/test_envelope.py, property test).
    unified = body.replace(b"\r\n", b"\n") if _LONE_CR.search(body) else body.translate(None, b"\r")
    return hashlib.sha256(unified.strip()).hexdigest()


def key_of(account_id: str, message_id: str | None, date: datetime | None, sender: str, subject: str,
           digest: str) -> str:
    """`date` in UTC, `sender` the lower-cased From address, `subject` decoded with runs of white
    space made one space (as ingest's envelope parser gives them)."""
    return deterministic_id(account_id, message_id or "", date.isoformat() if date else "", sender, subject, digest)


def message_key(account_id: str, envelope: Envelope, raw: bytes) -> str:
    sender = envelope.from_[0].email if envelope.from_ else ""
    return key_of(account_id, envelope.message_id, envelope.date, sender, envelope.subject, body_digest(raw))


def blob_id(raw: bytes) -> str:
    return hashlib.sha256(raw).hexdigest()


def account_id(user_id: str, email: str) -> str:
    """The id of a user's mailbox account: the one ingest's account API gives it. The gateway files a
    Bcc copy under the account of the address it was sent from, which is where the synced copy lives."""
    return deterministic_id("account", user_id, email)
