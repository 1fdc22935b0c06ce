"""Wires tracker together: the one place that knows every dependency."""
import asyncio
import gc
from datetime import datetime, timedelta, timezone

import structlog
from fastapi import FastAPI

from maillink_runtime import bus, redact
from maillink_runtime.service import Service
from maillink_schemas.tracking import TrackingClicked, TrackingMilestoneReached, TrackingOpened, TrackingRegistered
from maillink_schemas.topics import Topic

from .adapters.hits import HitStore
from .adapters.publisher import EventPublisher
from .adapters.registrations import RegistrationStore
from .aggregator import Aggregator
from .domain.classify import Lists, Windows
from .domain.networks import load_apple_egress, load_named_networks
from .edge import Edge, Topics
from .entrypoints.public import PublicEndpoints
from .entrypoints.public_server import PublicServer
from .entrypoints.stats_api import stats_router
from .settings import Settings

log = structlog.get_logger()
PURGE_EVERY_S = 3600


def create_app(settings: Settings) -> FastAPI:
    service = Service("tracker", settings)
    broker, db = service.broker, service.db
    for secret in settings.secrets():
        redact.register_secret(secret)
    keyring = settings.keyring()
    lists = Lists(apple=load_apple_egress(settings.apple_ranges_file),
                  rewriters=load_named_networks(settings.rewriter_networks_file))
    windows = Windows(settings.click_after_delivery_s, settings.burst_s, settings.head_window_s)
    registrations, hits = RegistrationStore(db, settings.registration_cache), HitStore(db)
    publisher = EventPublisher(settings, "maillink-tracker-edge", settings.publish_linger_ms, settings.publish_wait_s)
    edge = Edge(keyring, timedelta(days=settings.token_max_age_days), lists, windows, registrations, hits, publisher,
                Topics(settings.topic(Topic.TRACKING_OPENED), settings.topic(Topic.TRACKING_CLICKED)))
    milestone_topic = settings.topic(Topic.TRACKING_MILESTONE)

    async def publish_milestone(event: TrackingMilestoneReached) -> None:
        await bus.publish(broker, milestone_topic, event, key=event.message_key)

    aggregator = Aggregator(registrations, hits, windows, publish_milestone)

    async def on_registered(event: TrackingRegistered, msg) -> None:
        await aggregator.on_registered(event, msg)

    async def on_opened(event: TrackingOpened, msg) -> None:
        await aggregator.on_hit(event, msg)

    async def on_clicked(event: TrackingClicked, msg) -> None:
        await aggregator.on_hit(event, msg)

    subscriptions = [(Topic.TRACKING_REGISTERED, TrackingRegistered, on_registered)]
    if settings.aggregate:
        subscriptions += [(Topic.TRACKING_OPENED, TrackingOpened, on_opened),
                          (Topic.TRACKING_CLICKED, TrackingClicked, on_clicked)]
    for topic, model, handler in subscriptions:
        bus.subscribe(broker, settings.topic(topic), service.group_id, model, handler, retries=settings.handler_retries)

    purger: list[asyncio.Task] = []
    listener = PublicServer(edge, settings.public_host, settings.public_port) if settings.public_port else None

    async def purge_forever() -> None:
        # Retention (docs/tracker.md): records older than retention_days go; events on Kafka follow
        # the topics' own retention.
        while True:
            try:
                removed = await hits.purge(datetime.now(timezone.utc), timedelta(days=settings.retention_days))
                if removed:
                    log.info("tracking_records_purged", removed=removed)
            except Exception as exc:  # noqa: BLE001 - the next round tries again
                log.warning("tracking_purge_failed", error=repr(exc))
            await asyncio.sleep(PURGE_EVERY_S)

    async def indexes() -> None:
        # In the background: a store that is down must not keep the pixel from being served
        # (/healthz reports the store as degraded meanwhile).
        while True:
            try:
                await registrations.ensure_indexes()
                return await hits.ensure_indexes()
            except Exception as exc:  # noqa: BLE001 - retried until the store answers
                log.warning("tracking_indexes_pending", error=repr(exc))
                await asyncio.sleep(5)

    async def start() -> None:
        await publisher.start()
        # Everything made at start-up (modules, settings, range lists, client metadata) lives as long
        # as the process: keep it out of the garbage collector's full scans on the pixel path.
        gc.freeze()
        if listener is not None:
            await listener.start()
        purger.append(asyncio.create_task(indexes()))
        if settings.aggregate:
            purger.append(asyncio.create_task(purge_forever()))

    async def stop() -> None:
        for task in purger:
            task.cancel()
        if listener is not None:
            await listener.stop()  # its requests in flight are answered, their events in batches
        await publisher.stop()

    app = service.app(
        topics=[Topic.TRACKING_REGISTERED, Topic.TRACKING_OPENED, Topic.TRACKING_CLICKED, Topic.TRACKING_MILESTONE],
        on_start=[start], on_stop=[stop],
        routers=[stats_router(registrations, hits, windows)])
    # A trailing-slash redirect is still a redirect: the public paths answer 404, nothing else.
    app.router.redirect_slashes = False
    # Added last, so it runs first among FastAPI's middleware (in-process use: tests, ASGI transport);
    # __main__ also puts it in front of FastAPI itself (served_app), past FastAPI's per-request telemetry.
    app.add_middleware(PublicEndpoints, edge=edge)
    app.state.edge = edge
    return app


def served_app(app: FastAPI) -> PublicEndpoints:
    """What uvicorn serves: the public endpoints in front of the whole FastAPI app (entrypoints/public.py)."""
    return PublicEndpoints(app, app.state.edge)
