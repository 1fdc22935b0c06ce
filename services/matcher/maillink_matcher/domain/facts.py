"""The facts the matcher stores and decides from, as plain values (no I/O).

A message's links and visibility are never stored as facts: they are derived from these by
`resolve.resolve`, and recomputed whenever one of them changes.
"""
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

from maillink_schemas.mail import Visibility
from maillink_schemas.matcher import LinkingMode, RecordKind

KINDS = (RecordKind.DEAL, RecordKind.LEAD, RecordKind.PROJECT)


class Status(StrEnum):
    ACTIVE = "active"      # shown and linked (possibly to nobody)
    IGNORED = "ignored"    # blocked: not linked, not in the Mail tab
    DELETED = "deleted"    # deleted in the Mail tab
    EXPUNGED = "expunged"  # gone from every synced folder


@dataclass(frozen=True)
class MessageFacts:
    message_key: str
    account_id: str
    user_id: str
    senders: tuple[str, ...]          # From (and Sender), lower-cased
    recipients: tuple[str, ...]       # To, Cc, Bcc, Reply-To, lower-cased
    arrived_at: datetime
    subject: str = ""
    snippet: str = ""
    bulk_reason: str | None = None    # e.g. "List-Unsubscribe"; None for person-to-person mail
    account_addresses: tuple[str, ...] = ()
    deleted: bool = False             # deleted by its owner in the Mail tab
    expunged: bool = False            # no synced folder holds it any more


@dataclass(frozen=True)
class ThreadFacts:
    thread_id: str
    links: dict[RecordKind, str | None] = field(default_factory=dict)   # the thread's deal / lead / project
    user_decided: frozenset[RecordKind] = frozenset()                  # kinds set or cleared by the owner
    visibility: Visibility | None = None                                # chosen by the owner, overrides defaults
    link_reasons: dict[RecordKind, tuple[str, str]] = field(default_factory=dict)  # why the thread has it (code, text)


@dataclass(frozen=True)
class Settings:
    blocklist: frozenset[str] = frozenset()
    company_blocklist: frozenset[str] = frozenset()
    sharing_default: Visibility = Visibility.SHARED
    linking_mode: LinkingMode = LinkingMode.AUTOMATIC


@dataclass(frozen=True)
class Record:
    """A CRM record as the matcher needs it for decisions and explanations."""
    kind: str                      # person, organization, deal, lead, project
    record_id: str
    title: str = ""
    open: bool = True
    closed_as: str | None = None   # won, lost, deleted, closed
    group: str | None = None       # visibility group; None = the whole company
    activity: str = ""             # ISO time of the latest activity, for ordering suggestions
    organization_id: str | None = None


@dataclass(frozen=True)
class CrmView:
    own_addresses: frozenset[str] = frozenset()
    persons_by_address: dict[str, tuple[str, ...]] = field(default_factory=dict)
    open_items: dict[RecordKind, dict[str, tuple[str, ...]]] = field(default_factory=dict)  # kind -> person -> ids
    records: dict[tuple[str, str], Record] = field(default_factory=dict)                   # (kind, id) -> record

    def record(self, kind: str, record_id: str) -> Record | None:
        return self.records.get((str(kind), record_id))
