"""make bench-matcher: the matcher's throughput against its ceilings, in one run, on one store.

Setup (scale 1): 100,000 persons, 30,000 deals on the crm.* topics, 200,000 received events
already on Kafka. Then:
(a) messages linked per second, end to end: a real matcher process consumes, resolves, persists,
    publishes and commits every event (from healthy to its group caught up);
(b) raw aiokafka consumption of the same topic;
(c) a raw bulk insert of the same number of message documents into the same store;
plus the query API's p99 for a person with 10,000 messages, and the time to re-link 10,000 past
messages when their person appears. `--store sqlite|postgresql` starts a private FerretDB v1 (on
SQLite, or on a private PostgreSQL 15 cluster) on its own ports for the run; `--store url` uses
MONGODB_URL. Last line: `bench matcher: ratio=<(a)/min(b,c)> target=0.5`.
"""
import argparse
import asyncio
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import httpx
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from . import tokens
from .fs_settle import removed
from .kafka_tools import NAMESPACE_DATABASES, drop_namespace, wait_group_caught_up
from .processes import ServiceSet

ROOT = Path(__file__).resolve().parents[2]
RUN_DIR = Path(os.environ.get("MAILLINK_RUN_DIR", ROOT / ".run"))
KAFKA = os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9092")
CACHE = Path(os.environ.get("MAILLINK_CACHE_DIR", Path.home() / ".cache/maillink"))
SAMPLE = json.loads((ROOT / "schemas/samples/MessageReceived.json").read_text())
ACCOUNTS = 50
QUERIES = int(os.environ.get("BENCH_MATCHER_QUERIES", "30"))


class Progress(dict):
    """The results, each printed as soon as it is measured (a long run shows where it is)."""

    def __setitem__(self, key, value):
        super().__setitem__(key, value)
        print(f"  {self.get('store')}: {key} = {value}", flush=True)


# --- stores ---------------------------------------------------------------------------------
def ferret_binary() -> Path:
    found = sorted(CACHE.glob("ferretdb-v1.24.2-*"), key=lambda p: p.stat().st_mtime)
    if not found:
        raise SystemExit("no FerretDB binary in the cache: run `make install` first")
    return found[-1]


def _as_postgres(args: list[str]) -> list[str]:
    return ["runuser", "-u", "postgres", "--", *args] if os.geteuid() == 0 else args


def start_store(kind: str, port: int, work: Path) -> tuple[str, list]:
    """(MongoDB URL, processes to stop) of a private store for this run."""
    if kind == "url":
        return os.environ.get("MONGODB_URL", "mongodb://127.0.0.1:27017/"), []
    log = open(work / f"ferretdb-{kind}.log", "ab")
    stops = []
    if kind == "sqlite":
        ferret_args = ["-data", str(work / "sqlite")]
    else:
        pg = work / "pg"
        pg.mkdir()
        if os.geteuid() == 0:
            shutil.chown(pg, "postgres", "postgres")
            shutil.chown(work, "postgres", "postgres")
        subprocess.run(_as_postgres(["initdb", "-D", str(pg), "--auth=trust", "-U", "postgres"]), check=True,
                       stdout=subprocess.DEVNULL)
        subprocess.run(_as_postgres(["pg_ctl", "-D", str(pg), "-l", str(pg / "log"), "-w", "start", "-o",
                                     f"-p {port + 1} -k {pg} -c listen_addresses=127.0.0.1 -c fsync=on"]),
                       check=True, stdout=subprocess.DEVNULL)
        stops.append(lambda: subprocess.run(_as_postgres(["pg_ctl", "-D", str(pg), "-m", "fast", "stop"]),
                                            stdout=subprocess.DEVNULL))
        subprocess.run(_as_postgres(["createdb", "-h", "127.0.0.1", "-p", str(port + 1), "ferretdb"]), check=True)
        ferret_args = ["-postgresql-url", f"postgres://postgres@127.0.0.1:{port + 1}/ferretdb"]
    proc = subprocess.Popen([str(ferret_binary()), "-listen", f"127.0.0.1:{port}", *ferret_args], stdout=log,
                            stderr=subprocess.STDOUT)
    stops.insert(0, lambda: (proc.terminate(), proc.wait(15)))
    url = f"mongodb://127.0.0.1:{port}/"
    import pymongo
    deadline = time.monotonic() + 60
    while True:
        try:
            pymongo.MongoClient(url, serverSelectionTimeoutMS=1000).admin.command("ping")
            return url, stops
        except Exception:  # noqa: BLE001 - not up yet
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)


# --- data -----------------------------------------------------------------------------------
def person(i: int) -> dict:
    return {"person_id": f"p{i}", "name": f"Person {i}", "emails": [f"person{i}@corp{i % 997}.example"], "version": 1}


def event(n: int, account: str, sender: str, rnd: random.Random, reply_to: str | None = None) -> dict:
    doc = json.loads(json.dumps(SAMPLE))
    key = uuid.UUID(int=rnd.getrandbits(128)).hex
    doc.update(event_id=key, message_key=key, account_id=account, user_id=f"u-{account}",
               account_addresses=[f"{account}@me.example"], location={"folder": "INBOX", "uidvalidity": 1, "uid": n})
    env = doc["envelope"]
    env.update(message_id=f"{key}@bench", in_reply_to=[reply_to] if reply_to else [],
               references=[reply_to] if reply_to else [], subject=f"Subject {n}", to=[{"email": f"{account}@me.example"}])
    env["from"] = [{"email": sender}]
    env["date"] = f"2026-11-{1 + n % 27:02d}T{n % 24:02d}:{n % 60:02d}:00Z"
    return doc


def events(count: int, persons: int, rnd: random.Random) -> list[tuple[bytes, bytes]]:
    out, recent = [], []
    for n in range(count):
        account = f"acc{n % ACCOUNTS}"
        sender = person(rnd.randrange(persons))["emails"][0] if rnd.random() < 0.7 else f"x{n}@unknown.example"
        reply = rnd.choice(recent) if recent and rnd.random() < 0.3 else None
        doc = event(n, account, sender, rnd, reply)
        recent = (recent + [doc["envelope"]["message_id"]])[-200:]
        out.append((account.encode(), json.dumps(doc).encode()))
    return out


async def produce_fast(topic: str, items: list[tuple[bytes, bytes]]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=KAFKA, acks="all", linger_ms=20, max_batch_size=1 << 20)
    await producer.start()
    try:
        for i in range(0, len(items), 5000):
            futures = [await producer.send(topic, value, key=key) for key, value in items[i:i + 5000]]
            await asyncio.gather(*futures)
    finally:
        await producer.stop()


# --- measurements ---------------------------------------------------------------------------
async def raw_consume(topic: str, expect: int) -> float:
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=KAFKA, auto_offset_reset="earliest", group_id=None,
                                enable_auto_commit=False, max_partition_fetch_bytes=8 << 20)
    await consumer.start()
    started, seen = time.monotonic(), 0
    try:
        while seen < expect:
            for records in (await consumer.getmany(timeout_ms=500, max_records=5000)).values():
                seen += len(records)
    finally:
        await consumer.stop()
    return time.monotonic() - started


async def raw_insert(url: str, items: list[tuple[bytes, bytes]]) -> float:
    from maillink_matcher.handlers.documents import new_document
    from maillink_runtime import mongo
    from maillink_schemas.mail import MessageReceived
    docs = [new_document(MessageReceived.model_validate_json(v)) for _, v in items]
    client = mongo.connect(url)
    db = client[f"bench_raw_{uuid.uuid4().hex[:8]}"]
    try:
        started = time.monotonic()
        for i in range(0, len(docs), 1000):
            await db["messages"].insert_many(docs[i:i + 1000], ordered=False)
        return time.monotonic() - started
    finally:
        await client.drop_database(db.name)
        await client.close()


async def count_linked(url: str, namespace: str, query: dict) -> int:
    from maillink_runtime import mongo
    client = mongo.connect(url)
    try:
        return await client[f"{namespace.replace('.', '_')}maillink_matcher"]["messages"].count_documents(query)
    finally:
        await client.close()


async def count_in_view(url: str, namespace: str, ref: str) -> int:
    """Messages shown in a record's conversations ("person:<id>"), read as the query API reads them
    (the days list, then the day buckets, by `_id`): the progress poll must not scan the messages,
    which competes with the matcher for the store."""
    from maillink_matcher.adapters.record_views import RecordViews
    from maillink_runtime import mongo
    client = mongo.connect(url)
    try:
        return len(await RecordViews(client[f"{namespace.replace('.', '_')}maillink_matcher"]).keys_of(ref))
    finally:
        await client.close()


def start_matcher(env: dict, port: int, log_dir: Path) -> ServiceSet:
    procs = ServiceSet()
    procs.start("matcher", port, env, log_dir)
    procs.wait_healthy(120)
    return procs


async def run(store: str, scale: float, port: int, heavy: int | None = None) -> dict:
    rnd = random.Random(7)
    n_persons, n_deals = int(100_000 * scale), int(30_000 * scale)
    n_events, n_heavy = int(200_000 * scale), heavy or max(100, int(10_000 * scale))
    work = Path(tempfile.mkdtemp(prefix=f"bench-matcher-{store}-", dir=RUN_DIR / "bench"))
    url, stops = start_store(store, port, work)
    namespace = f"b{uuid.uuid4().hex[:8]}."
    keys = work / "auth"
    tokens.init_keys(keys)
    env = {"MAILLINK_NAMESPACE": namespace, "KAFKA_BOOTSTRAP_SERVERS": KAFKA, "MONGODB_URL": url,
           "MAILLINK_JWKS_FILE": str(keys / "jwks.json"), "MAILLINK_LINK_KEYS": uuid.uuid4().hex,
           "MATCHER_BATCH_SIZE": "1000"}
    group = f"{namespace}maillink-matcher"
    topic = lambda name: f"{namespace}{name}"  # noqa: E731
    result = Progress(store=store, scale=scale, persons=n_persons, deals=n_deals, events=n_events)
    procs = None
    try:
        procs = start_matcher(env, port + 2, work / "logs")
        started = time.monotonic()
        await produce_fast(topic("crm.persons.v1"), [(f"p{i}".encode(), json.dumps(person(i)).encode())
                                                     for i in range(n_persons)])
        await produce_fast(topic("crm.deals.v1"), [(f"d{i}".encode(), json.dumps(
            {"deal_id": f"d{i}", "title": f"Deal {i}", "person_ids": [f"p{rnd.randrange(n_persons)}"]}).encode())
            for i in range(n_deals)])
        await wait_group_caught_up(KAFKA, group, topic("crm.persons.v1"), timeout=7200)
        await wait_group_caught_up(KAFKA, group, topic("crm.deals.v1"), timeout=7200)
        result["crm_load_s"] = round(time.monotonic() - started, 1)
        procs.stop()

        items = events(n_events, n_persons, rnd)
        await produce_fast(topic("mail.message.received.v1"), items)
        procs = start_matcher(env, port + 2, work / "logs")
        started = time.monotonic()
        await wait_group_caught_up(KAFKA, group, topic("mail.message.received.v1"), timeout=7200)
        elapsed = time.monotonic() - started
        result["a_linked_per_s"] = round(n_events / elapsed, 1)
        result["stored"] = await count_linked(url, namespace, {})
        result["b_raw_kafka_per_s"] = round(n_events / await raw_consume(topic("mail.message.received.v1"), n_events), 1)
        result["c_raw_insert_per_s"] = round(n_events / await raw_insert(url, items), 1)

        # One person with n_heavy messages: the query API's p99.
        heavy = person(n_persons + 1)
        await produce_fast(topic("crm.persons.v1"), [(heavy["person_id"].encode(), json.dumps(heavy).encode())])
        await wait_group_caught_up(KAFKA, group, topic("crm.persons.v1"), timeout=600)
        await produce_fast(topic("mail.message.received.v1"), [
            (b"acc-heavy", json.dumps(event(i, "acc-heavy", heavy["emails"][0], rnd)).encode()) for i in range(n_heavy)])
        await wait_group_caught_up(KAFKA, group, topic("mail.message.received.v1"), timeout=7200)
        token = tokens.mint(keys, subject="u-acc-heavy", user_id="u-acc-heavy", company_id="c", scopes=["mail:read"])
        latencies = []
        async with httpx.AsyncClient(base_url=procs.running["matcher"].url, timeout=60,
                                     headers={"Authorization": f"Bearer {token}"}) as client:
            for _ in range(QUERIES):
                t = time.monotonic()
                response = await client.get(f"/persons/{heavy['person_id']}/conversations", params={"limit": 50})
                latencies.append((time.monotonic() - t) * 1000)
                assert response.status_code == 200 and response.json()["threads"], response.text
        latencies.sort()
        result["query_p50_ms"] = round(statistics.median(latencies), 1)
        result["query_p99_ms"] = round(latencies[int(len(latencies) * 0.99) - 1], 1)

        # n_heavy past messages of an unknown address; then their person appears.
        late = person(n_persons + 2)
        await produce_fast(topic("mail.message.received.v1"), [
            (b"acc-late", json.dumps(event(i, "acc-late", late["emails"][0], rnd)).encode()) for i in range(n_heavy)])
        await wait_group_caught_up(KAFKA, group, topic("mail.message.received.v1"), timeout=7200)
        started = time.monotonic()
        await produce_fast(topic("crm.persons.v1"), [(late["person_id"].encode(), json.dumps(late).encode())])
        while await count_in_view(url, namespace, f"person:{late['person_id']}") < n_heavy:
            if time.monotonic() - started > 3600:
                raise TimeoutError("re-link did not finish")
            await asyncio.sleep(0.5)
        result["relink_visible_s"] = round(time.monotonic() - started, 1)
        # Shown in the person's conversations (the views are written before the messages); done when
        # the re-check requests are committed too (messages stored, events published).
        await wait_group_caught_up(KAFKA, group, topic("mail.matcher.recheck.v1"), timeout=3600)
        result["relink_s"] = round(time.monotonic() - started, 1)
        result["relinked"] = n_heavy
    finally:
        if procs:
            procs.stop()
        # The run's topics go with it (each namespace left costs the shared broker its partitions for
        # good); a private store goes with its directory, the shared one (--store url) loses the run's
        # databases. Best effort: the figures are in.
        try:
            await drop_namespace(KAFKA, url, namespace, NAMESPACE_DATABASES if store == "url" else [])
        except Exception as exc:  # noqa: BLE001
            print(f"clean-up of namespace {namespace} failed ({exc!r}); its topics remain", file=sys.stderr)
        for stop in stops:
            stop()
        # The private store's data (gigabytes at scale 1); its logs are kept for a failed run.
        for part in ("sqlite", "pg"):
            shutil.rmtree(work / part, ignore_errors=True)
        removed(RUN_DIR / "bench" / ".files-removed")
    result["ratio"] = round(result["a_linked_per_s"] / min(result["b_raw_kafka_per_s"], result["c_raw_insert_per_s"]), 3)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--store", choices=["sqlite", "postgresql", "url"], action="append",
                        help="repeat to compare; default: sqlite and postgresql")
    parser.add_argument("--scale", type=float, default=1.0, help="1 = 100k persons, 30k deals, 200k events")
    parser.add_argument("--heavy", type=int, default=None, help="messages of the queried person and of the re-linked "
                        "one (default: 10,000 x scale, at least 100); 10000 measures the issue's targets at any scale")
    args = parser.parse_args()
    (RUN_DIR / "bench").mkdir(parents=True, exist_ok=True)
    results = [asyncio.run(run(store, args.scale, 27300 + 10 * i, args.heavy)) for i, store in enumerate(args.store or ["sqlite", "postgresql"])]
    columns = ["store", "events", "crm_load_s", "a_linked_per_s", "b_raw_kafka_per_s", "c_raw_insert_per_s", "ratio",
               "query_p50_ms", "query_p99_ms", "relinked", "relink_visible_s", "relink_s"]
    print(" | ".join(columns))
    for r in results:
        print(" | ".join(str(r.get(c, "")) for c in columns))
    (RUN_DIR / "bench" / "matcher.json").write_text(json.dumps(results, indent=2))
    print(f"bench matcher: ratio={results[0]['ratio']} target=0.5")


if __name__ == "__main__":
    main()
