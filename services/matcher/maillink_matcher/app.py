"""Wires matcher together: the one place that knows every dependency."""
from contextlib import asynccontextmanager

from fastapi import FastAPI

from maillink_runtime import bus, logs, mongo
from maillink_runtime.http import ops_router
from maillink_runtime.topics_admin import ensure_topics
from maillink_schemas import crm
from maillink_schemas.mail import MessageLinked, MessageReceived
from maillink_schemas.topics import Topic

from .adapters.messages import MessageStore
from .adapters.projections import CrmProjections
from .entrypoints.http import query_router
from .handlers import MatcherDeps, on_received
from .settings import MatcherSettings


def create_app(settings: MatcherSettings) -> FastAPI:
    logs.configure("matcher", settings.log_level)
    broker = bus.make_broker(settings.kafka_bootstrap_servers, "maillink-matcher")
    client = mongo.connect(settings.mongodb_url)
    db = client[settings.database("matcher")]
    messages, projections = MessageStore(db), CrmProjections(db)
    linked_topic = settings.topic(Topic.MESSAGE_LINKED)

    async def publish_linked(event: MessageLinked) -> None:
        await bus.publish(broker, linked_topic, event, key=event.account_id)

    deps = MatcherDeps(messages, projections, publish_linked, settings.default_visibility)
    group = f"{settings.namespace}maillink-matcher"

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
        bus.subscribe(broker, settings.topic(topic), group, model, handler, retries=settings.handler_retries)

    @asynccontextmanager
    async def lifespan(_: FastAPI):
        await ensure_topics(settings.kafka_bootstrap_servers, settings.namespace,
                            [Topic.MESSAGE_RECEIVED, Topic.MESSAGE_LINKED, Topic.CRM_PERSONS, Topic.CRM_DEALS,
                             Topic.CRM_USERS])
        await messages.ensure_indexes()
        await broker.start()
        yield
        await broker.stop()
        await client.close()

    app = FastAPI(title="maillink matcher", lifespan=lifespan)
    app.include_router(ops_router({"kafka": lambda: broker.ping(timeout=3), "store": lambda: mongo.ping(db)}))
    app.include_router(query_router(messages))
    return app
