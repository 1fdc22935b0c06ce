"""Message events: produced by ingest (received) and matcher (linked)."""
from datetime import datetime
from enum import StrEnum

from pydantic import Field

from .base import Contract, Event


class Address(Contract):
    email: str = Field(description="Lower-cased address, e.g. jan@acme.cz.")
    name: str | None = Field(default=None, description="Display name as written in the header, decoded.")


class Direction(StrEnum):
    INCOMING = "incoming"
    OUTGOING = "outgoing"


class Source(StrEnum):
    IMAP = "imap"
    BCC = "bcc"


class BlobRef(Contract):
    blob_id: str = Field(description="sha256 of the raw MIME (hex): the claim-check for the body.")
    size: int = Field(description="Size of the raw MIME in bytes.")
    owner: str = Field(description="Service that stores the blob and serves it over HTTP, e.g. 'ingest'.")


class MailboxLocation(Contract):
    folder: str = Field(description="Folder (mailbox) name on the server, e.g. INBOX.")
    uidvalidity: int = Field(description="UIDVALIDITY of the folder when the message was seen.")
    uid: int = Field(description="IMAP UID of the message in that folder.")


class Envelope(Contract):
    message_id: str | None = Field(default=None, description="Message-ID without angle brackets; absent on some mail.")
    in_reply_to: list[str] = Field(default_factory=list, description="In-Reply-To ids, without angle brackets.")
    references: list[str] = Field(default_factory=list, description="References ids, oldest first.")
    subject: str = Field(default="", description="Decoded subject.")
    date: datetime | None = Field(default=None, description="The Date header (UTC); absent or unparseable gives null.")
    from_: list[Address] = Field(default_factory=list, alias="from", description="From addresses.")
    sender: Address | None = Field(default=None, description="Sender header, when present.")
    to: list[Address] = Field(default_factory=list)
    cc: list[Address] = Field(default_factory=list)
    bcc: list[Address] = Field(default_factory=list)
    reply_to: list[Address] = Field(default_factory=list)


class BulkSignals(Contract):
    list_id: str | None = Field(default=None, description="List-Id header.")
    list_unsubscribe: bool = Field(default=False, description="A List-Unsubscribe header is present.")
    precedence: str | None = Field(default=None, description="Precedence header (bulk, list, junk).")
    auto_submitted: str | None = Field(default=None, description="Auto-Submitted header unless 'no'.")

    @property
    def is_bulk(self) -> bool:
        return bool(self.list_id or self.list_unsubscribe or self.auto_submitted
                    or (self.precedence or "").lower() in {"bulk", "list", "junk"})


class MessageReceived(Event):
    """A message was found in a mailbox (or arrived by Smart Bcc). Topic key: account id."""

    message_key: str = Field(description="Identity of the message record: the same message seen twice "
                             "(two folders, labels, resync, redelivery) has the same key.")
    account_id: str = Field(description="Mailbox account the message belongs to.")
    user_id: str = Field(description="CRM user who owns the account.")
    account_addresses: list[str] = Field(description="The owner's own addresses; they never count as participants.")
    source: Source = Field(default=Source.IMAP)
    direction: Direction = Field(description="outgoing when found in a Sent folder or sent from the owner's address.")
    location: MailboxLocation | None = Field(default=None, description="Where the message sits on the server (IMAP only).")
    flags: list[str] = Field(default_factory=list, description="IMAP flags, e.g. \\Seen.")
    internal_date: datetime | None = Field(default=None, description="Server's INTERNALDATE (UTC).")
    envelope: Envelope
    provider_thread_id: str | None = Field(default=None, description="Provider's thread id where one exists (Gmail X-GM-THRID).")
    provider_message_id: str | None = Field(default=None, description="Provider's own id of the message where "
                                            "one exists (Gmail X-GM-MSGID: the same across labels and resyncs).")
    labels: list[str] | None = Field(default=None, description="Gmail labels (X-GM-LABELS), e.g. \\Inbox, "
                                     "\\Sent, Work; null where the provider has folders, not labels.")
    snippet: str = Field(default="", description="Start of the plain text, at most 280 characters.")
    has_attachments: bool = False
    bulk: BulkSignals = Field(default_factory=BulkSignals)
    raw: BlobRef = Field(description="Claim-check reference to the stored raw MIME.")
    parse_error: str | None = Field(default=None, description="Why the MIME could not be fully parsed, if it could not.")
    deal_hint: str | None = Field(default=None, description="Smart Bcc only: the deal named by a deal-specific "
                                  "address (company-7f3a+deal-123@…). The matcher links the thread to this deal "
                                  "whatever its automatic rules say (if the deal exists and is open); absent otherwise.")
    company_id: str | None = Field(default=None, description="Company of the owning user, where known (Smart Bcc).")
    parse_warnings: list[str] = Field(default_factory=list, description="What could not be read as written (e.g. "
                                      "an unknown charset decoded with a fallback, a missing Date replaced by "
                                      "INTERNALDATE); the raw MIME keeps the original.")
    truncated: dict[str, int] = Field(default_factory=dict, description="Lists cut to keep the event under the "
                                      "broker's size limit: field name -> how many entries were left out "
                                      "(e.g. {\"to\": 39900}). The full data stays in the raw MIME.")


class Visibility(StrEnum):
    PRIVATE = "private"
    SHARED = "shared"


class Reason(Contract):
    """Why the matcher decided what it did, in a code (for programs) and in words (for people)."""

    code: str = Field(description="Stable machine code, e.g. deal.only_open, deal.several_open, blocked.sole_sender.")
    text: str = Field(description="The reason in words, e.g. \"linked to deal D because it is Jan Novák's only open deal\".")


class MessageLinked(Event):
    """The matcher's current links of a message. Topic key: account id.

    Links are derived from facts and recomputed when a fact changes, so one message may be
    published several times: keep the highest `revision` per message_key.
    """

    message_key: str
    account_id: str
    user_id: str
    thread_id: str = Field(description="Conversation the message belongs to.")
    person_ids: list[str] = Field(default_factory=list, description="Persons whose addresses appear on the message.")
    deal_id: str | None = Field(default=None, description="Deal the thread is linked to, if any.")
    lead_id: str | None = None
    project_id: str | None = None
    visibility: Visibility
    direction: Direction
    subject: str = ""
    date: datetime | None = None
    revision: int = Field(default=1, description="Grows each time the message's links or visibility change; "
                          "consumers keep the highest revision per message_key.")
    reasons: list[Reason] = Field(default_factory=list, description="Why each link was (or was not) made.")


class UnlinkReason(StrEnum):
    DELETED = "deleted"        # deleted in the Mail tab
    EXPUNGED = "expunged"      # gone from every synced folder of the mailbox
    BLOCKED = "blocked"        # now blocked (e.g. a header-variant copy changed who takes part)


class MessageUnlinked(Event):
    """A message the matcher had published as linked no longer is: drop it from every view.
    Topic key: account id."""

    message_key: str
    account_id: str
    user_id: str
    thread_id: str
    revision: int = Field(description="The revision this supersedes (a later MessageLinked carries a higher one).")
    reason: UnlinkReason
    reasons: list[Reason] = Field(default_factory=list)


class MessageIgnored(Event):
    """A message was recognised and deliberately not linked nor shown (blocklist). Topic key: account id."""

    message_key: str
    account_id: str
    user_id: str
    thread_id: str
    revision: int = 1
    reasons: list[Reason] = Field(description="Why, e.g. blocked: the only sender, @spam.example, is on your blocklist.")


class ExpungeReason(StrEnum):
    EXPUNGED = "expunged"  # expunged on the server, or moved to a folder that is not synced
    FOLDER_UNSELECTED = "folder_unselected"  # the folder left the account's selection: no longer synced
    FOLDER_VANISHED = "folder_vanished"  # the folder no longer exists on the server


class MessageExpunged(Event):
    """A message is no longer in one synced folder of the mailbox: expunged or moved away on the server,
    or its folder is no longer synced (unselected, or gone from the server). Topic key: account id."""

    message_key: str
    account_id: str
    location: MailboxLocation = Field(description="The folder position that no longer holds the message.")
    reason: ExpungeReason | None = Field(
        default=None, description="Why: 'expunged' (or absent: events before this field) when the server "
                                  "removed it from the folder; 'folder_unselected' when the folder left the "
                                  "account's selection; 'folder_vanished' when the folder is gone from the "
                                  "server. Either way the location no longer counts as synced.")


class MessageChanged(Event):
    """The flags of a message in one folder changed (seen, flagged, answered…). Topic key: account id."""

    message_key: str
    account_id: str
    location: MailboxLocation = Field(description="The folder position whose flags changed.")
    flags: list[str] = Field(description="The message's flags now in that folder, e.g. \\Seen, \\Flagged.")
    seen: bool = Field(description="\\Seen is set.")
    flagged: bool = Field(description="\\Flagged is set.")
    answered: bool = Field(description="\\Answered is set.")
    modseq: int | None = Field(default=None, description="The server's MODSEQ of this change (CONDSTORE), if known.")


class FolderReconciled(Event):
    """Ingest audited one folder: the server's UIDs against what it delivered, and the delivered
    messages against the blob store. Topic key: account id."""

    account_id: str
    folder: str
    uidvalidity: int
    server_messages: int = Field(description="Messages the server holds in the synced range of the folder.")
    delivered: int = Field(description="Messages ingest had recorded as delivered in that range.")
    missing: int = Field(description="Messages on the server never delivered (gaps), now re-fetched.")
    missing_blobs: int = Field(description="Delivered messages whose raw MIME was missing from the blob store.")
    repaired: int = Field(description="Gaps and missing blobs delivered again during this audit.")
    vanished: int = Field(description="Delivered messages no longer on the server, reported as expunged.")
    failed: int = Field(description="Messages that still cannot be fetched or published (see the dead-letter topic).")
