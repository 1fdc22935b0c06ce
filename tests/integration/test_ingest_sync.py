"""Folder sync against the real Dovecot, store and broker."""
import imaplib
import time
from datetime import datetime, timedelta, timezone

import pytest
from cryptography.fernet import Fernet

from maillink_devtools.imap_load import append
from maillink_devtools.mailgen import Mail
from maillink_runtime.blobs.store import open_blob_store
from maillink_ingest.adapters.crypto import CredentialsCipher
from maillink_ingest.adapters.folder_state import FolderStateStore
from maillink_ingest.adapters.locations import LocationStore
from maillink_ingest.domain.folders import FolderPlan
from maillink_ingest.imap.connection import close_session, open_session
from maillink_ingest.sync.delivery import Delivery
from maillink_ingest.sync.folder_sync import FolderSync
from maillink_runtime import bus, mongo
from maillink_schemas.accounts import AccountConfigured, ImapEndpoint, Security
from maillink_schemas.mail import MessageReceived
from tests.conftest import IMAP_HOST, IMAP_PORT, IMAPS_PORT, KAFKA, MONGODB_URL, RUN_DIR
from maillink_devtools.kafka_tools import read_topic

pytestmark = pytest.mark.integration
KEY = Fernet.generate_key().decode()


def account(email, password, **kw) -> AccountConfigured:
    return AccountConfigured(event_id="e", occurred_at=datetime.now(timezone.utc), account_id=f"acc-{email}",
                             user_id="u1", email=email, imap=ImapEndpoint(host=IMAP_HOST, port=IMAP_PORT,
                                                                           security=Security.PLAIN),
                             username=email, secret_ciphertext=CredentialsCipher(KEY).encrypt(password), **kw)


def mails(n, prefix, sender="jan@acme.cz", to="x@example.com"):
    return [Mail(sender=sender, to=[to], subject=f"{prefix} {i}", body=f"body {prefix} {i}",
                 message_id=f"<{prefix}-{i}@acme.cz>").to_bytes() for i in range(n)]


@pytest.fixture
async def env(namespace, tmp_path):
    client = mongo.connect(MONGODB_URL)
    db = client[f"{namespace.strip('.')}_ingest"]
    broker = bus.make_broker(KAFKA, "test")
    await broker.start()
    topic = f"{namespace}mail.message.received.v1"

    async def publish(events):
        await bus.publish_many(broker, topic, [(o.key, o.event) for o in events])

    async def emit(to, events):
        await bus.publish_many(broker, f"{namespace}{to}", events)

    async def dead_letter(key, payload, reason, error, offset):
        await bus.dead_letter(broker, topic, "ingest", -1, offset, key.encode(), payload, reason, error, 1)

    yield db, Delivery(open_blob_store(tmp_path.as_uri()), publish, locations=LocationStore(db), emit=emit,
                       dead_letter=dead_letter), topic
    await broker.stop()
    await client.drop_database(db.name)
    await client.close()


async def received(topic, expect) -> list[MessageReceived]:
    return [MessageReceived.model_validate_json(r.value) for r in await read_topic(KAFKA, topic, expect=expect)]


async def sync_once(acc, db, delivery, folder="INBOX", batch_size=200):
    client = await open_session(acc.imap, acc.username, CredentialsCipher(KEY).decrypt(acc.secret_ciphertext))
    try:
        return await FolderSync(client, acc, FolderStateStore(db), delivery, batch_size=batch_size).run(
            FolderPlan(folder, folder == "Sent"))
    finally:
        await close_session(client)


async def test_initial_sync_is_newest_first_within_window_then_incremental(env, mailbox):
    db, delivery, topic = env
    email, password = mailbox
    old = time.time() - 10 * 86400
    append(IMAP_HOST, IMAP_PORT, email, password, "INBOX", mails(2, "old"), when=old)
    append(IMAP_HOST, IMAP_PORT, email, password, "INBOX", mails(5, "new"))
    acc = account(email, password, first_sync_days=3)

    state = await sync_once(acc, db, delivery, batch_size=2)
    events = await received(topic, 5)
    assert [e.location.uid for e in events] == [7, 6, 5, 4, 3]  # newest first, old ones outside the window
    assert state.initial_done and state.synced == 5
    blob = await delivery._blobs.get(events[0].raw.blob_id)
    assert blob is not None and b"new 4" in blob and len(blob) == events[0].raw.size

    append(IMAP_HOST, IMAP_PORT, email, password, "INBOX", mails(2, "later"))
    await sync_once(acc, db, delivery)
    events = await received(topic, 7)
    assert [e.location.uid for e in events][5:] == [8, 9] and len(events) == 7


async def test_interrupted_initial_sync_resumes_without_gaps(env, mailbox):
    db, delivery, topic = env
    email, password = mailbox
    append(IMAP_HOST, IMAP_PORT, email, password, "INBOX", mails(6, "m"))
    acc = account(email, password)
    calls = 0

    class Crashing(Delivery):
        async def deliver(self, *args):
            nonlocal calls
            calls += 1
            if calls == 2:
                raise ConnectionError("killed mid-sync")
            return await super().deliver(*args)

    crashing = Crashing(delivery._blobs, delivery._publish)
    with pytest.raises(ConnectionError):
        await sync_once(acc, db, crashing, batch_size=2)
    state = await sync_once(acc, db, delivery, batch_size=2)
    events = await received(topic, 6)
    assert sorted({e.location.uid for e in events}) == [1, 2, 3, 4, 5, 6] and state.synced == 6
    assert len(events) == 6  # the crashed batch was never published, so nothing is repeated either


async def test_a_spurious_uidvalidity_change_keeps_the_state(env, mailbox):
    db, delivery, topic = env
    email, password = mailbox
    append(IMAP_HOST, IMAP_PORT, email, password, "INBOX", mails(3, "m"))
    acc = account(email, password)
    await sync_once(acc, db, delivery)
    await received(topic, 3)
    states = FolderStateStore(db)
    state = await states.load(acc.account_id, "INBOX")
    real = state.uidvalidity
    state.uidvalidity -= 1  # what a server-side UIDVALIDITY change looks like to us
    await states.save(state)
    state = await sync_once(acc, db, delivery)
    # The same Message-IDs at the same UIDs: nothing is fetched again (today's code re-imported all 3).
    assert len(await received(topic, 4)) == 3
    assert state.state == "incremental" and state.uidvalidity == real and state.synced == 3


async def test_sent_folder_messages_are_outgoing(env, mailbox):
    db, delivery, topic = env
    email, password = mailbox
    append(IMAP_HOST, IMAP_PORT, email, password, "Sent", mails(1, "s", sender=email, to="jan@acme.cz"))
    await sync_once(account(email, password), db, delivery, folder="Sent")
    (event,) = await received(topic, 1)
    assert event.direction == "outgoing" and event.location.folder == "Sent"


async def test_tls_is_verified_and_a_trusted_private_ca_works(env, mailbox):
    email, password = mailbox
    endpoint = ImapEndpoint(host="127.0.0.1", port=IMAPS_PORT, security=Security.SSL)
    from maillink_ingest.imap.errors import ServerUnreachable
    with pytest.raises(ServerUnreachable, match="certificate"):
        await open_session(endpoint, email, password)
    client = await open_session(endpoint, email, password, ca_file=str(RUN_DIR / "dovecot/tls/cert.pem"))
    await close_session(client)


async def test_starttls_upgrades_verifies_and_rereads_capabilities(env, mailbox):
    """STARTTLS on the plain port: the certificate is verified (untrusted -> refused in words), and
    with the private CA the session logs in over TLS and works."""
    email, password = mailbox
    endpoint = ImapEndpoint(host="127.0.0.1", port=IMAP_PORT, security=Security.STARTTLS)
    from maillink_ingest.imap.errors import ServerUnreachable
    with pytest.raises(ServerUnreachable, match="certificate"):
        await open_session(endpoint, email, password)
    client = await open_session(endpoint, email, password, ca_file=str(RUN_DIR / "dovecot/tls/cert.pem"))
    try:
        assert client.protocol.transport.get_extra_info("ssl_object") is not None  # really over TLS now
        assert "STARTTLS" not in client.protocol.capabilities  # the pre-TLS list was discarded
        assert (await client.select("INBOX")).result == "OK"
    finally:
        await close_session(client)


async def test_plain_text_to_a_remote_host_is_refused():
    from maillink_ingest.imap.errors import InsecureConnection
    with pytest.raises(InsecureConnection):
        await open_session(ImapEndpoint(host="imap.example.com", port=143, security=Security.PLAIN), "u", "p")


async def test_the_published_bytes_are_the_contracts_event(namespace, mailbox, tmp_path):
    """Through the path ingest's app wires (ReceivedPublisher over BatchProducer, the JSON written
    without the model): every record on Kafka is a valid MessageReceived, keyed by the account, once
    per message, with unicode, many recipients and a missing Date read back as written."""
    from maillink_ingest.adapters.received_publisher import ReceivedPublisher
    from maillink_runtime.kafka_batches import BatchProducer
    from maillink_runtime.settings import KafkaSettings

    email, password = mailbox
    many = [f"r{i}@example.com" for i in range(130)]
    msgs = [Mail(sender="Jan Novák <jan@acme.cz>", to=many, subject="Cenová nabídka – řízení 💼",
                 body="Dobrý den,\r\npřikládám nabídku.\r\n", message_id="<uni-1@acme.cz>").to_bytes(),
            b"From: a@x.test\r\nTo: b@y.test\r\nSubject: no date\r\n\r\nbody\r\n"] + mails(3, "plain")
    append(IMAP_HOST, IMAP_PORT, email, password, "INBOX", msgs)
    acc = account(email, password)
    client = mongo.connect(MONGODB_URL)
    db = client[f"{namespace.strip('.')}_ingest"]
    producer = BatchProducer(KafkaSettings(kafka_bootstrap_servers=KAFKA), "test-ingest-received")
    await producer.start()
    topic = f"{namespace}mail.message.received.v1"
    try:
        delivery = Delivery(open_blob_store(tmp_path.as_uri()), ReceivedPublisher(producer, topic),
                            locations=LocationStore(db))
        state = await sync_once(acc, db, delivery)
    finally:
        await producer.stop()
    records = await read_topic(KAFKA, topic, expect=5)
    events = [MessageReceived.model_validate_json(r.value) for r in records]
    assert len(events) == 5 and state.synced == 5 and {r.key for r in records} == {acc.account_id.encode()}
    assert sorted(e.location.uid for e in events) == [1, 2, 3, 4, 5]
    uni = next(e for e in events if e.envelope.message_id == "uni-1@acme.cz")
    assert uni.envelope.subject == "Cenová nabídka – řízení 💼" and uni.envelope.from_[0].name == "Jan Novák"
    assert len(uni.envelope.to) == 100 and uni.truncated == {"to": 30}
    undated = next(e for e in events if e.envelope.subject == "no date")
    assert undated.envelope.date is not None and undated.envelope.message_id is None   # INTERNALDATE used
    # The locations come from the same fast path: key, Message-ID and flags as on the events.
    located = await LocationStore(db).in_folder(acc.account_id, "INBOX")
    assert {(u, loc.message_key, loc.message_id, loc.blob_id) for u, loc in located.items()} == {
        (e.location.uid, e.message_key, e.envelope.message_id, e.raw.blob_id) for e in events}
    await client.drop_database(db.name)
    await client.close()
