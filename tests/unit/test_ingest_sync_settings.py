"""ingest's reconciliation interval and QRESYNC switch are settings, and they reach FolderSync."""
import asyncio
from datetime import datetime, timezone

from cryptography.fernet import Fernet

from maillink_ingest.app import sync_options
from maillink_ingest.settings import IngestSettings
from maillink_ingest.sync.account_sync import SyncDeps
from maillink_ingest.sync.session import AccountSession
from maillink_schemas.accounts import AccountConfigured, ImapEndpoint, Security


def session_with(settings: IngestSettings) -> AccountSession:
    deps = SyncDeps(states=None, delivery=None, cipher=None, report=None, refusals=None, **sync_options(settings))
    account = AccountConfigured(event_id="e", occurred_at=datetime.now(timezone.utc), account_id="a", user_id="u",
                                email="a@example.com", imap=ImapEndpoint(host="127.0.0.1", port=143,
                                                                         security=Security.PLAIN),
                                username="a", secret_ciphertext="x")
    return AccountSession(account, deps, asyncio.Event(), None, lambda: None, "secret")


def test_defaults_are_six_hours_and_qresync_on(monkeypatch):
    monkeypatch.setenv("MAILLINK_CREDENTIALS_KEY", Fernet.generate_key().decode())
    sync = session_with(IngestSettings()).folder_sync(client=None)
    assert sync.reconcile_interval_s == 21600 and sync.use_qresync is True


def test_environment_reaches_folder_sync(monkeypatch):
    monkeypatch.setenv("MAILLINK_CREDENTIALS_KEY", Fernet.generate_key().decode())
    monkeypatch.setenv("INGEST_RECONCILE_INTERVAL_S", "90")
    monkeypatch.setenv("INGEST_USE_QRESYNC", "false")
    monkeypatch.setenv("INGEST_BATCH_SIZE", "17")
    monkeypatch.setenv("INGEST_FETCH_GROUP_BYTES", "100000")
    sync = session_with(IngestSettings()).folder_sync(client=None)
    assert (sync.reconcile_interval_s, sync.use_qresync, sync.batch_size, sync.max_batch_bytes) == (90, False, 17, 100000)


def test_full_passes_are_bounded_by_one_semaphore_shared_by_every_account(monkeypatch):
    monkeypatch.setenv("MAILLINK_CREDENTIALS_KEY", Fernet.generate_key().decode())
    monkeypatch.setenv("INGEST_FULL_PASSES_MAX", "3")
    options = sync_options(IngestSettings())
    slots = options["full_passes"]
    assert isinstance(slots, asyncio.Semaphore) and slots._value == 3


def test_connection_opening_is_bounded_by_one_semaphore_shared_by_every_account(monkeypatch):
    monkeypatch.setenv("MAILLINK_CREDENTIALS_KEY", Fernet.generate_key().decode())
    monkeypatch.setenv("INGEST_CONNECTS_MAX", "7")
    options = sync_options(IngestSettings())
    slots = options["connects"]
    assert isinstance(slots, asyncio.Semaphore) and slots._value == 7
    assert session_with(IngestSettings()).deps.connects is not None
