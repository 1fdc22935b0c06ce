"""Wires matcher together: the one place that knows every dependency."""
from fastapi import FastAPI

from maillink_runtime import bus
from maillink_runtime.auth.links import blob_link
from maillink_runtime.service import Service
from maillink_schemas import crm
from maillink_schemas.mail import MessageLinked, MessageReceived
from maillink_schemas.topics import Topic

from .adapters.messages import MessageStore
from .adapters.projections import CrmProjections
from .entrypoints.http import query_router
from .handlers import MatcherDeps, on_received
from .settings import MatcherSettings


def create_app(settings: MatcherSettings) -> FastAPI:
    service = Service("matcher", settings)
    broker, db = service.broker, service.db
    messages, projections = MessageStore(db), CrmProjections(db)
    linked_topic = settings.topic(Topic.MESSAGE_LINKED)

    async def publish_linked(event: MessageLinked) -> None:
        await bus.publish(broker, linked_topic, event, key=event.account_id)

    secrets = service.auth.link_secrets()
    if not secrets:
        raise ValueError("MAILLINK_LINK_KEYS must be set: the query API signs links to raw messages with it "
                         "(ingest verifies them with the same keys).")

    def raw_link(doc: dict, viewer: str) -> str | None:
        raw = doc.get("raw") or {}
        base = settings.blob_urls.get(raw.get("owner", ""))
        return blob_link(base, secrets[0], raw["blob_id"], viewer, settings.link_ttl_s) if base else None

    deps = MatcherDeps(messages, projections, publish_linked, settings.default_visibility)

    async def on_message_received(event: MessageReceived, _msg) -> None:
        await on_received(event, deps)

    async def on_person(event: crm.PersonUpserted, _msg) -> None:
        await projections.upsert_person(event)

    async def on_deal(event: crm.DealUpserted, _msg) -> None:
        await projections.upsert_deal(event)

    async def on_user(event: crm.UserUpserted, _msg) -> None:
        await projections.users.upsert(event)

    for topic, model, handler in (
        (Topic.MESSAGE_RECEIVED, MessageReceived, on_message_received),
        (Topic.CRM_PERSONS, crm.PersonUpserted, on_person),
        (Topic.CRM_DEALS, crm.DealUpserted, on_deal),
        (Topic.CRM_USERS, crm.UserUpserted, on_user),
    ):
        bus.subscribe(broker, settings.topic(topic), service.group_id, model, handler, retries=settings.handler_retries)

    return service.app(
        topics=[Topic.MESSAGE_RECEIVED, Topic.MESSAGE_LINKED, Topic.CRM_PERSONS, Topic.CRM_DEALS, Topic.CRM_USERS],
        on_start=[messages.ensure_indexes],
        routers=[query_router(messages, raw_link)],
    )
