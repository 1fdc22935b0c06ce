"""Builds the mail.message.received.v1 event for one fetched message. Pure.

Two builders of the same event:
- `received_event` builds the pydantic model (the contract) the plain way: the reference, and what
  the Gmail label sync annotates;
- `received_bytes` writes the event's JSON from plain values (maillink_schemas.received_json,
  shared with the Smart Bcc gateway), without constructing the model or copying the envelope to
  cap it. On the initial sync the model build, the capped envelope copy and the dump cost ~0.06 ms of CPU per message, about a sixth of
  the whole per-message budget (docs/ingest-sync.md, "Round 5").

Both apply the same caps (maillink_schemas.bounds) and derive the key and direction the same way;
tests/unit/test_received_bytes.py checks over generated envelopes that the bytes are the model's
`model_dump_json()` and parse back (`MessageReceived.model_validate_json`) to the same model.
"""
from dataclasses import dataclass
from datetime import datetime, timezone

from maillink_schemas.accounts import AccountConfigured
from maillink_schemas.base import deterministic_id, utcnow
from maillink_schemas.bounds import cap_envelope, cap_flags, cap_text
from maillink_schemas.mail import BlobRef, BulkSignals, Direction, MailboxLocation, MessageReceived
from maillink_schemas.received_json import bulk_values, envelope_values, received_json

from .envelope import ParsedMessage
from .identity import message_key


def direction(account_addresses: set[str], parsed: ParsedMessage, in_sent_folder: bool) -> Direction:
    senders = {a.email for a in parsed.envelope.from_}
    return Direction.OUTGOING if in_sent_folder or senders & account_addresses else Direction.INCOMING


def _warnings(parsed: ParsedMessage, internal_date: datetime | None) -> list[str]:
    return [w + ("; INTERNALDATE used" if "Date" in w and internal_date else "") for w in parsed.warnings]


def received_event(account: AccountConfigured, folder: str, uidvalidity: int, uid: int, flags: tuple[str, ...],
                   internal_date: datetime | None, in_sent_folder: bool, raw: bytes, blob: str,
                   parsed: ParsedMessage, occurred_at: datetime | None = None) -> MessageReceived:
    # The key comes from the envelope as written: a fallback Date (INTERNALDATE differs per folder
    # and per copy) must not make two copies of one message look different.
    key = message_key(account.account_id, parsed.envelope, raw)
    envelope, truncated = cap_envelope(parsed.envelope)
    if envelope.date is None and internal_date is not None:
        envelope = envelope.model_copy(update={"date": internal_date.astimezone(timezone.utc)})
    addresses = {account.email.lower()}
    bulk = parsed.bulk
    return MessageReceived(
        event_id=deterministic_id("received", key, folder, str(uidvalidity), str(uid)),
        occurred_at=occurred_at or utcnow(), message_key=key, account_id=account.account_id,
        user_id=account.user_id,
        account_addresses=sorted(addresses), direction=direction(addresses, parsed, in_sent_folder),
        location=MailboxLocation(folder=folder, uidvalidity=uidvalidity, uid=uid), flags=cap_flags(flags),
        internal_date=internal_date, envelope=envelope, provider_thread_id=cap_text(parsed.provider_thread_id),
        snippet=parsed.snippet, has_attachments=parsed.has_attachments,
        bulk=BulkSignals(list_id=cap_text(bulk.list_id), list_unsubscribe=bulk.list_unsubscribe,
                         precedence=cap_text(bulk.precedence, 64), auto_submitted=cap_text(bulk.auto_submitted, 64)),
        raw=BlobRef(blob_id=blob, size=len(raw), owner="ingest"), parse_error=cap_text(parsed.error, 2000),
        parse_warnings=_warnings(parsed, internal_date),
        truncated=truncated,
    )


@dataclass(frozen=True, slots=True)
class ReceivedBytes:
    """A received event as published (its JSON), and the fields delivery records beside it."""
    payload: bytes
    message_key: str
    message_id: str | None
    flags: tuple[str, ...]
    direction: Direction
    uid: int

    @classmethod
    def of(cls, event: MessageReceived) -> "ReceivedBytes":
        """From a model (the Gmail label sync annotates the model before it is published)."""
        return cls(event.model_dump_json().encode(), event.message_key, event.envelope.message_id, tuple(event.flags),
                   event.direction, event.location.uid if event.location else 0)


def received_bytes(account: AccountConfigured, folder: str, uidvalidity: int, uid: int, flags: tuple[str, ...],
                   internal_date: datetime | None, in_sent_folder: bool, raw: bytes, blob: str,
                   parsed: ParsedMessage, occurred_at: datetime | None = None) -> ReceivedBytes:
    """`received_event(...).model_dump_json().encode()` and its fields, without the model
    (maillink_schemas.received_json, the contract's plain-value writer)."""
    env = parsed.envelope
    key = message_key(account.account_id, env, raw)  # uncapped, as written (see received_event)
    date = env.date
    if date is None and internal_date is not None:
        date = internal_date.astimezone(timezone.utc)
    envelope, truncated = envelope_values(env, date)
    email = account.email.lower()
    way = direction({email}, parsed, in_sent_folder)
    capped_flags = cap_flags(flags)
    payload = received_json(
        event_id=deterministic_id("received", key, folder, str(uidvalidity), str(uid)),
        occurred_at=occurred_at or utcnow(), message_key=key, account_id=account.account_id,
        user_id=account.user_id, account_addresses=[email], source="imap", direction=way.value,
        location={"folder": folder, "uidvalidity": uidvalidity, "uid": uid}, flags=capped_flags,
        internal_date=internal_date, envelope=envelope, provider_thread_id=cap_text(parsed.provider_thread_id),
        snippet=parsed.snippet, has_attachments=parsed.has_attachments, bulk=bulk_values(parsed.bulk),
        raw={"blob_id": blob, "size": len(raw), "owner": "ingest"}, parse_error=cap_text(parsed.error, 2000),
        parse_warnings=_warnings(parsed, internal_date), truncated=truncated)
    return ReceivedBytes(payload, key, envelope["message_id"], tuple(capped_flags), way, uid)

