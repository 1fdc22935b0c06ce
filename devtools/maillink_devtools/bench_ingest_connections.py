"""Issue 7's question: does a second IMAP connection pay for the initial sync of one folder?

On the mailbox `make bench-ingest` loaded, one ingest process delivers every UID of INBOX through
the real pipeline (sync/pipeline.deliver_uids: fetch, parse, blobs, Kafka-acked events, locations,
state saves), once over one connection and once over two, each connection taking half of the UIDs
(two UID ranges, each with its own folder state). Prints msg/s for each and the ratio.
`python -m maillink_devtools.bench_ingest_connections` (after `make bench-ingest` loaded the mailbox).
"""
import asyncio
import imaplib
import os
import shutil
import time
import uuid
from datetime import datetime, timezone

from cryptography.fernet import Fernet

from .bench_ingest import _drop_topics, HOST, KAFKA, MONGODB_URL, PASSWORD, PORT, RUN_DIR, USER, run_raw_imaplib


async def deliver(connections: int) -> tuple[float, int]:
    from maillink_ingest.adapters.crypto import CredentialsCipher
    from maillink_ingest.adapters.folder_state import FolderState, FolderStateStore
    from maillink_ingest.adapters.locations import LocationStore
    from maillink_ingest.domain.folders import FolderPlan
    from maillink_ingest.imap.connection import close_session, open_session, uid_search
    from maillink_ingest.sync import delivery as delivery_mod
    from maillink_ingest.sync.folder_sync import FolderSync
    from maillink_ingest.sync.pipeline import deliver_uids
    from maillink_ingest.adapters.received_publisher import ReceivedPublisher
    from maillink_runtime import mongo
    from maillink_runtime.kafka_batches import BatchProducer
    from maillink_runtime.settings import KafkaSettings
    from maillink_runtime.blobs.store import open_blob_store
    from maillink_schemas.accounts import AccountConfigured, ImapEndpoint, Security

    from .kafka_tools import read_topic

    namespace = f"benchconn{uuid.uuid4().hex[:6]}"
    client = mongo.connect(MONGODB_URL)
    db = client[f"{namespace}_ingest"]
    # The publisher ingest's app wires for received events (adapters/received_publisher.py).
    producer = BatchProducer(KafkaSettings(kafka_bootstrap_servers=KAFKA), "bench-ingest-connections",
                             compression_type=os.environ.get("INGEST_KAFKA_COMPRESSION") or None)
    await producer.start()
    topic = f"{namespace}.mail.message.received.v1"
    blob_dir = RUN_DIR / "bench" / f"blobs-{namespace}"
    account = AccountConfigured(event_id="bench", occurred_at=datetime.now(timezone.utc), account_id="bench",
                                user_id="bench", email=USER, imap=ImapEndpoint(host=HOST, port=PORT, security=Security.PLAIN),
                                username=USER, secret_ciphertext=CredentialsCipher(Fernet.generate_key().decode()).encrypt(PASSWORD),
                                first_sync_days=730)

    publish = ReceivedPublisher(producer, topic)

    try:
        started = time.monotonic()
        sessions = await asyncio.gather(*(open_session(account.imap, USER, PASSWORD) for _ in range(connections)))
        delivery = delivery_mod.Delivery(open_blob_store(blob_dir.resolve().as_uri(), owner=namespace), publish,
                                         locations=LocationStore(db))
        states = FolderStateStore(db)
        passes = []
        for i, session in enumerate(sessions):
            sync = FolderSync(session, account, states, delivery)
            # Each UID range has its own state document, as a second connection's range would.
            state = FolderState(account.account_id, f"INBOX#{i}")
            passes.append((await sync._open(FolderPlan("INBOX", False), state, datetime.now(timezone.utc)), state))
        uids = sorted(await uid_search(sessions[0], "ALL"), reverse=True)  # newest first, as the initial step
        share = -(-len(uids) // connections)
        await asyncio.gather(*(deliver_uids(p, state, uids[i * share:(i + 1) * share], True)
                               for i, (p, state) in enumerate(passes)))
        elapsed = time.monotonic() - started
        await asyncio.gather(*(close_session(s) for s in sessions))
        synced = sum(state.synced for _, state in passes)
    finally:
        await producer.stop()
    assert len(await read_topic(KAFKA, topic, expect=synced, timeout=120)) == synced
    await client.drop_database(db.name)
    await client.close()
    shutil.rmtree(blob_dir, ignore_errors=True)
    await _drop_topics(f"{namespace}.")
    return elapsed, synced


def main() -> None:
    conn = imaplib.IMAP4(HOST, PORT)
    conn.login(USER, PASSWORD)
    count = int(conn.select("INBOX", readonly=True)[1][0])
    conn.logout()
    run_raw_imaplib()  # warm Dovecot's index and the page cache
    rates = {}
    for connections in (1, 2, 1, 2):
        seconds, synced = asyncio.run(deliver(connections))
        assert synced == count, (synced, count)
        rates.setdefault(connections, []).append(count / seconds)
        print(f"{connections} connection(s): {count / seconds:.0f} msg/s ({seconds:.1f} s), load {os.getloadavg()[0]:.2f}",
              flush=True)
    one, two = max(rates[1]), max(rates[2])
    print(f"bench ingest-connections: ratio={two / one:.2f} (two connections / one, best of two runs each)")


if __name__ == "__main__":
    main()
