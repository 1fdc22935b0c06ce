"""Kafka subscribers: each parses, calls one handler, and returns (offsets commit after it)."""
from faststream.kafka import KafkaBroker

from maillink_runtime import bus
from maillink_schemas import crm
from maillink_schemas.accounts import AccountConfigured
from maillink_schemas.mail import MessageReceived
from maillink_schemas.outbound import SendRequested, SendState
from maillink_schemas.topics import Topic

from ..service_layer.send import accept_many


def subscribe_all(broker: KafkaBroker, settings, group_id: str, deps, worker) -> list[str]:
    async def on_send_requested(cmds: list[SendRequested]) -> None:
        # Durable once stored (one insert per poll): the request's own state drives it from here (worker.py).
        for doc, _created in await accept_many(cmds, deps):
            if doc["state"] in (SendState.PENDING, SendState.SENDING):
                worker.submit(doc["_id"], doc)

    async def on_account(account: AccountConfigured, _msg) -> None:
        await deps.accounts.upsert(account)

    async def on_received(event: MessageReceived, _msg) -> None:
        await deps.stores.replies.remember(event.message_key, event.account_id, event.envelope)

    crm_view = deps.stores.crm
    bus.subscribe_batch(broker, settings.topic(Topic.SEND_REQUESTED), f"{group_id}.{Topic.SEND_REQUESTED}",
                        SendRequested, on_send_requested, retries=settings.handler_retries,
                        max_records=settings.batch_size)
    subscriptions = (
        (Topic.ACCOUNT, AccountConfigured, on_account),
        (Topic.MESSAGE_RECEIVED, MessageReceived, on_received),
        (Topic.CRM_PERSONS, crm.PersonUpserted, _call(crm_view.on_person)),
        (Topic.CRM_ORGANIZATIONS, crm.OrganizationUpserted, _call(crm_view.on_organization)),
        (Topic.CRM_DEALS, crm.DealUpserted, _call(crm_view.on_deal)),
    )
    for topic, model, handler in subscriptions:
        # One consumer group per topic: each subscriber is its own Kafka consumer, and six members of one
        # group rebalance in a cascade on every start (over a minute on a busy machine, and again after
        # every crash); alone in its group, each joins at once. Offsets are per group either way.
        bus.subscribe(broker, settings.topic(topic), f"{group_id}.{topic}", model, handler,
                      retries=settings.handler_retries)
    return [Topic.SEND_REQUESTED, *(t for t, _, _ in subscriptions)]


def _call(apply):
    async def handler(record, _msg) -> None:
        await apply(record)
    handler.__name__ = apply.__name__
    return handler
