"""Open and click tracking: outbound registers each tracked message's links with the tracker
before the message leaves. Key: message key."""
from datetime import datetime

from pydantic import Field

from .base import Contract, Event


class TrackedLink(Contract):
    index: int = Field(description="Position of the link in the message (0-based); part of its token.")
    url: str = Field(description="The original http(s) URL the click redirects to, and nothing else.")


class TrackingRegistered(Event):
    message_key: str = Field(description="The sent message's key (same as in mail.message.sent.v1).")
    account_id: str
    user_id: str = Field(description="The sender: their own opens are not counted.")
    recipients: list[str] = Field(default_factory=list, description="Recipient addresses, lower-cased.")
    links: list[TrackedLink] = Field(default_factory=list, description="Every rewritten link, by index.")
    tracking_id: str | None = Field(default=None, description="The id carried in the message's tracker URLs "
                                    "(derived from the Message-ID, so it is known before the message key, "
                                    "which depends on the body the URLs are in). See docs/outbound.md.")
    sent_at: datetime | None = Field(default=None, description="When the message was handed to SMTP, if known.")
