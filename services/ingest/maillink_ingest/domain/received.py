"""Builds the mail.message.received.v1 event for one fetched message. Pure."""
from datetime import datetime

from maillink_schemas.accounts import AccountConfigured
from maillink_schemas.base import deterministic_id, utcnow
from maillink_schemas.mail import BlobRef, Direction, MailboxLocation, MessageReceived

from .envelope import ParsedMessage
from .identity import message_key


def direction(account_addresses: set[str], parsed: ParsedMessage, in_sent_folder: bool) -> Direction:
    senders = {a.email for a in parsed.envelope.from_}
    return Direction.OUTGOING if in_sent_folder or senders & account_addresses else Direction.INCOMING


def received_event(account: AccountConfigured, folder: str, uidvalidity: int, uid: int, flags: tuple[str, ...],
                   internal_date: datetime | None, in_sent_folder: bool, raw: bytes, blob: str,
                   parsed: ParsedMessage) -> MessageReceived:
    key = message_key(account.account_id, parsed.envelope, raw)
    addresses = {account.email.lower()}
    return MessageReceived(
        event_id=deterministic_id("received", key, folder, str(uidvalidity), str(uid)),
        occurred_at=utcnow(), message_key=key, account_id=account.account_id, user_id=account.user_id,
        account_addresses=sorted(addresses), direction=direction(addresses, parsed, in_sent_folder),
        location=MailboxLocation(folder=folder, uidvalidity=uidvalidity, uid=uid), flags=list(flags),
        internal_date=internal_date, envelope=parsed.envelope, provider_thread_id=parsed.provider_thread_id,
        snippet=parsed.snippet, has_attachments=parsed.has_attachments, bulk=parsed.bulk,
        raw=BlobRef(blob_id=blob, size=len(raw), owner="ingest"), parse_error=parsed.error,
    )
