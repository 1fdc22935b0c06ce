"""Consumers: registrations into the tracker's own collection, and the tracker's own opened/clicked
events into `hits`, from which the stats are derived and the milestones published once each."""
from collections.abc import Awaitable, Callable

import structlog

from maillink_schemas.base import deterministic_id, utcnow
from maillink_schemas.tracking import TrackingClicked, TrackingMilestoneReached, TrackingOpened, TrackingRegistered

from .adapters.hits import HitStore
from .adapters.registrations import RegistrationStore
from .domain.classify import Windows
from .domain.stats import summarise

PublishMilestone = Callable[[TrackingMilestoneReached], Awaitable[None]]


class Aggregator:
    def __init__(self, registrations: RegistrationStore, hits: HitStore, windows: Windows,
                 publish_milestone: PublishMilestone) -> None:
        self._registrations, self._hits, self._windows = registrations, hits, windows
        self._publish = publish_milestone

    async def on_registered(self, event: TrackingRegistered, _msg=None) -> None:
        with structlog.contextvars.bound_contextvars(message_key=event.message_key):
            await self._registrations.upsert(event)

    async def on_hit(self, event: TrackingOpened | TrackingClicked, _msg=None) -> None:
        with structlog.contextvars.bound_contextvars(message_key=event.message_key):
            await self._record(event)

    async def _record(self, event: TrackingOpened | TrackingClicked) -> None:
        # The registration by the token's id: the edge names the registered message key when it
        # could read the registration, and otherwise only the token's id (maybe a tracking id).
        registration = await self._registrations.get(event.tracking_id or event.message_key)
        message_key = registration.message_key if registration is not None else event.message_key
        await self._hits.record_event(event, message_key)
        if registration is None:
            return  # no sender to notify; the stats API answers 404 for it too
        stats = summarise(await self._hits.recorded(message_key), sorted(registration.links), self._windows)
        reached = []
        if stats.first_human_open is not None:
            reached.append(("first_human_open", stats.first_human_open, None))
        if stats.first_human_click is not None:
            reached.append(("first_human_click", *stats.first_human_click))
        for milestone, at, link_index in reached:
            if await self._hits.milestone_published(message_key, milestone):
                continue
            await self._publish(TrackingMilestoneReached(
                event_id=deterministic_id("tracking-milestone", message_key, milestone), occurred_at=utcnow(),
                message_key=message_key, account_id=registration.account_id, user_id=registration.user_id,
                milestone=milestone, at=at, link_index=link_index))
            await self._hits.mark_milestone(message_key, milestone)
