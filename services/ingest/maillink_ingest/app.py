"""Wires ingest together: the one place that knows every dependency."""
import asyncio
import functools

import structlog

from fastapi import FastAPI

from maillink_runtime import bus, redact
from maillink_runtime.kafka_batches import BatchProducer
from maillink_runtime.kafka_conn import client_options
from maillink_runtime.service import Service
from maillink_schemas.accounts import AccountConfigured
from maillink_schemas.providers import preset
from maillink_schemas.topics import Topic

from .adapters.accounts import AccountStore
from maillink_runtime.blobs.store import open_blob_store
from .adapters.crypto import CredentialsCipher
from .adapters.folder_state import FolderStateStore
from .adapters.legacy_blobs import LegacyBlobs
from .adapters.command_log import CommandLog
from .adapters.locations import LocationStore
from .adapters.received_publisher import ReceivedPublisher
from .adapters.sync_back import SyncBackSettings
from .entrypoints.commands import subscribe_sync_back
from .entrypoints.assignments import AccountAssignments
from .entrypoints.http import AccountPublisher, accounts_router
from .imap.connection import open_session
from .settings import IngestSettings
from .sync.account_sync import SyncDeps, run_account
from .sync.commands import CommandDeps
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
    states, accounts, locations = FolderStateStore(db), AccountStore(db), LocationStore(db)
    cipher = CredentialsCipher(settings.credentials_key)
    link_secrets = service.auth.link_secrets()
    if not link_secrets:
        raise ValueError("MAILLINK_LINK_KEYS must be set: raw messages are served through links the query API "
                         "signs with it.")
    received_topic = settings.topic(Topic.MESSAGE_RECEIVED)

    # Received events in whole aiokafka batches (adapters/received_publisher.py); the rest keeps FastStream.
    producer = BatchProducer(settings, "maillink-ingest-received")
    publish_received = ReceivedPublisher(producer, received_topic)

    async def emit(topic, events):  # changed, expunged, reconciled (sync/delivery.py)
        await bus.publish_many(broker, settings.topic(topic), events)

    async def dead_letter(key, payload, reason, error, offset):  # poison messages, with their raw reference
        await bus.dead_letter(broker, received_topic, "ingest", -1, offset, key.encode(), payload, reason, error, 1)

    status_topic = settings.topic(Topic.ACCOUNT_STATUS)

    async def publish_status(event) -> None:
        await bus.publish(broker, status_topic, event, key=event.account_id)

    report = StatusReporter(accounts, publish_status)
    deps = SyncDeps(states=states, delivery=Delivery(blobs, publish_received, locations=locations, emit=emit,
                                                                 dead_letter=dead_letter), cipher=cipher, report=report,
                    refusals=accounts, **sync_options(settings))
    manager = SyncManager(functools.partial(_run, deps=deps), on_stopped=report.forget)

    async def forget(account_id: str) -> None:
        report.forget(account_id)
        await states.delete_account(account_id)
        await locations.delete_account(account_id)
        await accounts.forget(account_id)

    assignments = AccountAssignments(client_options(settings), settings.topic(Topic.ACCOUNT),
                                     service.group_id, manager, accounts, broker, forget)

    # Sync-back (sync/commands.py): its own short IMAP session per command, same TLS rules as sync.
    subscribe_sync_back(broker, settings.topic, service.group_id, CommandDeps(
        accounts, SyncBackSettings(db), locations, CommandLog(db), functools.partial(connect, deps=deps)))

    async def publish_account(account: AccountConfigured) -> None:
        await bus.publish(broker, settings.topic(Topic.ACCOUNT), account, key=account.account_id)


    return service.app(
        topics=[Topic.ACCOUNT, Topic.ACCOUNT_STATUS, Topic.MESSAGE_RECEIVED, Topic.MESSAGE_CHANGED,
                Topic.MESSAGE_EXPUNGED, Topic.FOLDER_RECONCILED, Topic.SETTINGS, Topic.MAILBOX_COMMAND,
                Topic.MAILBOX_COMMAND_COMPLETED],
        on_start=[states.ensure_indexes, states.build_index, locations.ensure_indexes, producer.start, assignments.start],
        on_stop=[assignments.stop, manager.stop_all, producer.stop],
        routers=[accounts_router(accounts, states, blobs, cipher, AccountPublisher(publish_account, assignments.publish_tombstone),
                                 link_secrets)],
    )


def sync_options(settings: IngestSettings) -> dict:
    """The settings that tune the sync loops (SyncDeps fields)."""
    return {"poll_interval_s": settings.poll_interval_s, "batch_size": settings.batch_size,
            "fetch_group_bytes": settings.fetch_group_bytes,
            "ca_file": settings.imap_ca_file, "idle_folders_max": settings.idle_folders_max,
            "full_passes": asyncio.Semaphore(settings.full_passes_max),
            "connects": asyncio.Semaphore(settings.connects_max),
            "relist_interval_s": settings.relist_interval_s, "reconcile_interval_s": settings.reconcile_interval_s,
            "use_qresync": settings.use_qresync}


async def _run(account, stop, deps):
    await run_account(account, deps, stop)


async def connect(account: AccountConfigured, deps: SyncDeps):
    secret = deps.cipher.decrypt(account.secret_ciphertext)
    redact.register_secret(secret)  # from here on, no log line of this process can show it
    return await open_session(account.imap, account.username, secret,
                              ca_file=deps.ca_file, auth=account.auth, ca_pem=account.ca_pem,
                              identify=preset(account.provider).imap_id_required)
