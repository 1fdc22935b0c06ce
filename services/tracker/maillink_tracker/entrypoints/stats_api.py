"""The stats API: one sent message's opens and clicks, human and machine apart, for its sender."""
from datetime import datetime

from fastapi import APIRouter, Depends, HTTPException
from pydantic import BaseModel, Field

from maillink_runtime.auth import Principal, acting_user, require
from maillink_schemas.scopes import Scope

from ..adapters.hits import HitStore
from ..adapters.registrations import RegistrationStore
from ..domain.classify import Windows
from ..domain.stats import summarise


class LinkClicks(BaseModel):
    link_index: int
    url: str | None
    human: int
    machine: int


class MessageTracking(BaseModel):
    message_key: str
    first_human_open: datetime | None
    last_human_open: datetime | None
    opens_human: int
    opens_machine: int
    clicks: list[LinkClicks]
    head_requests: int = Field(description="HEAD requests: scanner signals, never counted as opens or clicks.")
    signals: dict[str, int] = Field(description="How often each classification rule fired.")


def stats_router(registrations: RegistrationStore, hits: HitStore, windows: Windows) -> APIRouter:
    router = APIRouter(tags=["tracking stats"])

    @router.get("/messages/{message_key}/tracking", response_model=MessageTracking)
    async def message_tracking(message_key: str,
                               caller: Principal = Depends(require(Scope.TRACKING_READ))) -> MessageTracking:
        user = acting_user(caller)
        registration = await registrations.by_message_key(message_key)
        if registration is None:
            raise HTTPException(404, "No tracked message with this key.")
        if registration.user_id != user:
            raise HTTPException(403, "This message was sent by another user.")
        stats = summarise(await hits.recorded(message_key), sorted(registration.links), windows)
        return MessageTracking(
            message_key=message_key, first_human_open=stats.first_human_open, last_human_open=stats.last_human_open,
            opens_human=stats.opens_human, opens_machine=stats.opens_machine,
            clicks=[LinkClicks(link_index=c.link_index, url=registration.links.get(c.link_index), human=c.human,
                               machine=c.machine) for c in stats.clicks],
            head_requests=stats.head_requests, signals=stats.signals)

    return router
