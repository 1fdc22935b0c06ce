"""The matcher's commands and settings: link/unlink/delete/visibility orders for a thread, the
per-user (and company-wide) mail settings, the internal re-check order, and the delete order
it gives ingest when sync-back is on."""
from datetime import datetime
from enum import StrEnum

from pydantic import Field

from .base import Contract, Event
from .mail import MailboxLocation, Visibility


class RecordKind(StrEnum):
    DEAL = "deal"
    LEAD = "lead"
    PROJECT = "project"


class ThreadAction(StrEnum):
    LINK = "link"                  # link the thread to record_id of kind
    UNLINK = "unlink"              # remove the thread's link of kind (and stop automatic linking of that kind)
    SET_VISIBILITY = "set_visibility"
    DELETE_MESSAGE = "delete_message"


class ThreadCommand(Event):
    """An order from the thread's owner (through the query API or another CRM service).
    Topic key: account id (so the matcher's writer of that mailbox applies it in order)."""

    action: ThreadAction
    user_id: str = Field(description="The acting user; must own the thread.")
    account_id: str
    thread_id: str
    kind: RecordKind | None = Field(default=None, description="For link/unlink.")
    record_id: str | None = Field(default=None, description="For link: the deal, lead or project.")
    visibility: Visibility | None = Field(default=None, description="For set_visibility.")
    message_key: str | None = Field(default=None, description="For delete_message.")


class LinkingMode(StrEnum):
    AUTOMATIC = "automatic"
    MANUAL = "manual"


class EmailLinks(StrEnum):
    CRM = "crm"        # clicking an address opens the CRM composer
    MAILTO = "mailto"  # ... or the computer's default mail app


class SettingsScope(StrEnum):
    USER = "user"
    COMPANY = "company"   # only `blocklist` applies: the company-wide list


class MailSettingsChanged(Event):
    """The complete mail settings of a user (or a company's blocklist) from `occurred_at` on.
    Compacted; key: `user:<id>` or `company:<id>`. Changes apply to mail received afterwards."""

    scope: SettingsScope = SettingsScope.USER
    owner_id: str = Field(description="The user id (scope user) or company id (scope company).")
    company_id: str | None = None
    version: int = Field(description="Grows with each change (microseconds since the epoch).")
    blocklist: list[str] = Field(default_factory=list, description="Exact addresses or @domain (a domain also "
                                 "blocks its subdomains: @acme.com blocks x@eu.acme.com).")
    sharing_default: Visibility = Visibility.SHARED
    linking_mode: LinkingMode = LinkingMode.AUTOMATIC
    email_links: EmailLinks = EmailLinks.CRM
    sync_back: bool = Field(default=False, description="Deletes in the CRM are also done in the mailbox (ingest).")


class RecheckRequested(Event):
    """Internal to the matcher: re-resolve these messages of one mailbox because a fact changed.
    Topic key: account id, so the mailbox's single writer does it."""

    account_id: str
    message_keys: list[str] = Field(description="Messages whose facts changed.")
    cause: str = Field(description="What changed, e.g. person p-1 gained an address.")


class MailboxAction(StrEnum):
    DELETE = "delete"            # to the provider's Trash (the matcher sends it when sync-back is on)
    ARCHIVE = "archive"          # out of INBOX, to the provider's Archive (Gmail: the \\Inbox label removed)
    MARK_READ = "mark_read"      # \\Seen set
    MARK_UNREAD = "mark_unread"  # \\Seen cleared
    MOVE = "move"                # to `folder`


class MailboxCommand(Event):
    """An order for ingest to change the mailbox itself (sync-back). Topic key: account id."""

    action: MailboxAction
    account_id: str
    message_key: str
    locations: list[MailboxLocation] = Field(default_factory=list, description="Where the message sits.")
    requested_at: datetime | None = None
    command_id: str | None = Field(default=None, description="Idempotency key: a command with a known id is not "
                                   "applied again (its first result is published again). Null: event_id.")
    folder: str | None = Field(default=None, description="For move: the target folder (decoded name, e.g. Projects).")
    user_id: str | None = Field(default=None, description="The acting user, when a person ordered it (for the log).")
