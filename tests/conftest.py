"""Shared fixtures. Integration and e2e tests use the real servers that `make test` starts
(Kafka, the document store, Dovecot); addresses come from the same variables the services read."""
import os
import subprocess
import uuid
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


@pytest.fixture(scope="session")
def auth_dir(tmp_path_factory) -> Path:
    """A key set of the tests' own; services read its public half through MAILLINK_JWKS_FILE."""
    directory = tmp_path_factory.mktemp("auth")
    tokens.init_keys(directory)
    return directory


LINK_KEYS = "test-link-key-" + uuid.uuid4().hex


@pytest.fixture(scope="session")
def auth_env(auth_dir) -> dict[str, str]:
    return {"MAILLINK_JWKS_FILE": str(auth_dir / "jwks.json"), "MAILLINK_LINK_KEYS": LINK_KEYS}


@pytest.fixture(scope="session")
def token(auth_dir):
    """token(user, *scopes, company=..., **mint options) -> a signed bearer token."""
    def make(user: str | None, *scopes: str, company: str | None = "c-test", **options) -> str:
        return tokens.mint(auth_dir, subject=options.pop("subject", user or "test-service"), user_id=user,
                           company_id=company, scopes=list(scopes), **options)
    return make


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}
