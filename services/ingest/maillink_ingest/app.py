"""Wires ingest together: the one place that knows every dependency."""
import functools

import structlog

from fastapi import FastAPI

from maillink_runtime import bus
from maillink_runtime.kafka_conn import client_options
from maillink_runtime.service import Service
from maillink_schemas.accounts import AccountConfigured
from maillink_schemas.topics import Topic

from .adapters.accounts import AccountStore
from maillink_runtime.blobs.store import open_blob_store
from .adapters.crypto import CredentialsCipher
from .adapters.folder_state import FolderStateStore
from .adapters.legacy_blobs import LegacyBlobs
from .entrypoints.assignments import AccountAssignments
from .entrypoints.http import AccountPublisher, accounts_router
from .settings import IngestSettings
from .sync.account_sync import SyncDeps, run_account
from .sync.delivery import Delivery
from .sync.manager import SyncManager
from .sync.status import StatusReporter

log = structlog.get_logger()


def create_app(settings: IngestSettings) -> FastAPI:
    service = Service("ingest", settings)
    broker, db = service.broker, service.db
    blobs = open_blob_store(settings.blob_store_url(), owner=f"{settings.namespace}ingest", legacy=LegacyBlobs(db),
                            endpoint=settings.aws_endpoint_url, region=settings.aws_region,
                            allow_http=settings.aws_allow_http)
    states, accounts = FolderStateStore(db), AccountStore(db)
    cipher = CredentialsCipher(settings.credentials_key)
    link_secrets = service.auth.link_secrets()
    if not link_secrets:
        raise ValueError("MAILLINK_LINK_KEYS must be set: raw messages are served through links the query API "
                         "signs with it.")
    received_topic = settings.topic(Topic.MESSAGE_RECEIVED)

    async def publish_received(events):
        await bus.publish_many(broker, received_topic, events)

    status_topic = settings.topic(Topic.ACCOUNT_STATUS)

    async def publish_status(event) -> None:
        await bus.publish(broker, status_topic, event, key=event.account_id)

    report = StatusReporter(accounts, publish_status)
    deps = SyncDeps(states=states, delivery=Delivery(blobs, publish_received), cipher=cipher, report=report,
                    refusals=accounts, poll_interval_s=settings.poll_interval_s, batch_size=settings.batch_size,
                    ca_file=settings.imap_ca_file, idle_folders_max=settings.idle_folders_max,
                    relist_interval_s=settings.relist_interval_s)
    manager = SyncManager(functools.partial(_run, deps=deps), on_stopped=report.forget)

    async def forget(account_id: str) -> None:
        report.forget(account_id)
        await states.delete_account(account_id)
        await accounts.forget(account_id)

    assignments = AccountAssignments(client_options(settings), settings.topic(Topic.ACCOUNT),
                                     service.group_id, manager, accounts, broker, forget)

    async def publish_account(account: AccountConfigured) -> None:
        await bus.publish(broker, settings.topic(Topic.ACCOUNT), account, key=account.account_id)


    return service.app(
        topics=[Topic.ACCOUNT, Topic.ACCOUNT_STATUS, Topic.MESSAGE_RECEIVED],
        on_start=[states.ensure_indexes, assignments.start],
        on_stop=[assignments.stop, manager.stop_all],
        routers=[accounts_router(accounts, states, blobs, cipher, AccountPublisher(publish_account, assignments.publish_tombstone),
                                 link_secrets)],
    )


async def _run(account, stop, deps):
    await run_account(account, deps, stop)
