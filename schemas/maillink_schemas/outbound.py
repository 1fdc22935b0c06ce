"""Sending mail on a user's behalf: the command other services (and the bcc-gateway's
confirmation mail) publish, produced into outbound. Key: account id."""
from datetime import datetime

from pydantic import Field

from .base import Contract, Event
from .headers import HeaderText
from .mail import Address


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
