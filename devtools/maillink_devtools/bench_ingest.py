"""make bench-ingest: initial-sync throughput of ingest vs mbsync vs raw imaplib, same mailbox, same run.

(a) ingest's initial sync: IMAP (aioimaplib) -> parse -> raw MIME stored in the object store
    (MAILLINK_BLOB_URL if set, else a fresh local directory in the run dir, fsynced per batch) ->
    mail.message.received.v1 acknowledged by Kafka (acks=all);
(b) mbsync (Debian's isync) pulling the same folder into a local maildir;
(c) the raw ceiling: stdlib imaplib UID FETCH BODY.PEEK[] in batches of 500, no parsing.
"""
import argparse
import hashlib
import asyncio
import imaplib
import inspect
import json
import os
import resource
import shutil
import subprocess
import tempfile
import time
import uuid
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path

from cryptography.fernet import Fernet

from .fs_settle import removed, settle
from .imap_load import append, delete_all
from .mailgen import bench_mailbox

ROOT = Path(__file__).resolve().parents[2]
RUN_DIR = Path(os.environ.get("MAILLINK_RUN_DIR", ROOT / ".run"))
KAFKA = os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9092")
MONGODB_URL = os.environ.get("MONGODB_URL", "mongodb://127.0.0.1:27017/")
HOST, PORT = "127.0.0.1", int(os.environ.get("IMAP_PORT", "10143"))
USER, PASSWORD = "bench@example.com", "bench-password"


REMOVED = RUN_DIR / "bench" / ".files-removed"  # when a benchmark last removed its files (fs_settle)

def ensure_mailbox(messages: list[bytes]) -> int:
    """Loads the generated mailbox into Dovecot unless exactly this mailbox is already there."""
    count = len(messages)
    subprocess.run(["bash", str(ROOT / "deploy/local/dovecot.sh"), "adduser", USER, PASSWORD], check=True)
    fingerprint = hashlib.sha256(b"".join(hashlib.sha256(m).digest() for m in messages)).hexdigest()
    marker = RUN_DIR / "bench" / f"mailbox-{USER}.sha256"
    conn = imaplib.IMAP4(HOST, PORT)
    conn.login(USER, PASSWORD)
    have = int(conn.select("INBOX", readonly=True)[1][0])
    conn.logout()
    if have != count or not marker.exists() or marker.read_text() != fingerprint:
        print(f"loading {count} messages into {USER}/INBOX (once; reused by later runs)…", flush=True)
        delete_all(HOST, PORT, USER, PASSWORD, "INBOX")
        started = time.monotonic()
        append(HOST, PORT, USER, PASSWORD, "INBOX", messages)
        print(f"  loaded in {time.monotonic() - started:.0f}s", flush=True)
        marker.parent.mkdir(parents=True, exist_ok=True)
        marker.write_text(fingerprint)
    return count


def run_raw_imaplib() -> float:
    started = time.monotonic()
    conn = imaplib.IMAP4(HOST, PORT)
    conn.login(USER, PASSWORD)
    conn.select("INBOX", readonly=True)
    uids = conn.uid("SEARCH", None, "ALL")[1][0].split()
    fetched = 0
    for i in range(0, len(uids), 500):
        batch = uids[i:i + 500]
        typ, data = conn.uid("FETCH", b",".join(batch).decode(), "(BODY.PEEK[])")
        fetched += sum(1 for part in data if isinstance(part, tuple))
    conn.logout()
    assert fetched == len(uids), (fetched, len(uids))
    return time.monotonic() - started


def run_mbsync(work: Path) -> tuple[float, int]:
    """mbsync into a maildir under `work`, which the caller removes only after (a) ran: removing
    20,000 files right before (a) writes its blobs made (a)'s file creation 10-25x costlier (fs_settle.py)."""
    (work / "mail").mkdir()
    config = work / "mbsyncrc"
    config.write_text(f"""IMAPAccount bench
Host {HOST}
Port {PORT}
User {USER}
Pass {PASSWORD}
SSLType None
AuthMechs LOGIN

IMAPStore remote
Account bench

MaildirStore local
Path {work}/mail/
Inbox {work}/mail/INBOX

Channel bench
Far :remote:
Near :local:
Patterns INBOX
Create Near
Sync Pull
SyncState *
""")
    started = time.monotonic()
    result = subprocess.run(["mbsync", "-q", "-c", str(config), "bench"], capture_output=True, text=True)
    elapsed = time.monotonic() - started
    got = len(list((work / "mail/INBOX/cur").iterdir())) + len(list((work / "mail/INBOX/new").iterdir()))
    if result.returncode != 0:
        raise RuntimeError(f"mbsync failed: {result.stderr[-2000:]}")
    return elapsed, got


class Timers:
    def __init__(self):
        self.spent: dict[str, float] = {}
        self.spans: list[tuple[str, float, float]] = []  # for INGEST_TIMELINE=<file>: when each step ran

    @contextmanager
    def __call__(self, name):
        started = time.perf_counter()
        try:
            yield
        finally:
            self.spent[name] = self.spent.get(name, 0.0) + time.perf_counter() - started
            self.spans.append((name, started, time.perf_counter()))



async def _drop_topics(namespace: str) -> None:
    """The run's topic goes with it: every namespace left costs the shared broker its partitions for
    good (kafka_tools.forget_namespace). Best effort: the figures are already in."""
    from .kafka_tools import drop_namespace
    try:
        await drop_namespace(KAFKA, MONGODB_URL, namespace, [])
    except Exception as exc:  # noqa: BLE001
        print(f"clean-up of namespace {namespace} failed ({exc!r}); its topic remains")

async def run_ingest(count: int) -> tuple[float, dict[str, float]]:
    from maillink_runtime.blobs import store as blobs_mod
    from maillink_ingest.adapters.crypto import CredentialsCipher
    from maillink_ingest.adapters.folder_state import FolderStateStore
    from maillink_ingest.adapters.locations import LocationStore
    from maillink_ingest.adapters.received_publisher import ReceivedPublisher
    from maillink_runtime.kafka_batches import BatchProducer
    from maillink_runtime.settings import KafkaSettings
    from maillink_runtime.blobs.settings import BlobSettings
    from maillink_ingest.domain.folders import FolderPlan
    from maillink_ingest.imap.connection import close_session, open_session
    from maillink_ingest.sync import delivery as delivery_mod
    from maillink_ingest.sync import folder_sync as folder_sync_mod
    from maillink_ingest.sync import pipeline as pipeline_mod
    from maillink_runtime import mongo
    from maillink_schemas.accounts import AccountConfigured, ImapEndpoint, Security

    from .kafka_tools import read_topic

    timers = Timers()
    namespace = f"bench{uuid.uuid4().hex[:6]}."
    client = mongo.connect(MONGODB_URL)
    db = client[f"{namespace.strip('.')}_ingest"]
    topic = f"{namespace}mail.message.received.v1"
    key = Fernet.generate_key().decode()
    blob_dir = RUN_DIR / "bench" / f"blobs-{namespace.strip('.')}"
    store = BlobSettings()  # MAILLINK_BLOB_URL=s3://… measures S3 instead, with the AWS_* settings
    blob_url = store.blob_url or blob_dir.resolve().as_uri()
    account = AccountConfigured(event_id="bench", occurred_at=datetime.now(timezone.utc), account_id="bench",
                                user_id="bench", email=USER, imap=ImapEndpoint(host=HOST, port=PORT, security=Security.PLAIN),
                                username=USER, secret_ciphertext=CredentialsCipher(key).encrypt(PASSWORD),
                                first_sync_days=730)

    # Instrument the real code paths (same functions, timed) to show what bounds (a).
    instrumented = [(pipeline_mod, "fetch_messages", "imap fetch (aioimaplib)"),
                    (delivery_mod, "parse", "parse + event build"),
                    (blobs_mod.BlobStore, "write_many", "blob store: write"),
                    (blobs_mod.BlobStore, "flush_many", "blob store: flush (syncfs)"),
                    (LocationStore, "record", "locations (document store)"),
                    (FolderStateStore, "save", "folder state save")]
    originals = [(owner, name, getattr(owner, name)) for owner, name, _ in instrumented]

    # The publisher ingest's app wires for received events (adapters/received_publisher.py).
    # INGEST_KAFKA_COMPRESSION (gzip, snappy, lz4, zstd): for measuring compression (docs/ingest-sync.md).
    producer = BatchProducer(KafkaSettings(kafka_bootstrap_servers=KAFKA), "bench-ingest-received",
                             compression_type=os.environ.get("INGEST_KAFKA_COMPRESSION") or None)
    await producer.start()
    received = ReceivedPublisher(producer, topic)

    async def publish(events):
        with timers("kafka publish (acks=all)"):
            await received(events)

    if "INGEST_IN_FLIGHT_GROUPS" in os.environ:  # for measuring the pipeline's depth (docs/ingest-sync.md)
        pipeline_mod.IN_FLIGHT_GROUPS = int(os.environ["INGEST_IN_FLIGHT_GROUPS"])
    for (owner, name, label), (_, _, original) in zip(instrumented, originals):
        setattr(owner, name, _timed(timers, label, original))
    try:
        started, cpu_before = time.monotonic(), resource.getrusage(resource.RUSAGE_SELF)
        session = await open_session(account.imap, USER, PASSWORD)
        blobs = blobs_mod.open_blob_store(blob_url, owner=namespace.strip("."), endpoint=store.aws_endpoint_url,
                                          region=store.aws_region, allow_http=store.aws_allow_http)
        sync = folder_sync_mod.FolderSync(session, account, FolderStateStore(db),
                                          delivery_mod.Delivery(blobs, publish, locations=LocationStore(db)),
                                          **{k: int(os.environ[e]) for k, e in (("batch_size", "INGEST_BATCH_SIZE"),
                                             ("max_batch_bytes", "INGEST_FETCH_GROUP_BYTES")) if e in os.environ})
        state = await sync.run(FolderPlan("INBOX", False))
        elapsed = time.monotonic() - started
        cpu = resource.getrusage(resource.RUSAGE_SELF)
        # CPU of the whole process (the event loop and obstore's threads): what is not CPU is waiting.
        timers.spent["(process CPU, all threads)"] = (cpu.ru_utime - cpu_before.ru_utime) + (cpu.ru_stime - cpu_before.ru_stime)
        timers.spent["(of which system CPU)"] = cpu.ru_stime - cpu_before.ru_stime
        await close_session(session)
        assert state.synced == count, (state.synced, count)
    finally:
        for owner, name, original in originals:
            setattr(owner, name, original)
        await producer.stop()
    if os.environ.get("INGEST_TIMELINE"):
        Path(os.environ["INGEST_TIMELINE"]).write_text(json.dumps(timers.spans))
    published = await read_topic(KAFKA, topic, expect=count, timeout=120)
    assert len(published) == count, f"{len(published)} events on {topic}, expected {count}"
    await client.drop_database(db.name)
    await client.close()
    shutil.rmtree(blob_dir, ignore_errors=True)
    await _drop_topics(namespace)
    return elapsed, timers.spent


def _timed(timers, label: str, function):
    """`function` (sync or async, plain or a method) with its wall time added to timers[label]."""
    if inspect.iscoroutinefunction(function):
        async def timed(*args, **kwargs):
            with timers(label):
                return await function(*args, **kwargs)
    else:
        def timed(*args, **kwargs):
            with timers(label):
                return function(*args, **kwargs)
    return timed


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--messages", type=int, default=20_000)
    parser.add_argument("--only-ingest", action="store_true",
                        help="measure (a) alone on the mailbox a full run loaded, and write nothing (for iterating on ingest)")
    args = parser.parse_args()
    if args.only_ingest:
        # The mailbox a full run loaded (generating it again takes minutes on a busy machine).
        conn = imaplib.IMAP4(HOST, PORT)
        conn.login(USER, PASSWORD)
        count = int(conn.select("INBOX", readonly=True)[1][0])
        conn.logout()
        run_raw_imaplib()  # warm Dovecot's index and the page cache
        probes = Path(tempfile.mkdtemp(prefix="settle-", dir=RUN_DIR))
        try:
            settle(probes, stamp=REMOVED)
            a, spent = asyncio.run(run_ingest(count))
        finally:
            shutil.rmtree(probes, ignore_errors=True)
            removed(REMOVED)
        print(f"(a) {count / a:.0f} msg/s ({a:.1f} s)")
        for name, seconds in sorted(spent.items(), key=lambda kv: -kv[1]):
            print(f"  {name:<32}{seconds:>7.1f}s  {100 * seconds / a:>5.1f} %")
        print(f"load {os.getloadavg()[0]:.2f}")
        return
    messages = bench_mailbox(args.messages, USER)
    count = ensure_mailbox(messages)
    size_mb = sum(len(m) for m in messages) / 1e6
    print(f"mailbox: {count} messages, {size_mb:.0f} MB of MIME (4 % with 10-200 KB attachments)\n", flush=True)
    run_raw_imaplib()  # warm Dovecot's index and the page cache so no contender pays for it
    c = run_raw_imaplib()
    work = Path(tempfile.mkdtemp(prefix="mbsync-", dir=RUN_DIR))
    try:
        settle(work, stamp=REMOVED)  # (b) and (a) create 20,000 files each: not while earlier removals still cost
        b, got = run_mbsync(work)
        assert got == count, f"mbsync fetched {got} of {count}"
        a, spent = asyncio.run(run_ingest(count))
    finally:
        shutil.rmtree(work, ignore_errors=True)
        removed(REMOVED)
    rates = {"a": count / a, "b": count / b, "c": count / c}
    print(f"{'':4}{'contender':<58}{'seconds':>9}{'msg/s':>10}{'MB/s':>8}")
    for k, label, t in (("a", "maillink ingest: IMAP -> store -> Kafka-acked events", a),
                        ("b", "mbsync (isync) -> local maildir", b),
                        ("c", "stdlib imaplib UID FETCH x500, no parsing (ceiling)", c)):
        print(f"({k}) {label:<58}{t:>9.1f}{rates[k]:>10.0f}{size_mb / t:>8.1f}")
    print(f"\n(a)/(b) = {rates['a'] / rates['b']:.2f}    (a)/(c) = {rates['a'] / rates['c']:.2f}")
    print("\nwhere (a)'s time goes (wall time inside each step; fetching overlaps storing and publishing, so the shares can add up to more than 100 %):")
    for name, seconds in sorted(spent.items(), key=lambda kv: -kv[1]):
        print(f"  {name:<32}{seconds:>7.1f}s  {100 * seconds / a:>5.1f} %")
    out = RUN_DIR / "bench" / "ingest.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"messages": count, "mb": size_mb, "seconds": {"a": a, "b": b, "c": c},
                               "rates": rates, "breakdown": spent, "load": os.getloadavg()}, indent=2))
    print(f"load {os.getloadavg()[0]:.2f}")
    print(f"bench ingest: ratio={rates['a'] / rates['b']:.2f} target=3")


if __name__ == "__main__":
    main()
