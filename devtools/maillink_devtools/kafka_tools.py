"""Reading topics, producing records and waiting for consumer groups, on the real broker (tests, demo, bench)."""
import asyncio
import sys
import time

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient


async def read_topic(bootstrap: str, topic: str, *, expect: int | None = None, timeout: float = 30.0) -> list:
    """Every record on `topic` from the beginning; waits until `expect` records arrived (or timeout)."""
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest",
                                enable_auto_commit=False, group_id=None)
    await consumer.start()
    records, deadline = [], time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            batch = await consumer.getmany(timeout_ms=300)
            for recs in batch.values():
                records.extend(recs)
            if expect is not None and len(records) >= expect:
                await asyncio.sleep(0.5)  # catch anything beyond the expected count (duplicates)
                for recs in (await consumer.getmany(timeout_ms=300)).values():
                    records.extend(recs)
                break
            if expect is None and not batch and records:
                break
    finally:
        await consumer.stop()
    return records


async def produce(bootstrap: str, topic: str, items: list[tuple[bytes | None, bytes]]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await producer.start()
    try:
        for key, value in items:
            await producer.send_and_wait(topic, value, key=key)
    finally:
        await producer.stop()


async def wait_group_caught_up(bootstrap: str, group: str, topic: str, timeout: float = 30.0) -> None:
    """Waits until `group` has committed offsets at the end of every partition of `topic`."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=None)
    await admin.start()
    await consumer.start()
    deadline = time.monotonic() + timeout
    try:
        while True:
            (described,) = await admin.describe_topics([topic])
            tps = [TopicPartition(topic, p["partition"]) for p in described["partitions"]]
            ends = await consumer.end_offsets(tps) if tps else {}
            committed = await admin.list_consumer_group_offsets(group)
            lag = {tp: ends[tp] - (committed[tp].offset if tp in committed and committed[tp].offset >= 0 else 0)
                   for tp in tps}
            if tps and all(v <= 0 for v in lag.values()):
                return
            if time.monotonic() > deadline:
                raise AssertionError(f"group {group} did not catch up on {topic}: lag {lag}")
            await asyncio.sleep(0.3)
    finally:
        await consumer.stop()
        await admin.close()


# Every database a namespace can create, after the namespace's `<prefix>_`: the services'
# (Settings.database) and the test helpers' own `<namespace>_<service>` stores.
NAMESPACE_DATABASES = ([f"maillink_{s}" for s in ("ingest", "matcher", "tracker", "outbound", "bcc_gateway")]
                       + ["ingest", "matcher", "ingest_copy"])


def forget_namespace(bootstrap: str, mongodb_url: str, prefix: str) -> None:
    """drop_namespace for a benchmark's finally: best effort, said in words if it fails. Every namespace
    left behind costs the shared broker 6 partitions per topic for good (a machine that had run the
    benchmarks for a few weeks held 2,400 topics, 10,500 partition directories)."""
    try:
        asyncio.run(drop_namespace(bootstrap, mongodb_url, prefix, NAMESPACE_DATABASES))
    except Exception as exc:  # noqa: BLE001 - the figures are already in; the clean-up must not hide them
        print(f"clean-up of namespace {prefix} failed ({exc!r}); its topics and databases remain", file=sys.stderr)


async def drop_namespace(bootstrap: str, mongodb_url: str, prefix: str, databases: list[str] | None) -> None:
    """Deletes a namespace's topics and its databases `<prefix>_<name>` for each name (benchmarks and
    tests clean up after themselves). Named, not listed: listDatabases on a busy FerretDB can take
    minutes. `databases=None` lists them instead, for a private store that nothing else keeps busy."""
    from pymongo import AsyncMongoClient
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        doomed = [t for t in await admin.list_topics() if t.startswith(prefix)]
        if doomed:
            await admin.delete_topics(doomed)
    finally:
        await admin.close()
    client = AsyncMongoClient(mongodb_url, serverSelectionTimeoutMS=5000, socketTimeoutMS=60000)
    stem = prefix.replace(".", "_")
    try:
        names = ([name for name in await client.list_database_names() if name.startswith(stem)]
                 if databases is None else [f"{stem}{name}" for name in databases])
        for name in names:
            await client.drop_database(name)
    finally:
        await client.close()
