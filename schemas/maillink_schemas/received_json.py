"""mail.message.received.v1 written as JSON from plain values, without building the model. Pure.

Both producers of the event (ingest's initial sync and the Smart Bcc gateway) publish one per
message on their hot path, where building the pydantic model, copying the envelope to cap it and
dumping it cost ~0.06 ms of CPU per message in ingest (docs/ingest-sync.md, "Round 5") and ~3 % of the
gateway's samples (docs/bcc-gateway.md). This is the one plain-value writer of the contract: the
field order below is MessageReceived's (pydantic-core keeps a dict's order), the caps are bounds.py's.
tests/unit/test_received_bytes.py checks, for ingest and for the gateway,
over generated envelopes that the bytes are exactly the model's `model_dump_json()`.
"""
from datetime import datetime

from pydantic_core import to_json

from .bounds import MAX_ADDRESSES, MAX_EMAIL_CHARS, MAX_ID_CHARS, MAX_IN_REPLY_TO, MAX_NAME_CHARS, MAX_REFERENCES, \
    MAX_SUBJECT_CHARS, cap_text
from .mail import Address, BulkSignals, Envelope


def envelope_values(env: Envelope, date: datetime | None) -> tuple[dict, dict[str, int]]:
    """The envelope as bounds.cap_envelope would leave it, as plain values, and what was cut (`truncated`).
    `date` replaces the envelope's own (ingest falls back to INTERNALDATE)."""
    truncated: dict[str, int] = {}
    lists = {}
    for name, items in (("from", env.from_), ("to", env.to), ("cc", env.cc), ("bcc", env.bcc),
                        ("reply_to", env.reply_to)):
        if len(items) > MAX_ADDRESSES:
            truncated[name] = len(items) - MAX_ADDRESSES
        lists[name] = [_address(a) for a in items[:MAX_ADDRESSES]]
    refs = [r[:MAX_ID_CHARS] for r in env.references]
    if len(refs) > MAX_REFERENCES:
        truncated["references"] = len(refs) - MAX_REFERENCES
        refs = refs[:1] + refs[-(MAX_REFERENCES - 1):]
    if len(env.in_reply_to) > MAX_IN_REPLY_TO:
        truncated["in_reply_to"] = len(env.in_reply_to) - MAX_IN_REPLY_TO
    values = {
        "message_id": env.message_id[:MAX_ID_CHARS] if env.message_id else None,
        "in_reply_to": [r[:MAX_ID_CHARS] for r in env.in_reply_to[:MAX_IN_REPLY_TO]],
        "references": refs, "subject": env.subject[:MAX_SUBJECT_CHARS], "date": date, "from": lists["from"],
        "sender": _address(env.sender) if env.sender else None, "to": lists["to"], "cc": lists["cc"],
        "bcc": lists["bcc"], "reply_to": lists["reply_to"]}
    return values, truncated


def bulk_values(bulk: BulkSignals) -> dict:
    """bounds.cap_bulk, as plain values."""
    return {"list_id": cap_text(bulk.list_id), "list_unsubscribe": bulk.list_unsubscribe,
            "precedence": cap_text(bulk.precedence, 64), "auto_submitted": cap_text(bulk.auto_submitted, 64)}


def received_json(*, event_id: str, occurred_at: datetime, message_key: str, account_id: str, user_id: str,
                  account_addresses: list[str], source: str, direction: str, envelope: dict, raw: dict,
                  bulk: dict, truncated: dict[str, int], location: dict | None = None, flags: list[str] | None = None,
                  internal_date: datetime | None = None, provider_thread_id: str | None = None,
                  snippet: str = "", has_attachments: bool = False, parse_error: str | None = None,
                  deal_hint: str | None = None, company_id: str | None = None,
                  parse_warnings: list[str] | None = None) -> bytes:
    """The event's JSON; the values already capped (envelope_values, bulk_values, bounds.cap_*)."""
    return to_json({
        "event_id": event_id, "occurred_at": occurred_at, "message_key": message_key, "account_id": account_id,
        "user_id": user_id, "account_addresses": account_addresses, "source": source, "direction": direction,
        "location": location, "flags": flags or [], "internal_date": internal_date, "envelope": envelope,
        "provider_thread_id": provider_thread_id, "provider_message_id": None, "labels": None,
        "snippet": snippet, "has_attachments": has_attachments, "bulk": bulk, "raw": raw,
        "parse_error": parse_error, "deal_hint": deal_hint, "company_id": company_id,
        "parse_warnings": parse_warnings or [], "truncated": truncated,
    })


def _address(a: Address) -> dict:
    return {"email": a.email[:MAX_EMAIL_CHARS], "name": a.name[:MAX_NAME_CHARS] if a.name else None}
