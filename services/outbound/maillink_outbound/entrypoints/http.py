"""The send API: send (or schedule), look at, and cancel a request. The acting user comes from
the token and must own the account. A request is checked completely (template, smart fields,
addresses, header values, size limit) before it is accepted, so the caller hears of a missing
field or an oversized message at once, and nothing touches the network for a message that
cannot be sent."""
import uuid
from datetime import datetime

from fastapi import APIRouter, Depends, HTTPException
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from maillink_runtime.auth import Principal, acting_user, require
from maillink_schemas.base import deterministic_id, utcnow
from maillink_schemas.headers import HeaderText
from maillink_schemas.mail import Address
from maillink_schemas.outbound import Attachment, SendRequested, SendState, SmartFieldContext
from maillink_schemas.providers import preset as preset_of
from maillink_schemas.scopes import Scope

from ..domain.states import CANCELLABLE
from ..service_layer.prepare import Unsendable, build, load, store_uploads
from ..service_layer.send import accept, cancel_request


class SendBody(BaseModel):
    request_id: str | None = Field(default=None, max_length=200,
                                   description="Idempotency key; the same id never sends twice. Generated when absent.")
    account_id: str
    to: list[Address] = Field(default_factory=list)
    cc: list[Address] = Field(default_factory=list)
    bcc: list[Address] = Field(default_factory=list)
    reply_to: list[Address] = Field(default_factory=list)
    subject: HeaderText = ""
    html: str | None = None
    text: str | None = None
    attachments: list[Attachment] = Field(default_factory=list, description="Uploads as base64, inline images "
                                          "with content_id (referenced as cid:<id>).")
    template_id: str | None = None
    context: SmartFieldContext = Field(default_factory=SmartFieldContext)
    signature_id: str | None = None
    signature: bool = True
    tracking: bool = False
    send_at: datetime | None = None
    reply_to_message: str | None = Field(default=None, description="Message key of the message this answers.")


class RequestView(BaseModel):
    request_id: str
    account_id: str
    state: SendState = Field(description="scheduled, pending, sending, sent, failed, cancelled or unknown.")
    message_id: str | None = Field(default=None, description="Message-ID, once fixed.")
    message_key: str | None = None
    send_at: datetime | None = None
    reason: str | None = Field(default=None, description="Why it failed (or is unknown), in words.")


def _view(doc: dict) -> RequestView:
    sent = doc.get("sent") or {}
    cmd = doc.get("command") or {}
    return RequestView(request_id=doc["_id"], account_id=doc["account_id"], state=doc["state"],
                       message_id=sent.get("message_id") or doc.get("message_id"),
                       message_key=sent.get("message_key"), send_at=cmd.get("send_at"), reason=doc.get("reason"))


def send_router(deps, publish_command, tracking) -> APIRouter:
    router = APIRouter(tags=["send"])

    async def own_account(account_id: str, user: str):
        account = await deps.accounts.get(account_id)
        if account is None or account.user_id != user or not account.enabled:
            raise HTTPException(404, "No such account of yours is connected.")
        return account

    @router.post("/send", status_code=202, response_model=RequestView)
    async def send(body: SendBody, caller: Principal = Depends(require(Scope.MAIL_SEND))):
        user = acting_user(caller)
        account = await own_account(body.account_id, user)
        request_id = body.request_id or uuid.uuid4().hex
        cmd = SendRequested(event_id=deterministic_id("send-requested", request_id), occurred_at=utcnow(),
                            user_id=user, purpose="user", request_id=request_id,
                            **body.model_dump(exclude={"request_id"}))
        preset = preset_of(account.provider)
        try:
            # The same build the sender runs, so whatever fails here would fail there.
            build(cmd, await load(cmd, account, preset, deps.stores), utcnow().replace(microsecond=0), tracking)
        except Unsendable as exc:
            return JSONResponse({"detail": str(exc), "field": exc.field}, status_code=exc.status)
        # Uploads are stored once here; the command (Kafka) and the request (store) carry references.
        cmd = await store_uploads(cmd, deps.stores.uploads)
        doc = await accept(cmd, deps)
        if doc["user_id"] != user:
            raise HTTPException(409, "This request id is taken.")
        await publish_command(cmd)
        return _view(doc)

    @router.get("/send/{request_id}", response_model=RequestView)
    async def status(request_id: str, caller: Principal = Depends(require(Scope.MAIL_SEND))):
        doc = await deps.requests.get(request_id)
        if doc is None or doc["user_id"] != acting_user(caller):
            raise HTTPException(404, "No such request of yours.")
        return _view(doc)

    @router.delete("/send/{request_id}", response_model=RequestView)
    async def cancel(request_id: str, caller: Principal = Depends(require(Scope.MAIL_SEND))):
        doc = await deps.requests.get(request_id)
        if doc is None or doc["user_id"] != acting_user(caller):
            raise HTTPException(404, "No such request of yours.")
        if SendState(doc["state"]) not in CANCELLABLE:
            raise HTTPException(409, f"The request is {doc['state']} and can no longer be cancelled.")
        if not await cancel_request(doc, deps):
            doc = await deps.requests.get(request_id)
            raise HTTPException(409, f"The request is {doc['state']} and can no longer be cancelled.")
        return _view(await deps.requests.get(request_id))

    return router
