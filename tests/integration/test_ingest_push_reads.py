"""A quiet folder's pass and a push (one new message) read the store only by `_id`, against the real
Dovecot, store and broker. FerretDB v1 scans a whole collection for any other filter (250 ms per
2,000 folder states), which made 1,000 accounts start at 1-2 a second (make bench-idle)."""
import pytest
from pymongo import monitoring

from maillink_devtools.imap_load import append
from maillink_ingest.adapters.locations import LocationStore
from maillink_ingest.sync.delivery import Delivery
from maillink_runtime import bus, mongo
from maillink_runtime.blobs.store import open_blob_store
from maillink_schemas.mail import MessageReceived
from tests.conftest import IMAP_HOST, IMAP_PORT, KAFKA, MONGODB_URL
from tests.integration.test_ingest_folder_states import events
from tests.integration.test_ingest_sync import account, mails, sync_once

pytestmark = pytest.mark.integration


class Reads(monitoring.CommandListener):
    """The filters of the finds the client sends (with the collection)."""

    def __init__(self) -> None:
        self.finds: list[tuple[str, dict]] = []

    def started(self, event) -> None:
        if event.command_name == "find":
            self.finds.append((event.command["find"], dict(event.command.get("filter", {}))))

    def succeeded(self, event) -> None: ...

    def failed(self, event) -> None: ...


async def test_a_quiet_pass_and_a_push_read_the_store_only_by_id(namespace, mailbox, tmp_path):
    reads = Reads()
    client = mongo.connect(MONGODB_URL, event_listeners=[reads])
    db = client[f"{namespace.strip('.')}_ingest"]
    broker = bus.make_broker(KAFKA, "test")
    await broker.start()
    topic = f"{namespace}mail.message.received.v1"

    async def publish(batch):
        await bus.publish_many(broker, topic, [(o.key, o.event) for o in batch])

    async def emit(to, batch):
        await bus.publish_many(broker, f"{namespace}{to}", batch)

    delivery = Delivery(open_blob_store(tmp_path.as_uri()), publish, locations=LocationStore(db), emit=emit)
    try:
        email, password = mailbox
        append(IMAP_HOST, IMAP_PORT, email, password, "INBOX", mails(3, "m"))
        acc = account(email, password)
        await sync_once(acc, db, delivery)  # the first sync: initial, then incremental
        reads.finds.clear()
        await sync_once(acc, db, delivery)  # a quiet pass
        append(IMAP_HOST, IMAP_PORT, email, password, "INBOX", mails(1, "new"))
        state = await sync_once(acc, db, delivery)  # what a push runs
        assert state.top_uid == 4 and len(await events(topic, MessageReceived, 4)) == 4
        assert reads.finds and all(set(query) == {"_id"} for _, query in reads.finds), reads.finds
    finally:
        await broker.stop()
        await client.drop_database(db.name)
        await client.close()
