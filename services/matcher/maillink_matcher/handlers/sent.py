"""Outbound's `mail.message.sent.v1` as a sighting of the message it sent.

Outbound computes the same message key ingest computes for the copy in the Sent folder (Message-ID,
Date, From, Subject, body digest), so whichever the matcher hears of first creates the record and
the other merges into it (handlers/documents.merge_sighting): one record, one revision chain. The
sent event carries no stored bytes: the record gets its raw MIME reference from the Sent copy when
ingest syncs it (documents.py). The From (and Sender) of a message the user sent are the user's.
"""
from maillink_schemas.mail import BlobRef, Direction, MessageReceived
from maillink_schemas.outbound import MessageSent

# A sighting without stored bytes: new_document / merge_sighting leave `raw` to a real copy.
NO_BLOB = ""


def as_received(event: MessageSent) -> MessageReceived:
    env = event.envelope
    own = [a.email for a in env.from_] + ([env.sender.email] if env.sender else [])
    return MessageReceived(
        event_id=event.event_id, occurred_at=event.sent_at, message_key=event.message_key,
        account_id=event.account_id, user_id=event.user_id, account_addresses=own, direction=Direction.OUTGOING,
        internal_date=event.sent_at, envelope=env, snippet=event.snippet,
        raw=BlobRef(blob_id=NO_BLOB, size=event.size, owner=""))
