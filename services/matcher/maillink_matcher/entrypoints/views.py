"""The query API's response models (typed, described: they are the OpenAPI document). Stored
documents are read back through `message_view`, never returned as they are."""
from collections.abc import Callable
from datetime import datetime

from pydantic import BaseModel, Field

from maillink_schemas.mail import Address, Direction, MailboxLocation, Reason, Visibility
from maillink_schemas.matcher import EmailLinks, LinkingMode

RawLink = Callable[[dict, str], str | None]


class MessageView(BaseModel):
    message_key: str = Field(description="Identity of the message record.")
    thread_id: str = Field(description="Conversation the message belongs to.")
    subject: str = ""
    date: datetime | None = Field(default=None, description="The Date header.")
    direction: Direction
    from_: list[Address] = Field(default_factory=list, alias="from")
    to: list[Address] = Field(default_factory=list)
    cc: list[Address] = Field(default_factory=list)
    snippet: str = Field(default="", description="Start of the plain text (at most 280 characters).")
    has_attachments: bool = False
    person_ids: list[str] = Field(default_factory=list, description="Linked persons.")
    deal_id: str | None = Field(default=None, description="Linked deal.")
    lead_id: str | None = Field(default=None, description="Linked lead.")
    project_id: str | None = Field(default=None, description="Linked project.")
    visibility: Visibility
    status: str = Field(default="active", description="active, or ignored (blocked; owner's Mail tab only).")
    reasons: list[Reason] = Field(default_factory=list, description="Why it is (or is not) linked, and why this "
                                  "visibility.")
    folders: list[str] = Field(default_factory=list, description="Folders of the mailbox that hold it.")
    user_id: str = Field(description="Owner of the mailbox the message came from.")
    account_id: str
    source: str = "imap"
    revision: int = Field(default=1, description="Revision of the links (as on mail.message.linked.v1).")
    raw_url: str | None = Field(default=None, description="Short-lived link to the raw MIME, signed for this viewer; "
                                "call it with the viewer's own token.")

    model_config = {"serialize_by_alias": True, "validate_by_name": True}


class ThreadView(BaseModel):
    thread_id: str
    subject: str = ""
    last_date: datetime | None = Field(default=None, description="Date of the thread's newest message shown.")
    message_count: int = Field(description="Messages of this thread on this page.")
    linked: bool = Field(description="The newest message is linked to at least one CRM record.")
    deal_id: str | None = None
    lead_id: str | None = None
    project_id: str | None = None
    visibility: Visibility = Field(description="Visibility of the thread's newest message.")
    messages: list[MessageView] = Field(description="Newest first.")


class Conversations(BaseModel):
    threads: list[ThreadView] = Field(description="Newest first, by each thread's latest message.")
    next_cursor: str | None = Field(default=None, description="Pass as `cursor` for the next (older) page; "
                                    "null on the last page.")


class Suggestion(BaseModel):
    kind: str = Field(description="deal, lead or project.")
    record_id: str
    title: str = ""


class ThreadDetail(BaseModel):
    thread_id: str
    subject: str = ""
    owner_id: str = Field(description="User whose mailbox holds the thread.")
    deal_id: str | None = None
    lead_id: str | None = None
    project_id: str | None = None
    visibility: Visibility | None = Field(default=None, description="The owner's choice for the thread, if any.")
    suggestions: list[Suggestion] = Field(default_factory=list, description="Candidates where the choice was left "
                                          "to the user (owner only), newest activity first.")
    messages: list[MessageView] = Field(description="Newest first.")
    next_cursor: str | None = None


class MailSettings(BaseModel):
    blocklist: list[str] = Field(default_factory=list, description="Exact addresses or @domain (subdomains included).")
    sharing_default: Visibility = Field(default=Visibility.SHARED, description="Visibility of mail received from now on.")
    linking_mode: LinkingMode = LinkingMode.AUTOMATIC
    email_links: EmailLinks = Field(default=EmailLinks.CRM, description="What clicking an address opens (§12).")
    sync_back: bool = Field(default=False, description="Deletes in the CRM are done in the mailbox too.")
    version: int | None = Field(default=None, description="Version of these settings (null: never changed).")


class SettingsChange(BaseModel):
    """Only the fields given change."""
    blocklist: list[str] | None = None
    sharing_default: Visibility | None = None
    linking_mode: LinkingMode | None = None
    email_links: EmailLinks | None = None
    sync_back: bool | None = None


class CompanyBlocklist(BaseModel):
    blocklist: list[str] = Field(description="Company-wide entries: exact addresses or @domain.")
    version: int | None = None


class Accepted(BaseModel):
    accepted: bool = True
    applied: bool = Field(description="The change is already visible in queries (false: it will be shortly).")


def message_view(doc: dict, raw_url: str | None) -> MessageView:
    folders = sorted({loc["folder"] for loc in doc.get("locations", [])})
    return MessageView.model_validate({**doc, "message_key": doc["_id"], "raw_url": raw_url, "folders": folders,
                                       "status": doc.get("status") or "active"})


def group_by_thread(docs: list[dict], raw_link: RawLink, viewer: str) -> list[ThreadView]:
    """Threads newest first (by their latest message), each thread's messages newest first."""
    threads: dict[str, dict] = {}
    for doc in docs:  # already sorted newest first
        thread = threads.get(doc["thread_id"])
        if thread is None:
            thread = threads[doc["thread_id"]] = {
                "thread_id": doc["thread_id"], "subject": doc.get("subject", ""), "last_date": doc.get("sort_date"),
                "linked": bool(doc.get("linked")), "deal_id": doc.get("deal_id"), "lead_id": doc.get("lead_id"),
                "project_id": doc.get("project_id"), "visibility": doc.get("visibility", "private"), "messages": []}
        thread["messages"].append(message_view(doc, raw_link(doc, viewer)))
    return [ThreadView(**t, message_count=len(t["messages"])) for t in threads.values()]
