"""Builds the mail.message.received.v1 event for one fetched message. Pure."""
from datetime import datetime, timezone

from maillink_schemas.accounts import AccountConfigured
from maillink_schemas.base import deterministic_id, utcnow
from maillink_schemas.mail import BlobRef, BulkSignals, Direction, MailboxLocation, MessageReceived

from maillink_schemas.bounds import cap_envelope, cap_flags, cap_text
from .envelope import ParsedMessage
from .identity import message_key


def direction(account_addresses: set[str], parsed: ParsedMessage, in_sent_folder: bool) -> Direction:
    senders = {a.email for a in parsed.envelope.from_}
    return Direction.OUTGOING if in_sent_folder or senders & account_addresses else Direction.INCOMING


def received_event(account: AccountConfigured, folder: str, uidvalidity: int, uid: int, flags: tuple[str, ...],
                   internal_date: datetime | None, in_sent_folder: bool, raw: bytes, blob: str,
                   parsed: ParsedMessage) -> MessageReceived:
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
        occurred_at=utcnow(), message_key=key, account_id=account.account_id, user_id=account.user_id,
        account_addresses=sorted(addresses), direction=direction(addresses, parsed, in_sent_folder),
        location=MailboxLocation(folder=folder, uidvalidity=uidvalidity, uid=uid), flags=cap_flags(flags),
        internal_date=internal_date, envelope=envelope, provider_thread_id=cap_text(parsed.provider_thread_id),
        snippet=parsed.snippet, has_attachments=parsed.has_attachments,
        bulk=BulkSignals(list_id=cap_text(bulk.list_id), list_unsubscribe=bulk.list_unsubscribe,
                         precedence=cap_text(bulk.precedence, 64), auto_submitted=cap_text(bulk.auto_submitted, 64)),
        raw=BlobRef(blob_id=blob, size=len(raw), owner="ingest"), parse_error=cap_text(parsed.error, 2000),
        parse_warnings=[w + ("; INTERNALDATE used" if "Date" in w and internal_date else "") for w in parsed.warnings],
        truncated=truncated,
    )
