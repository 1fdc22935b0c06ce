"""Open and click tracking: outbound registers each tracked message's links with the tracker
before the message leaves; the tracker publishes opens, clicks and milestones. Key: message key."""
from datetime import datetime
from typing import Literal

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
    tracking_id: str | None = Field(default=None, description="The id the message's tracking tokens carry "
                                    "(derived from the Message-ID, so it is known before the message key, "
                                    "which depends on the body the URLs are in); the tracker keys the "
                                    "registration by it. Absent: the tokens carry the message key itself.")
    sent_at: datetime | None = Field(default=None, description="When the message was handed to SMTP, if known.")


# What the tracker publishes. The full IP address never leaves the request: events carry only
# the network (/24 for IPv4, /48 for IPv6) and the user agent's family.
Classification = Literal["human", "machine"]


class _TrackedRequest(Event):
    message_key: str = Field(description="The tracked message's key: the registered one, or the token's id when "
                             "the registration could not be read at request time (then `tracking_id` is unset "
                             "and the id may be a tracking id; the tracker's aggregator resolves it).")
    account_id: str | None = Field(default=None, description="The sending account, when the registration was known.")
    user_id: str | None = Field(default=None, description="The sender, when the registration was known.")
    user_agent_family: str = Field(description="Family of the client's user agent (e.g. Chrome, Outlook, "
                                   "GoogleImageProxy); never the full string.")
    network: str = Field(description="The client's network, anonymised: an IPv4 /24 or an IPv6 /48 "
                         "(e.g. 203.0.113.0/24). The full address is used only during the request.")
    classification: Classification = Field(description="human, or machine (a proxy prefetch, Apple MPP, "
                                           "a security scanner) as far as the request could tell.")
    signals: list[str] = Field(default_factory=list, description="The rules that fired, e.g. apple_mpp, "
                               "google_image_proxy, click_soon_after_delivery; empty for a plain human request.")
    tracking_id: str | None = Field(default=None, description="The tracking id the token carried, when it is "
                                    "not the message key (TrackingRegistered.tracking_id).")


class TrackingOpened(_TrackedRequest):
    """The open pixel was fetched (a GET; HEAD requests are scanner signals, not opens)."""


class TrackingClicked(_TrackedRequest):
    """A tracked link was followed and redirected to its registered URL."""

    link_index: int = Field(description="The link's index in the message.")
    url: str = Field(description="The registered URL the click was redirected to.")


class TrackingMilestoneReached(Event):
    """A fact a notification service can show as is ("Jan opened your offer"), published once per
    message and milestone. Key: message key."""

    message_key: str
    account_id: str
    user_id: str = Field(description="The sender, to be notified.")
    milestone: Literal["first_human_open", "first_human_click"] = Field(description="What happened for the first time.")
    at: datetime = Field(description="When the request behind the milestone was made.")
    link_index: int | None = Field(default=None, description="For first_human_click: which link.")
