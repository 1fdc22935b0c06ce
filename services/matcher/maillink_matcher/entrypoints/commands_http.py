"""Link, unlink, visibility and delete orders over HTTP (scope mail:write). Only the thread's
owner may give them. Each becomes a ThreadCommand on mail.thread.command.v1, keyed by the
thread's account, which the mailbox's single writer applies; the route then waits briefly until
the change is visible (read-your-writes) and says whether it was."""
import asyncio
import time
from collections.abc import Awaitable, Callable

from fastapi import APIRouter, Depends, HTTPException
from pydantic import BaseModel, Field

from maillink_runtime.auth import Principal, acting_user, require
from maillink_schemas.base import deterministic_id, utcnow
from maillink_schemas.mail import Visibility
from maillink_schemas.matcher import RecordKind, ThreadAction, ThreadCommand
from maillink_schemas.scopes import Scope

from ..adapters.queries import QueryStore
from .views import Accepted

SendCommand = Callable[[ThreadCommand], Awaitable[None]]


class LinkRequest(BaseModel):
    kind: RecordKind
    record_id: str = Field(min_length=1, max_length=200)


class VisibilityRequest(BaseModel):
    visibility: Visibility


async def _wait(check: Callable[[], Awaitable[bool]], timeout_s: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if await check():
            return True
        await asyncio.sleep(0.1)
    return False


def commands_router(queries: QueryStore, send: SendCommand) -> APIRouter:
    router = APIRouter(tags=["commands"])
    writer = Depends(require(Scope.MAIL_WRITE))

    async def owned_thread(thread_id: str, caller: Principal) -> dict:
        thread = await queries.thread_doc(thread_id)
        if thread is None or thread.get("user_id") != acting_user(caller):
            raise HTTPException(404, "No such thread among your own.")
        return thread

    async def order(caller: Principal, thread: dict, action: ThreadAction, **fields) -> ThreadCommand:
        now = utcnow()
        command = ThreadCommand(event_id=deterministic_id("cmd", thread["_id"], action, str(now.timestamp())),
                                occurred_at=now, action=action, user_id=acting_user(caller),
                                account_id=thread["account_id"], thread_id=thread["_id"], **fields)
        await send(command)
        return command

    async def thread_state(thread_id: str) -> dict:
        return await queries.thread_doc(thread_id) or {}

    @router.post("/threads/{thread_id}/links", response_model=Accepted, status_code=202)
    async def link(thread_id: str, body: LinkRequest, caller: Principal = writer):
        thread = await owned_thread(thread_id, caller)
        await order(caller, thread, ThreadAction.LINK, kind=body.kind, record_id=body.record_id)
        return Accepted(applied=await _wait(
            lambda: _has(thread_state(thread["_id"]), body.kind.value, body.record_id)))

    @router.delete("/threads/{thread_id}/links/{kind}", response_model=Accepted, status_code=202)
    async def unlink(thread_id: str, kind: RecordKind, caller: Principal = writer):
        thread = await owned_thread(thread_id, caller)
        await order(caller, thread, ThreadAction.UNLINK, kind=kind)
        return Accepted(applied=await _wait(lambda: _has(thread_state(thread["_id"]), kind.value, None)))

    @router.put("/threads/{thread_id}/visibility", response_model=Accepted, status_code=202)
    async def visibility(thread_id: str, body: VisibilityRequest, caller: Principal = writer):
        thread = await owned_thread(thread_id, caller)
        await order(caller, thread, ThreadAction.SET_VISIBILITY, visibility=body.visibility)
        return Accepted(applied=await _wait(
            lambda: _field(thread_state(thread["_id"]), "visibility", body.visibility.value)))

    @router.delete("/messages/{message_key}", response_model=Accepted, status_code=202)
    async def delete(message_key: str, caller: Principal = writer):
        doc = await queries.message(message_key)
        if doc is None or doc["user_id"] != acting_user(caller):
            raise HTTPException(404, "No such message among your own.")
        await order(caller, {"_id": doc["thread_id"], "account_id": doc["account_id"]}, ThreadAction.DELETE_MESSAGE,
                    message_key=message_key)
        return Accepted(applied=await _wait(lambda: _field(queries.message(message_key), "status", "deleted")))

    return router


async def _has(doc: Awaitable[dict], kind: str, record_id: str | None) -> bool:
    return ((await doc).get("links") or {}).get(kind) == record_id


async def _field(doc: Awaitable[dict | None], name: str, value: str) -> bool:
    return ((await doc) or {}).get(name) == value
