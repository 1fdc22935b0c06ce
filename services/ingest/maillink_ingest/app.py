"""Wires ingest together: the one place that knows every dependency."""
import functools

import structlog

from fastapi import FastAPI

from maillink_runtime import bus
from maillink_runtime.kafka_conn import client_options
from maillink_runtime.service import Service
from maillink_schemas.accounts import AccountConfigured, AccountStatusChanged, SyncState
from maillink_schemas.base import deterministic_id, utcnow
from maillink_schemas.topics import Topic

from .adapters.accounts import AccountStore
from maillink_runtime.blobs.store import open_blob_store
from .adapters.crypto import CredentialsCipher
from .adapters.folder_state import FolderStateStore
from .adapters.locations import LocationStore
from .adapters.legacy_blobs import LegacyBlobs
from .entrypoints.assignments import AccountAssignments
from .entrypoints.http import accounts_router
from .settings import IngestSettings
from .sync.account_sync import ACCOUNTS, SyncDeps, run_account
from .sync.delivery import Delivery
from .sync.manager import SyncManager

log = structlog.get_logger()


def create_app(settings: IngestSettings) -> FastAPI:
    service = Service("ingest", settings)
    broker, db = service.broker, service.db
    blobs = open_blob_store(settings.blob_store_url(), owner=f"{settings.namespace}ingest", legacy=LegacyBlobs(db),
                            endpoint=settings.aws_endpoint_url, region=settings.aws_region,
                            allow_http=settings.aws_allow_http)
    states, accounts, locations = FolderStateStore(db), AccountStore(db), LocationStore(db)
    cipher = CredentialsCipher(settings.credentials_key)
    link_secrets = service.auth.link_secrets()
    if not link_secrets:
        raise ValueError("MAILLINK_LINK_KEYS must be set: raw messages are served through links the query API "
                         "signs with it.")
    received_topic = settings.topic(Topic.MESSAGE_RECEIVED)

    async def publish_received(events):
        await bus.publish_many(broker, received_topic, events)

    async def emit(topic, events):  # changed, expunged, reconciled (sync/delivery.py)
        await bus.publish_many(broker, settings.topic(topic), events)

    async def dead_letter(key, payload, reason, error, offset):  # poison messages, with their raw reference
        await bus.dead_letter(broker, received_topic, "ingest", -1, offset, key.encode(), payload, reason, error, 1)

    last_state: dict[str, SyncState] = {}

    async def report(account: AccountConfigured, state: SyncState, error: str | None, synced: int | None) -> None:
        # Reporting must never take the sync loop down: with Kafka or the store unreachable the
        # status is logged, and the loop goes on retrying its real work.
        try:
            await _report(account, state, error, synced)
        except Exception as exc:  # noqa: BLE001
            log.warning("status_report_failed", account_id=account.account_id, state=state.value, error=repr(exc))

    async def _report(account: AccountConfigured, state: SyncState, error: str | None, synced: int | None) -> None:
        await accounts.set_status(account.account_id, state, error, synced)
        if last_state.get(account.account_id) != state:
            now = utcnow()
            await bus.publish(broker, settings.topic(Topic.ACCOUNT_STATUS), AccountStatusChanged(
                event_id=deterministic_id("status", account.account_id, state.value, now.isoformat()),
                occurred_at=now, account_id=account.account_id, state=state, error=error,
                messages_synced=synced or 0, updated_at=now), key=account.account_id)
            if account.account_id in last_state:
                ACCOUNTS.labels(last_state[account.account_id].value).dec()
            ACCOUNTS.labels(state.value).inc()
            last_state[account.account_id] = state

    deps = SyncDeps(states=states, delivery=Delivery(blobs, publish_received, locations=locations, emit=emit,
                                                             dead_letter=dead_letter), cipher=cipher, report=report,
                    poll_interval_s=settings.poll_interval_s, batch_size=settings.batch_size,
                    ca_file=settings.imap_ca_file)
    manager = SyncManager(functools.partial(_run, deps=deps))
    assignments = AccountAssignments(client_options(settings), settings.topic(Topic.ACCOUNT),
                                     service.group_id, manager, accounts, broker)

    async def publish_account(account: AccountConfigured) -> None:
        await bus.publish(broker, settings.topic(Topic.ACCOUNT), account, key=account.account_id)

    return service.app(
        topics=[Topic.ACCOUNT, Topic.ACCOUNT_STATUS, Topic.MESSAGE_RECEIVED, Topic.MESSAGE_CHANGED,
                Topic.MESSAGE_EXPUNGED, Topic.FOLDER_RECONCILED],
        on_start=[states.ensure_indexes, locations.ensure_indexes, assignments.start],
        on_stop=[assignments.stop, manager.stop_all],
        routers=[accounts_router(accounts, states, blobs, cipher, publish_account, link_secrets)],
    )


async def _run(account, stop, deps):
    await run_account(account, deps, stop)
