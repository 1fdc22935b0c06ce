"""Production connections on the real broker. The local Kafka's SASL_SSL listener (SCRAM-SHA-512 over
TLS with a private CA) looks to our clients like a production cluster does: a service connects through
it with nothing but environment variables, and a wrong password or an untrusted certificate is refused."""
import asyncio
import logging
import time
import uuid
from datetime import datetime, timezone

import httpx
import pytest
from aiokafka import AIOKafkaConsumer
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
from aiokafka.errors import KafkaConnectionError
from cryptography.fernet import Fernet

from maillink_devtools.processes import ServiceSet
from maillink_ingest.adapters.crypto import CredentialsCipher
from maillink_runtime import bus, mongo
from maillink_runtime.kafka_conn import client_options, kafka_security
from maillink_runtime.settings import KafkaSettings
from maillink_schemas.accounts import AccountConfigured, AccountStatusChanged, ImapEndpoint, Security
from tests.conftest import MONGODB_URL, RUN_DIR, bearer

pytestmark = pytest.mark.integration


def _port() -> int:
    return 20000 + uuid.uuid4().int % 900 * 10  # a port of its own, so a running `make run` is no obstacle


async def _first_status(settings: KafkaSettings, topic: str, account_id: str,
                        timeout: float = 60) -> AccountStatusChanged:
    consumer = AIOKafkaConsumer(topic, **client_options(settings), group_id=None, auto_offset_reset="earliest")
    await consumer.start()
    try:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for records in (await consumer.getmany(timeout_ms=500)).values():
                for record in records:
                    status = AccountStatusChanged.model_validate_json(record.value)
                    if status.account_id == account_id:
                        return status
        raise AssertionError(f"no status for {account_id} on {topic} within {timeout}s")
    finally:
        await consumer.stop()


DYNAMIC_TOPIC_CONFIG = 1  # DescribeConfigs' config_source for a value set on the topic itself


async def _topic_layout(settings: KafkaSettings, topic: str) -> tuple[int, str, int]:
    """Partitions, and min.insync.replicas with where its value comes from."""
    admin = AIOKafkaAdminClient(**client_options(settings))
    await admin.start()
    try:
        (described,) = await admin.describe_topics([topic])
        (configs,) = await admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, topic)])
        name, value, _, source, *_ = next(c for c in configs.resources[0][4] if c[0] == "min.insync.replicas")
        return len(described["partitions"]), value, source
    finally:
        await admin.close()


def _exit(procs: ServiceSet, name: str, timeout: float = 90) -> tuple[int, str]:
    svc = procs.running[name]
    return svc.process.wait(timeout), svc.log_path.read_text()


async def test_a_service_connects_through_sasl_ssl_and_events_flow_both_ways(kafka_sasl_env, namespace, auth_env, token):
    key = Fernet.generate_key().decode()
    env = {**auth_env, **kafka_sasl_env, "MAILLINK_NAMESPACE": namespace, "MONGODB_URL": MONGODB_URL,
           "MAILLINK_CREDENTIALS_KEY": key, "MAILLINK_TOPIC_PARTITIONS": "3"}
    settings = KafkaSettings(**kafka_sasl_env)
    procs = ServiceSet()
    # ingest makes all three kinds of client: the admin client (topics), FastStream's broker and its
    # own aiokafka consumer of the account topic. Each has to get through SASL_SSL for it to start.
    ingest = procs.start("ingest", _port(), env, RUN_DIR / "e2e-logs" / namespace)
    broker = bus.make_broker(settings.kafka_bootstrap_servers, "test", kafka_security(settings))
    try:
        procs.wait_healthy(90)
        health = httpx.get(f"{ingest.url}/healthz", timeout=10).json()
        assert health["checks"]["kafka"] == "ok"  # the health check itself went through SASL_SSL

        # Created with the configured layout (partitions overridden, the local profile's min.insync.replicas).
        assert await _topic_layout(settings, f"{namespace}mail.account.v1") == (3, "1", DYNAMIC_TOPIC_CONFIG)

        # Round trip: we publish an account over SASL_SSL, ingest's consumer receives it, and the status
        # ingest publishes about it comes back to our consumer over SASL_SSL. (Its IMAP server is a closed
        # port: the account never syncs, but "connecting" is reported first.)
        account = AccountConfigured(
            event_id="e1", occurred_at=datetime.now(timezone.utc), account_id=f"acc-{uuid.uuid4().hex[:8]}",
            user_id="u1", email="sasl@example.com",
            imap=ImapEndpoint(host="127.0.0.1", port=1, security=Security.PLAIN),
            username="sasl@example.com", secret_ciphertext=CredentialsCipher(key).encrypt("x"))
        await broker.start()
        await bus.publish(broker, f"{namespace}mail.account.v1", account, key=account.account_id)
        status = await _first_status(settings, f"{namespace}mail.account.status.v1", account.account_id)
        assert status.state == "connecting"
        assert httpx.get(f"{ingest.url}/accounts/{account.account_id}", timeout=10,
                         headers=bearer(token("u1", "accounts:read"))).status_code == 200
    finally:
        await broker.stop()
        procs.stop()
        client = mongo.connect(MONGODB_URL)
        await client.drop_database(f"{namespace.replace('.', '_')}maillink_ingest")
        await client.close()


def test_a_wrong_password_is_refused_and_the_service_says_so(kafka_sasl_env, namespace, auth_env):
    procs = ServiceSet()
    env = {**auth_env, **kafka_sasl_env, "KAFKA_SASL_PASSWORD": "not-the-password", "MAILLINK_NAMESPACE": namespace,
           "MONGODB_URL": MONGODB_URL}
    procs.start("tracker", _port(), env, RUN_DIR / "e2e-logs" / namespace)
    try:
        code, log = _exit(procs, "tracker")  # it gives up starting rather than run without Kafka
    finally:
        procs.stop()
    assert code != 0
    assert "invalid credentials with SASL mechanism SCRAM-SHA-512" in log
    assert "not-the-password" not in log


async def test_a_client_that_does_not_trust_the_ca_is_refused(kafka_sasl_env, caplog):
    # No KAFKA_SSL_CA_FILE: the system CAs, which never signed the local broker's certificate.
    untrusting = KafkaSettings(**{k: v for k, v in kafka_sasl_env.items() if k != "KAFKA_SSL_CA_FILE"})
    broker = bus.make_broker(untrusting.kafka_bootstrap_servers, "test", kafka_security(untrusting))
    caplog.set_level(logging.ERROR, logger="aiokafka")
    try:
        with pytest.raises(KafkaConnectionError):
            await asyncio.wait_for(broker.start(), 60)
    finally:
        await broker.stop()
    assert "CERTIFICATE_VERIFY_FAILED" in caplog.text
    # The SCRAM exchange never started: TLS failed first, so no password went to an unverified server.
    assert "SaslAuthenticationFailed" not in caplog.text
