"""Shared fixtures. Integration and e2e tests use the real servers that `make test` starts
(Kafka, the document store, Dovecot); addresses come from the same variables the services read."""
import os
import subprocess
import uuid
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
KAFKA = os.environ.get("KAFKA_BOOTSTRAP_SERVERS", f"127.0.0.1:{os.environ.get('KAFKA_PORT', '9092')}")
MONGODB_URL = os.environ.get("MONGODB_URL", f"mongodb://127.0.0.1:{os.environ.get('MONGO_PORT', '27017')}/")
IMAP_HOST = "127.0.0.1"
IMAP_PORT = int(os.environ.get("IMAP_PORT", "10143"))
IMAPS_PORT = int(os.environ.get("IMAPS_PORT", "10993"))
RUN_DIR = Path(os.environ.get("MAILLINK_RUN_DIR", ROOT / ".run"))


@pytest.fixture
def namespace() -> str:
    """A fresh prefix for topics and databases, so tests never see each other's data."""
    return f"t{uuid.uuid4().hex[:10]}."


def make_mailbox_user() -> tuple[str, str]:
    email, password = f"u{uuid.uuid4().hex[:10]}@example.com", uuid.uuid4().hex
    subprocess.run(["bash", str(ROOT / "deploy/local/dovecot.sh"), "adduser", email, password], check=True)
    return email, password


@pytest.fixture
def mailbox() -> tuple[str, str]:
    return make_mailbox_user()
