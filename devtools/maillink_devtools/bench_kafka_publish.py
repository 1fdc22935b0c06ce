"""Publishing ingest's received events to Kafka, by producer setting: linger.ms and compression.

20,000 real MessageReceived events (built by ingest's own code from the bench mailbox) are
published as ingest publishes them: groups of 200 through `bus.publish_many`, each group awaited
until acknowledged (acks=all, idempotent), one group at a time. Each setting gets a topic of its
own in a fresh namespace; the figure is msg/s. Only what aiokafka supports without extra packages is measured
(gzip; lz4/zstd/snappy need packages ingest does not install). Results go to
.run/bench/kafka-publish.json.
"""
import argparse
import asyncio
import json
import os
import time
import uuid
from datetime import datetime, timezone

from .ingest_process import KAFKA, MONGODB_URL, RUN_DIR
from .kafka_tools import drop_namespace
from .mailgen import bench_mailbox

SETTINGS = [(0, None), (5, None), (20, None), (5, "gzip")]


def events(count: int) -> list:
    from maillink_ingest.domain.envelope import parse
    from maillink_ingest.domain.identity import blob_id
    from maillink_ingest.domain.received import received_event
    from maillink_schemas.accounts import AccountConfigured, ImapEndpoint, Security
    account = AccountConfigured(event_id="e", occurred_at=datetime.now(timezone.utc), account_id="bench",
                                user_id="u", email="bench@example.com", username="bench@example.com",
                                imap=ImapEndpoint(host="127.0.0.1", port=143, security=Security.PLAIN),
                                secret_ciphertext="x")
    out = []
    for uid, raw in enumerate(bench_mailbox(count, "bench@example.com"), 1):
        out.append(("bench", received_event(account, "INBOX", 1, uid, (), None, False, raw, blob_id(raw), parse(raw))))
    return out


async def publish_all(setting: tuple[int, str | None], topic: str, evs: list, group: int) -> float:
    from faststream.kafka import KafkaBroker
    from maillink_runtime import bus
    linger, compression = setting
    broker = KafkaBroker(KAFKA, client_id="bench", acks="all", enable_idempotence=True, logger=None,
                         linger_ms=linger, compression_type=compression)
    await broker.start()
    try:
        await bus.publish_many(broker, topic, evs[:10])  # metadata, connection
        started = time.perf_counter()
        for i in range(0, len(evs), group):
            await bus.publish_many(broker, topic, evs[i:i + group])
        return time.perf_counter() - started
    finally:
        await broker.stop()


async def measure(count: int, group: int) -> list[dict]:
    from aiokafka.admin import AIOKafkaAdminClient, NewTopic
    evs = events(count)
    namespace = f"benchkp{uuid.uuid4().hex[:6]}."
    admin = AIOKafkaAdminClient(bootstrap_servers=KAFKA)
    await admin.start()
    results = []
    try:
        for linger, compression in SETTINGS:
            topic = f"{namespace}received-{linger}-{compression or 'none'}"
            await admin.create_topics([NewTopic(topic, 3, 1)])
            seconds = await publish_all((linger, compression), topic, evs, group)
            results.append({"linger_ms": linger, "compression": compression or "none", "seconds": seconds,
                            "msg_per_s": count / seconds})
            print(f"linger.ms {linger:>3}  compression {compression or 'none':<5}  {count / seconds:>8.0f} msg/s",
                  flush=True)
    finally:
        await admin.close()
        await drop_namespace(KAFKA, MONGODB_URL, namespace, [])
    return results


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--messages", type=int, default=20_000)
    parser.add_argument("--group", type=int, default=200)
    args = parser.parse_args()
    results = asyncio.run(measure(args.messages, args.group))
    out = RUN_DIR / "bench" / "kafka-publish.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"messages": args.messages, "group": args.group, "load": os.getloadavg(),
                               "results": results}, indent=2))
    print(f"load {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
