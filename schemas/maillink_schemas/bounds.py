"""Keeps a received event far below Kafka's ~1 MB message limit. Pure; shared by ingest and the
Smart Bcc gateway, the two producers of mail.message.received.v1.

A message with 40,000 To addresses (860 KB of headers) made a 1.78 MB event that no broker took,
and every pass of its folder failed on it (ingest); the gateway answered 451 to every attempt to
deliver such a copy, so its sender retried for days. Address lists, references and long texts are
capped here; `truncated` on the event says how much of each list was left out, and the raw MIME (in
the blob store) keeps everything. The message key is computed from the envelope before capping.
"""
from .mail import Address, BulkSignals, Envelope

MAX_ADDRESSES = 100       # per list (to, cc, bcc, reply_to, from)
MAX_REFERENCES = 50       # the first (thread root) and the 49 newest are what threading needs
MAX_IN_REPLY_TO = 10
MAX_SUBJECT_CHARS = 1000
MAX_NAME_CHARS = 256
MAX_EMAIL_CHARS = 320     # RFC 5321's limit for a whole address
MAX_ID_CHARS = 998        # RFC 5322's line limit
MAX_FLAGS = 100
# Anything above this after capping is a poison message of its own (published to the dead letters).
MAX_EVENT_BYTES = 900_000


def cap_envelope(envelope: Envelope) -> tuple[Envelope, dict[str, int]]:
    if _fits(envelope):  # nearly all mail: the same envelope, without rebuilding every address
        return envelope, {}
    return _capped(envelope)


def _capped(envelope: Envelope) -> tuple[Envelope, dict[str, int]]:
    cut: dict[str, int] = {}
    update = {}
    for name in ("from_", "to", "cc", "bcc", "reply_to"):
        items = getattr(envelope, name)
        kept = [_address(a) for a in items[:MAX_ADDRESSES]]
        if len(items) > MAX_ADDRESSES:
            cut[name.rstrip("_")] = len(items) - MAX_ADDRESSES
        update[name] = kept
    refs = [r[:MAX_ID_CHARS] for r in envelope.references]
    if len(refs) > MAX_REFERENCES:
        cut["references"] = len(refs) - MAX_REFERENCES
        refs = refs[:1] + refs[-(MAX_REFERENCES - 1):]
    update["references"] = refs
    if len(envelope.in_reply_to) > MAX_IN_REPLY_TO:
        cut["in_reply_to"] = len(envelope.in_reply_to) - MAX_IN_REPLY_TO
    update["in_reply_to"] = [r[:MAX_ID_CHARS] for r in envelope.in_reply_to[:MAX_IN_REPLY_TO]]
    update["subject"] = envelope.subject[:MAX_SUBJECT_CHARS]
    update["message_id"] = envelope.message_id[:MAX_ID_CHARS] if envelope.message_id else None
    update["sender"] = _address(envelope.sender) if envelope.sender else None
    return envelope.model_copy(update=update), cut


def _fits(envelope: Envelope) -> bool:
    """True when _capped would change nothing (it also turns an empty Message-ID or name into None)."""
    if len(envelope.subject) > MAX_SUBJECT_CHARS or envelope.message_id == "" or \
            len(envelope.message_id or "") > MAX_ID_CHARS:
        return False
    if len(envelope.references) > MAX_REFERENCES or len(envelope.in_reply_to) > MAX_IN_REPLY_TO:
        return False
    if any(len(r) > MAX_ID_CHARS for r in envelope.references) or any(len(r) > MAX_ID_CHARS for r in envelope.in_reply_to):
        return False
    lists = (envelope.from_, envelope.to, envelope.cc, envelope.bcc, envelope.reply_to)
    if any(len(items) > MAX_ADDRESSES for items in lists):
        return False
    return all(len(a.email) <= MAX_EMAIL_CHARS and a.name != "" and len(a.name or "") <= MAX_NAME_CHARS
               for items in (*lists, [envelope.sender] if envelope.sender else []) for a in items)


def cap_flags(flags: tuple[str, ...] | list[str]) -> list[str]:
    return [f[:MAX_NAME_CHARS] for f in list(flags)[:MAX_FLAGS]]


def cap_text(value: str | None, limit: int = MAX_ID_CHARS) -> str | None:
    return value[:limit] if value else value


def cap_bulk(bulk: BulkSignals) -> BulkSignals:
    return BulkSignals(list_id=cap_text(bulk.list_id), list_unsubscribe=bulk.list_unsubscribe,
                       precedence=cap_text(bulk.precedence, 64), auto_submitted=cap_text(bulk.auto_submitted, 64))


def _address(a: Address) -> Address:
    return Address(email=a.email[:MAX_EMAIL_CHARS], name=a.name[:MAX_NAME_CHARS] if a.name else None)
