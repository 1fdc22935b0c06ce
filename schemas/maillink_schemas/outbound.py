"""Sending mail on a user's behalf: the command other services (and the bcc-gateway's
confirmation mail) publish, produced into outbound, and the facts outbound publishes about each
request (sent, or failed / unknown / cancelled). Key: account id."""
from datetime import datetime
from enum import StrEnum

from pydantic import Field

from .base import Contract, Event
from .headers import HeaderText
from .mail import Address, Envelope


class Attachment(Contract):
    filename: HeaderText = Field(description="File name shown to the recipient.")
    content_type: HeaderText = Field(default="application/octet-stream", description="MIME type, e.g. application/pdf.")
    blob_id: str | None = Field(default=None, description="sha256 of content already in a blob store (claim-check).")
    blob_owner: str | None = Field(default=None, description="Service whose blob store holds `blob_id`.")
    data_base64: str | None = Field(default=None, description="Inline content for small parts (the API's uploads); "
                                    "large content goes through the blob store.")
    content_id: HeaderText | None = Field(default=None, description="Set for an inline image referenced as cid:<id>.")


class SmartFieldContext(Contract):
    person_id: str | None = None
    deal_id: str | None = None
    organization_id: str | None = None


class SendRequested(Event):
    """Send one message from a connected account. `request_id` is the idempotency key: a request id
    sends at most one message, however often the command is delivered."""

    request_id: str = Field(description="Idempotency key chosen by the requester.")
    account_id: str = Field(description="The mailbox account to send from.")
    user_id: str = Field(description="The acting user (must own the account).")
    to: list[Address] = Field(default_factory=list)
    cc: list[Address] = Field(default_factory=list)
    bcc: list[Address] = Field(default_factory=list)
    reply_to: list[Address] = Field(default_factory=list)
    subject: HeaderText = ""
    html: str | None = Field(default=None, description="HTML body (sanitised before sending).")
    text: str | None = Field(default=None, description="Plain-text body; generated from the HTML when absent.")
    attachments: list[Attachment] = Field(default_factory=list)
    template_id: str | None = Field(default=None, description="Template whose subject and body are rendered.")
    context: SmartFieldContext = Field(default_factory=SmartFieldContext, description="Records for smart fields.")
    signature_id: str | None = None
    tracking: bool = Field(default=False, description="Insert an open pixel and rewrite links for click tracking.")
    send_at: datetime | None = Field(default=None, description="Scheduled sending time (UTC); cancellable until sent.")
    reply_to_message: str | None = Field(default=None, description="Message key this replies to (threading headers).")
    purpose: str = Field(default="user", description="'user' for a user's mail; 'system' for mail maillink sends "
                         "itself, e.g. the Smart Bcc address confirmation.")
    signature: bool = Field(default=True, description="Append the account's default signature when no "
                            "signature_id is given; false sends none.")


class SendState(StrEnum):
    """A request's stored state: scheduled -> pending -> sending -> sent | failed | cancelled, and
    unknown when a crash leaves it impossible to tell whether the server accepted the message."""
    SCHEDULED = "scheduled"
    PENDING = "pending"
    SENDING = "sending"
    SENT = "sent"
    FAILED = "failed"
    CANCELLED = "cancelled"
    UNKNOWN = "unknown"


class SentCopy(StrEnum):
    PROVIDER = "provider"   # the provider filed it in Sent itself (Gmail, Microsoft 365)
    APPENDED = "appended"   # outbound appended it to the Sent folder over IMAP
    MISSING = "missing"     # no Sent copy could be made (the reason is logged); the message did leave


class MessageSent(Event):
    """The SMTP server accepted the message (250 after DATA). Once per request id."""

    request_id: str = Field(description="The send request's idempotency key.")
    message_key: str = Field(description="Same key ingest computes for the Sent copy (Message-ID, Date, From, "
                             "Subject, body digest), so the matcher links the message once whichever it hears of.")
    account_id: str
    user_id: str
    message_id: str = Field(description="Message-ID without angle brackets; fixed before DATA.")
    envelope: Envelope = Field(description="The headers as sent (Bcc included: only the sender sees this).")
    snippet: str = Field(default="", description="Start of the plain text, at most 280 characters.")
    size: int = Field(description="Size of the message as sent, in bytes.")
    tracked: bool = Field(default=False, description="An open pixel and click tracking were injected.")
    sent_copy: SentCopy = Field(description="How the copy in the Sent folder came to be.")
    sent_folder: str | None = Field(default=None, description="The Sent folder's name on the server.")
    reply_to_message: str | None = Field(default=None, description="Message key this replied to.")
    purpose: str = "user"
    sent_at: datetime = Field(description="When the server accepted the message.")


class SendFailed(Event):
    """A request ended without (certainly) sending: failed, unknown or cancelled. Once per request id."""

    request_id: str
    account_id: str
    user_id: str
    state: SendState = Field(description="failed, unknown or cancelled.")
    reason: str = Field(description="What happened, in words a person understands (the server's reply "
                        "for a permanent SMTP error).")
    smtp_code: int | None = Field(default=None, description="The SMTP reply code, when a server refused.")
    message_id: str | None = Field(default=None, description="Message-ID the request was given, if any.")
