"""Wires outbound together: the one place that knows every dependency."""
from types import SimpleNamespace

from fastapi import FastAPI

from maillink_runtime import bus
from maillink_runtime.service import Service
from maillink_schemas.outbound import SendRequested
from maillink_schemas.topics import Topic

from .adapters.accounts import AccountStore, Credentials
from .adapters.crm import CrmView
from .adapters.read_cache import ReadCache
from .adapters.replies import ReplyIndex
from .adapters.requests import RequestStore
from .adapters.sent_folder import SentFolder
from .adapters.system_sender import SystemSender
from .adapters.templates import SignatureStore, TemplateStore
from .adapters.uploads import UploadStore
from .entrypoints.consumers import subscribe_all
from .entrypoints.http import send_router
from .entrypoints.templates_http import templates_router
from .service_layer.pools import Pools
from .service_layer.prepare import Tracking
from .service_layer.deps import SendDeps
from .service_layer.worker import Worker
from .settings import Settings


def build_deps(settings: Settings, broker, db) -> SendDeps:
    stores = SimpleNamespace(templates=TemplateStore(db), signatures=SignatureStore(db), crm=CrmView(db),
                             replies=ReplyIndex(db), uploads=UploadStore(db), cache=ReadCache(settings.cache_ttl_s))

    async def publish(topic: str, event, key: str) -> None:
        await bus.publish(broker, topic, event, key=key)

    async def publish_many(topic: str, events: list) -> None:
        await bus.publish_many(broker, topic, events)

    keyring = settings.tracking_keyring()
    tracking = Tracking(settings.tracker_base_url, keyring) if keyring is not None else None
    return SendDeps(
        requests=RequestStore(db), accounts=AccountStore(db), credentials=Credentials(settings.credentials_key),
        stores=stores, pools=Pools(settings.smtp_ca_file, settings.smtp_timeout_s),
        sent_folder=SentFolder(settings.imap_ca_file), publish=publish, publish_many=publish_many,
        topics={"sent": settings.topic(Topic.MESSAGE_SENT), "failed": settings.topic(Topic.SEND_FAILED),
                "tracking": settings.topic(Topic.TRACKING_REGISTERED)},
        tracking=tracking, lease_s=settings.lease_s, max_attempts=settings.max_attempts,
        backoff_s=settings.backoff_s, crash_dir=settings.test_crash_dir,
        pending_grace_s=settings.pending_grace_s, system=SystemSender(settings))


def create_app(settings: Settings) -> FastAPI:
    service = Service("outbound", settings)
    deps = build_deps(settings, service.broker, service.db)
    worker = Worker(deps, settings.batches, settings.sweep_s, settings.batch_size, settings.settle_backlog)
    consumed = subscribe_all(service.broker, settings, service.group_id, deps, worker)
    command_topic = settings.topic(Topic.SEND_REQUESTED)

    async def publish_command(cmd: SendRequested) -> None:
        await bus.publish(service.broker, command_topic, cmd, key=cmd.account_id)

    return service.app(
        topics=[*consumed, Topic.MESSAGE_SENT, Topic.SEND_FAILED, Topic.TRACKING_REGISTERED],
        on_start=[deps.requests.ensure_indexes, deps.stores.replies.ensure_indexes, worker.start],
        on_stop=[worker.stop, deps.pools.close],
        routers=[send_router(deps, publish_command, deps.tracking),
                 templates_router(deps.stores.templates, deps.stores.signatures, deps.accounts)],
    )
