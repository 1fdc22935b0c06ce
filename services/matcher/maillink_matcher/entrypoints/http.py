"""The query API: conversations of a person or deal, and a user's Mail tab.

The viewer is always the token's acting user, never a parameter. Private mail is shown to its
owner only, whatever else the token says (MISSION.md §15). Each message carries a short-lived
link to its raw MIME, signed for this viewer (runtime/auth/links.py).
"""
from collections.abc import Callable
from datetime import datetime

from fastapi import APIRouter, Depends, HTTPException, Query
from pydantic import BaseModel, Field

from maillink_runtime.auth import Principal, acting_user, require
from maillink_schemas.mail import Address, Direction, Visibility
from maillink_schemas.scopes import Scope

from ..adapters.messages import MessageStore

RawLink = Callable[[dict, str], str | None]


class MessageView(BaseModel):
    message_key: str = Field(description="Identity of the message record.")
    thread_id: str
    subject: str = ""
    date: datetime | None = None
    direction: Direction
    from_: list[Address] = Field(default_factory=list, alias="from")
    to: list[Address] = Field(default_factory=list)
    cc: list[Address] = Field(default_factory=list)
    snippet: str = ""
    has_attachments: bool = False
    person_ids: list[str] = Field(default_factory=list)
    deal_id: str | None = None
    visibility: Visibility
    user_id: str = Field(description="Owner of the mailbox the message came from.")
    account_id: str
    source: str = "imap"
    raw_url: str | None = Field(default=None, description="Short-lived link to the raw MIME, signed for this viewer; "
                                "call it with the viewer's own token.")

    model_config = {"serialize_by_alias": True, "validate_by_name": True}


class ThreadView(BaseModel):
    thread_id: str
    subject: str = ""
    last_date: datetime | None = Field(default=None, description="Date of the thread's newest message shown.")
    message_count: int
    messages: list[MessageView] = Field(description="Newest first.")


class Conversations(BaseModel):
    threads: list[ThreadView] = Field(description="Newest first, by each thread's latest message.")


def _message_view(doc: dict, raw_url: str | None) -> MessageView:
    return MessageView.model_validate({**doc, "message_key": doc["_id"], "raw_url": raw_url})


def group_by_thread(docs: list[dict], raw_link: RawLink = lambda doc, viewer: None, viewer: str = "") -> list[ThreadView]:
    """Threads newest first (by their latest message), each thread's messages newest first."""
    threads: dict[str, dict] = {}
    for doc in docs:  # already sorted newest first
        thread = threads.setdefault(doc["thread_id"], {"thread_id": doc["thread_id"], "subject": doc.get("subject", ""),
                                                        "last_date": doc.get("sort_date"), "messages": []})
        thread["messages"].append(_message_view(doc, raw_link(doc, viewer)))
    return [ThreadView(**t, message_count=len(t["messages"])) for t in threads.values()]


def query_router(messages: MessageStore, raw_link: RawLink) -> APIRouter:
    router = APIRouter(tags=["query"])
    reader = Depends(require(Scope.MAIL_READ))
    limit_q = Query(200, ge=1, le=1000)

    async def conversations(criteria: dict, caller: Principal, limit: int) -> Conversations:
        viewer = acting_user(caller)
        docs = await messages.visible(criteria, viewer, limit)
        return Conversations(threads=group_by_thread(docs, raw_link, viewer))

    @router.get("/persons/{person_id}/conversations", response_model=Conversations)
    async def person_conversations(person_id: str, caller: Principal = reader, limit: int = limit_q):
        return await conversations({"person_ids": person_id}, caller, limit)

    @router.get("/deals/{deal_id}/conversations", response_model=Conversations)
    async def deal_conversations(deal_id: str, caller: Principal = reader, limit: int = limit_q):
        return await conversations({"deal_id": deal_id}, caller, limit)

    @router.get("/users/{user_id}/mail", response_model=Conversations)
    async def mail_tab(user_id: str, caller: Principal = reader, limit: int = limit_q):
        # The Mail tab is the user's own mailbox: only that user may open it, admins included.
        if acting_user(caller) != user_id:
            raise HTTPException(403, "The Mail tab can only be opened by its own user.")
        return await conversations({"user_id": user_id}, caller, limit)

    return router
