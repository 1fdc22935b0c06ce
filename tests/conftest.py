"""Shared fixtures. Integration and e2e tests use the real servers that `make test` starts
(Kafka, the document store, Dovecot); addresses come from the same variables the services read."""
import os
import socket
import subprocess
import uuid
from contextlib import asynccontextmanager
from pathlib import Path

import pytest

from maillink_devtools import tokens

ROOT = Path(__file__).resolve().parents[1]
KAFKA = os.environ.get("KAFKA_BOOTSTRAP_SERVERS", f"127.0.0.1:{os.environ.get('KAFKA_PORT', '9092')}")
MONGODB_URL = os.environ.get("MONGODB_URL", f"mongodb://127.0.0.1:{os.environ.get('MONGO_PORT', '27017')}/")
IMAP_HOST = "127.0.0.1"
IMAP_PORT = int(os.environ.get("IMAP_PORT", "10143"))
IMAPS_PORT = int(os.environ.get("IMAPS_PORT", "10993"))
RUN_DIR = Path(os.environ.get("MAILLINK_RUN_DIR", ROOT / ".run"))
# Topics the tests' services create get 3 partitions, not the local profile's 6: hundreds of test
# namespaces on one broker add up (at ~15,000 partitions the local broker stalled in GC).
os.environ.setdefault("MAILLINK_TOPIC_PARTITIONS", "3")


@pytest.fixture
async def namespace():
    """A fresh prefix for topics and databases, so tests never see each other's data; both are
    removed afterwards, so a long test run does not pile up thousands of partitions."""
    prefix = f"t{uuid.uuid4().hex[:10]}."
    yield prefix
    await drop_namespace(prefix)


async def drop_namespace(prefix: str) -> None:
    from maillink_devtools.kafka_tools import NAMESPACE_DATABASES, drop_namespace as drop
    try:
        await drop(KAFKA, MONGODB_URL, prefix, NAMESPACE_DATABASES)
    except Exception as exc:  # noqa: BLE001 - clean-up is best effort; a test's verdict is already in
        print(f"namespace clean-up of {prefix} failed: {exc!r}")




@asynccontextmanager
async def service_db(namespace: str, service: str):
    """The database `service` (e.g. "maillink_ingest") uses under the test's namespace, dropped afterwards."""
    from maillink_runtime import mongo
    client = mongo.connect(MONGODB_URL)
    database = client[f"{namespace.replace('.', '_')}{service}"]
    try:
        yield database
    finally:
        await client.drop_database(database.name)
        await client.close()


def make_mailbox_user() -> tuple[str, str]:
    email, password = f"u{uuid.uuid4().hex[:10]}@example.com", uuid.uuid4().hex
    subprocess.run(["bash", str(ROOT / "deploy/local/dovecot.sh"), "adduser", email, password], check=True)
    return email, password


@pytest.fixture
def mailbox() -> tuple[str, str]:
    return make_mailbox_user()


@pytest.fixture(scope="session")
def auth_dir(tmp_path_factory) -> Path:
    """A key set of the tests' own; services read its public half through MAILLINK_JWKS_FILE."""
    directory = tmp_path_factory.mktemp("auth")
    tokens.init_keys(directory)
    return directory


LINK_KEYS = "test-link-key-" + uuid.uuid4().hex
# The tracker's token keys (kid:YYYY-MM-DD:secret), shared with outbound.
TRACKING_KEYS = "1:2020-01-01:test-tracking-key-" + uuid.uuid4().hex


@pytest.fixture(scope="session")
def auth_env(auth_dir) -> dict[str, str]:
    return {"MAILLINK_JWKS_FILE": str(auth_dir / "jwks.json"), "MAILLINK_LINK_KEYS": LINK_KEYS,
            "MAILLINK_TRACKING_KEYS": TRACKING_KEYS}


@pytest.fixture(scope="session")
def token(auth_dir):
    """token(user, *scopes, company=..., **mint options) -> a signed bearer token."""
    def make(user: str | None, *scopes: str, company: str | None = "c-test", **options) -> str:
        return tokens.mint(auth_dir, subject=options.pop("subject", user or "test-service"), user_id=user,
                           company_id=company, scopes=list(scopes), **options)
    return make


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


# The local broker's SASL_SSL listener (deploy/local/kafka.sh): SCRAM-SHA-512 user `maillink` over TLS
# with a private CA. Test-only variable names, so a service started by a test never inherits them.
KAFKA_SASL = f"127.0.0.1:{os.environ.get('KAFKA_SASL_PORT', '9094')}"
KAFKA_SASL_CA = Path(os.environ.get("MAILLINK_TEST_KAFKA_CA", RUN_DIR / "kafka/tls/ca.pem"))
KAFKA_SASL_PASSWORD_FILE = Path(os.environ.get("MAILLINK_TEST_KAFKA_PASSWORD_FILE",
                                               RUN_DIR / "kafka/sasl/maillink.password"))


@pytest.fixture
def kafka_sasl_env() -> dict[str, str]:
    """The variables a service needs to reach the local broker over SASL_SSL as `maillink`."""
    missing = [str(p) for p in (KAFKA_SASL_CA, KAFKA_SASL_PASSWORD_FILE) if not p.is_file()]
    host, port = KAFKA_SASL.split(":")
    try:
        socket.create_connection((host, int(port)), timeout=3).close()
    except OSError:
        missing.append(f"a listener on {KAFKA_SASL}")
    if missing:
        pytest.fail(f"missing {', '.join(missing)}: deploy/local/kafka.sh start makes them (restart a broker "
                    "started by an older kafka.sh to get its SASL_SSL listener)")
    return {"KAFKA_BOOTSTRAP_SERVERS": KAFKA_SASL, "KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
            "KAFKA_SASL_MECHANISM": "SCRAM-SHA-512", "KAFKA_SASL_USERNAME": "maillink",
            "KAFKA_SASL_PASSWORD": KAFKA_SASL_PASSWORD_FILE.read_text().strip(),
            "KAFKA_SSL_CA_FILE": str(KAFKA_SASL_CA)}


def promtool_check_metrics(text: str) -> str:
    """Prometheus' own linter over a /metrics page; returns its complaints ('' when clean)."""
    done = subprocess.run(["promtool", "check", "metrics"], input=text, capture_output=True, text=True)
    return "" if done.returncode == 0 else (done.stdout + done.stderr)
