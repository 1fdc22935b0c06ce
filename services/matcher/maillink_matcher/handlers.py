"""What matcher does with each message: resolve, decide, store once, publish once.

Handlers are idempotent, so it is fine to be killed between any two steps: a redelivered event
finds the stored message and only publishes mail.message.linked.v1 if that had not happened yet
(`published` is set after the broker acknowledged it). The linked event's id derives from the
message key, so even a publish repeated after such a crash is recognisable downstream.
"""
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import structlog
from prometheus_client import Counter

from maillink_schemas.base import deterministic_id, utcnow
from maillink_schemas.mail import MessageLinked, MessageReceived, Visibility

from .adapters.messages import MessageStore
from .adapters.projections import CrmProjections
from .domain.linking import decide
from .domain.participants import participants
from .domain.threads import ancestors, root_thread_id

PublishLinked = Callable[[MessageLinked], Awaitable[None]]
LINKED = Counter("maillink_matcher_messages_linked_total", "Messages stored and linked", ["with_person", "with_deal"])
DUPLICATES = Counter("maillink_matcher_duplicates_total", "Received events for messages already stored")
log = structlog.get_logger()


@dataclass(frozen=True)
class MatcherDeps:
    messages: MessageStore
    crm: CrmProjections
    publish_linked: PublishLinked
    default_visibility: Visibility = Visibility.SHARED


async def on_received(event: MessageReceived, deps: MatcherDeps) -> None:
    structlog.contextvars.bind_contextvars(account_id=event.account_id, message_key=event.message_key)
    location = event.location.model_dump() if event.location else None
    stored = await deps.messages.get(event.message_key)
    if stored is not None:
        DUPLICATES.inc()
        if location:
            await deps.messages.add_location(event.message_key, location)
    else:
        stored = await deps.messages.insert_if_absent(await _new_record(event, deps), location)
    if not stored.get("published"):
        await deps.publish_linked(_linked_event(stored))
        await deps.messages.mark_published(event.message_key)
        LINKED.labels(str(bool(stored["person_ids"])).lower(), str(bool(stored["deal_id"])).lower()).inc()


async def _new_record(event: MessageReceived, deps: MatcherDeps) -> dict:
    own = {a.lower() for a in event.account_addresses} | await deps.crm.user_addresses(event.user_id)
    people = participants(event.envelope, own)
    person_ids = await deps.crm.persons_by_address(people)
    thread_id = await deps.messages.thread_of_references(event.account_id, ancestors(event.envelope)) \
        or root_thread_id(event.account_id, event.envelope, event.provider_thread_id, event.message_key)
    if event.envelope.message_id:
        await deps.messages.remember_message_id(event.account_id, event.envelope.message_id, thread_id)
    thread_deal = await deps.messages.thread_deal(thread_id)
    links = decide(person_ids, await deps.crm.open_deals_of(person_ids), thread_deal,
                   thread_deal is not None and await deps.crm.deal_is_open(thread_deal), event.bulk.is_bulk)
    if links.deal_id and thread_deal is None:
        await deps.messages.set_thread_deal_if_unset(thread_id, links.deal_id)
    env = event.envelope
    return {
        "_id": event.message_key, "account_id": event.account_id, "user_id": event.user_id, "thread_id": thread_id,
        "subject": env.subject, "date": env.date, "sort_date": env.date or event.internal_date or event.occurred_at,
        "direction": event.direction.value, "source": event.source.value,
        "from": [a.model_dump() for a in env.from_], "to": [a.model_dump() for a in env.to],
        "cc": [a.model_dump() for a in env.cc], "participants": people, "person_ids": links.person_ids,
        "deal_id": links.deal_id, "visibility": deps.default_visibility.value, "snippet": event.snippet,
        "has_attachments": event.has_attachments, "bulk": event.bulk.is_bulk, "raw": event.raw.model_dump(),
        "message_id": env.message_id, "deleted": False, "published": False, "created_at": utcnow(),
    }


def _linked_event(stored: dict) -> MessageLinked:
    return MessageLinked(
        event_id=deterministic_id("linked", stored["_id"]), occurred_at=utcnow(), message_key=stored["_id"],
        account_id=stored["account_id"], user_id=stored["user_id"], thread_id=stored["thread_id"],
        person_ids=stored["person_ids"], deal_id=stored.get("deal_id"), visibility=stored["visibility"],
        direction=stored["direction"], subject=stored.get("subject", ""), date=stored.get("date"),
    )
