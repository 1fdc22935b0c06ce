"""Builds mail.message.received.v1 (source = bcc) for one accepted message. Pure.

Two builders of the same event, as in ingest: `received_event`, the pydantic model (the reference),
and `received_bytes`, its JSON from plain values (maillink_schemas.received_json), which the gateway
publishes: building the model, capping a copy of its envelope and dumping it was ~3 % of the
gateway's samples under make bench-bcc. tests/unit/test_received_bytes.py checks over generated
envelopes that both give the same bytes.

The message is filed under the account of the address the user sent it from (a Bcc copy) or
received it at (a forward): that is the mailbox where a synced copy lives, and the key is the one
ingest computes for that copy (maillink_schemas.identity), so both become one record.
"""
from dataclasses import dataclass
from datetime import datetime

from maillink_schemas.base import deterministic_id, utcnow
from maillink_schemas.bounds import cap_bulk, cap_envelope, cap_text
from maillink_schemas.identity import account_id, message_key
from maillink_schemas.mail import BlobRef, Direction, MessageReceived, Source
from maillink_schemas.mime import ParsedMessage
from maillink_schemas.received_json import bulk_values, envelope_values, received_json

OWNER = "bcc-gateway"


@dataclass(frozen=True)
class Filing:
    user_id: str
    company_id: str | None
    mailbox_address: str            # the user's address the message went out from / came in to
    own_addresses: tuple[str, ...]  # login + verified alternatives
    deal_id: str | None = None


@dataclass(frozen=True, slots=True)
class Received:
    """A received event as published: its Kafka key (the account, as every producer keys it) and JSON."""
    message_key: str
    kafka_key: bytes
    payload: bytes


def _identity(filing: Filing, raw: bytes, parsed: ParsedMessage) -> tuple[str, str, str, Direction]:
    """(account id, message key, event id, direction): what both builders derive the same way."""
    account = account_id(filing.user_id, filing.mailbox_address)
    key = message_key(account, parsed.envelope, raw)  # the whole envelope, as ingest keys the synced copy
    outgoing = bool({a.email for a in parsed.envelope.from_} & set(filing.own_addresses))
    # One id per message and deal hint: a retried delivery of the same message is the same fact.
    event_id = deterministic_id("received", key, "bcc", filing.deal_id or "")
    return account, key, event_id, Direction.OUTGOING if outgoing else Direction.INCOMING


def received_event(filing: Filing, raw: bytes, blob_id: str, parsed: ParsedMessage,
                   occurred_at: datetime | None = None) -> MessageReceived:
    account, key, event_id, direction = _identity(filing, raw, parsed)
    # Capped as ingest caps its events (40,000 recipients would not fit a broker's message limit).
    envelope, truncated = cap_envelope(parsed.envelope)
    return MessageReceived(
        event_id=event_id, occurred_at=occurred_at or utcnow(), message_key=key, account_id=account,
        user_id=filing.user_id, account_addresses=sorted(filing.own_addresses), source=Source.BCC,
        direction=direction,
        envelope=envelope, provider_thread_id=cap_text(parsed.provider_thread_id), snippet=parsed.snippet,
        has_attachments=parsed.has_attachments, bulk=cap_bulk(parsed.bulk),
        raw=BlobRef(blob_id=blob_id, size=len(raw), owner=OWNER), parse_error=cap_text(parsed.error, 2000),
        deal_hint=filing.deal_id, company_id=filing.company_id, parse_warnings=list(parsed.warnings),
        truncated=truncated,
    )


def received_bytes(filing: Filing, raw: bytes, blob_id: str, parsed: ParsedMessage,
                   occurred_at: datetime | None = None) -> Received:
    """`received_event(...)` as published (`model_dump_json()`), without the model."""
    account, key, event_id, direction = _identity(filing, raw, parsed)
    envelope, truncated = envelope_values(parsed.envelope, parsed.envelope.date)
    payload = received_json(
        event_id=event_id, occurred_at=occurred_at or utcnow(), message_key=key, account_id=account,
        user_id=filing.user_id, account_addresses=sorted(filing.own_addresses), source=Source.BCC.value,
        direction=direction.value, envelope=envelope,
        provider_thread_id=cap_text(parsed.provider_thread_id), snippet=parsed.snippet,
        has_attachments=parsed.has_attachments, bulk=bulk_values(parsed.bulk),
        raw={"blob_id": blob_id, "size": len(raw), "owner": OWNER}, parse_error=cap_text(parsed.error, 2000),
        deal_hint=filing.deal_id, company_id=filing.company_id, parse_warnings=list(parsed.warnings),
        truncated=truncated)
    return Received(key, account.encode(), payload)
