"""Wires bcc-gateway together: the one place that knows every dependency."""
from fastapi import FastAPI

from maillink_runtime import bus
from maillink_runtime.blobs import open_blob_store
from maillink_runtime.blobs.download import blobs_router
from maillink_runtime.kafka_batches import BatchProducer
from maillink_runtime.service import Service
from maillink_schemas.crm import UserUpserted
from maillink_schemas.topics import Topic

from .adapters.addresses import AddressStore
from .adapters.auth_checks import AuthChecker
from .adapters.directory import Directory
from .adapters.users import UserStore
from .addressbook import AddressBookDeps
from .commit import GroupCommit
from .entrypoints.http import addresses_router
from .entrypoints.smtp import GatewayHandler, serve_smtp
from .entrypoints.users import users_handler
from .intake import IntakeDeps
from .settings import Settings
from .tls import tls_context


def create_app(settings: Settings) -> FastAPI:
    service = Service("bcc-gateway", settings)
    broker, db = service.broker, service.db
    link_secrets = service.auth.link_secrets()
    if not link_secrets:
        raise ValueError("MAILLINK_LINK_KEYS must be set: the address confirmation links are signed with it.")
    users, addresses = UserStore(db), AddressStore(db)
    directory = Directory(users, addresses, settings.directory_refresh_s)
    # The shared claim-check store (local files or S3, MAILLINK_BLOB_URL), under the gateway's own prefix.
    blobs = open_blob_store(settings.blob_store_url(), owner=f"{settings.namespace}bcc-gateway",
                            endpoint=settings.aws_endpoint_url, region=settings.aws_region,
                            allow_http=settings.aws_allow_http)
    received_topic = settings.topic(Topic.MESSAGE_RECEIVED)

    # Received events go through aiokafka directly, in whole batches (kafka_batches: FastStream's
    # publish cost 0.1-0.2 ms of CPU per event in make bench-bcc); the rest is rare and keeps FastStream.
    producer = BatchProducer(settings, "maillink-bcc-gateway-received")

    async def publish_received(events) -> None:  # domain.received.Received: key and JSON already written
        await producer.publish_many(received_topic, [(e.kafka_key, e.payload) for e in events])

    async def send(command) -> None:
        await bus.publish(broker, settings.topic(Topic.SEND_REQUESTED), command, key=command.account_id)

    async def publish_verified(event) -> None:
        await bus.publish(broker, settings.topic(Topic.USER_ADDRESSES), event, key=event.user_id)

    checker = AuthChecker(settings.dns_host, settings.dns_port, settings.dns_timeout_s) \
        if settings.check_authentication else None
    handler = GatewayHandler(IntakeDeps(directory, GroupCommit(blobs, publish_received).commit, checker),
                             settings.domain)
    book = AddressBookDeps(addresses, directory, send, publish_verified, link_secrets, settings.public_url,
                           settings.link_ttl_s, settings.system_account_id)
    bus.subscribe(broker, settings.topic(Topic.CRM_USERS), service.group_id, UserUpserted,
                  users_handler(users, directory), retries=settings.handler_retries)
    smtp = {}

    async def start_smtp() -> None:
        smtp["server"] = await serve_smtp(handler, settings.smtp_host, settings.smtp_port, settings.hostname,
                                          settings.max_message_bytes, tls_context(settings))

    async def stop_smtp() -> None:
        if "server" in smtp:
            smtp["server"].close()
            await smtp["server"].wait_closed()

    return service.app(
        topics=[Topic.CRM_USERS, Topic.MESSAGE_RECEIVED, Topic.SEND_REQUESTED, Topic.USER_ADDRESSES],
        on_start=[addresses.ensure_indexes, directory.start, producer.start, start_smtp],
        on_stop=[stop_smtp, producer.stop, directory.stop],
        routers=[addresses_router(book, users, settings.domain), blobs_router(blobs, link_secrets)],
    )
