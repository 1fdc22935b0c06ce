"""The status reporter on the real store and broker: stored for the API, published on
mail.account.status.v1 only when it changes, and counted per state and per problem."""
from datetime import datetime, timezone

import pytest
from prometheus_client import REGISTRY

from maillink_devtools.kafka_tools import read_topic
from maillink_ingest.adapters.accounts import AccountStore
from maillink_ingest.sync.status import Health, StatusReporter
from maillink_runtime import bus
from maillink_schemas.accounts import (AccountConfigured, AccountStatusChanged, FolderProblem, ImapEndpoint,
                                       StatusReason, SyncState)
from tests.conftest import KAFKA

pytestmark = pytest.mark.integration


def gauge(name: str, **labels) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


async def test_status_is_stored_published_on_change_and_counted(namespace, ingest_db):
    topic = f"{namespace}mail.account.status.v1"
    broker = bus.make_broker(KAFKA, "test")
    await broker.start()
    account = AccountConfigured(event_id="e", occurred_at=datetime.now(timezone.utc), account_id=f"{namespace}a1",
                                user_id="u", email="a@example.com", imap=ImapEndpoint(host="h", port=993),
                                username="a", secret_ciphertext="x")

    async def publish(event):
        await bus.publish(broker, topic, event, key=event.account_id)

    store = AccountStore(ingest_db)
    reporter = StatusReporter(store, publish)
    throttled_before = gauge("maillink_ingest_account_problems", reason="throttled")
    vanished_before = gauge("maillink_ingest_account_problems", reason="folder_vanished")
    try:
        await reporter(account, Health(SyncState.CONNECTING))
        await reporter(account, Health(SyncState.ERROR, StatusReason.THROTTLED, "The provider is limiting …"))
        await reporter(account, Health(SyncState.ERROR, StatusReason.THROTTLED, "The provider is limiting …"))
        assert gauge("maillink_ingest_account_problems", reason="throttled") == throttled_before + 1
        problem = FolderProblem(folder="Projects", reason=StatusReason.FOLDER_VANISHED, error="gone")
        await reporter(account, Health(SyncState.SYNCED, synced=3, folder_problems=(problem,)))
        assert gauge("maillink_ingest_account_problems", reason="throttled") == throttled_before
        assert gauge("maillink_ingest_account_problems", reason="folder_vanished") == vanished_before + 1
        events = [AccountStatusChanged.model_validate_json(r.value) for r in await read_topic(KAFKA, topic, expect=3)]
        assert [(e.state, e.reason) for e in events] == [(SyncState.CONNECTING, None),
                                                         (SyncState.ERROR, StatusReason.THROTTLED),
                                                         (SyncState.SYNCED, None)]  # the repeat was not published
        assert events[-1].folder_problems == [problem] and events[-1].messages_synced == 3
        stored = await store.status(account.account_id)
        assert stored["state"] == "synced" and stored["folder_problems"][0]["folder"] == "Projects"
        reporter.forget(account.account_id)  # the loop stopped here (moved, paused or removed)
        assert gauge("maillink_ingest_account_problems", reason="folder_vanished") == vanished_before
    finally:
        await broker.stop()
