"""The tracker's adapters on the real store and broker: registrations (idempotent, unsafe links
refused), hits (idempotent, purged after retention), and the batching publisher (every event
acknowledged once, on the partition aiokafka's own partitioner picks, in order per key)."""
import asyncio
import json
from datetime import datetime, timedelta, timezone

import pytest
from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from maillink_devtools.kafka_tools import read_topic
from maillink_runtime import mongo
from maillink_runtime.settings import KafkaSettings
from maillink_schemas.tracking import TrackedLink, TrackingOpened, TrackingRegistered
from maillink_tracker.adapters.hits import HitStore
from maillink_tracker.adapters.publisher import EventPublisher
from maillink_tracker.adapters.registrations import RegistrationStore
from tests.conftest import KAFKA, MONGODB_URL

pytestmark = pytest.mark.integration
NOW = datetime.now(timezone.utc)


@pytest.fixture
async def db(namespace):
    client = mongo.connect(MONGODB_URL)
    database = client[f"{namespace.replace('.', '_')}maillink_tracker"]
    yield database
    await client.drop_database(database.name)
    await client.close()


def registered(key="m-1", links=()) -> TrackingRegistered:
    return TrackingRegistered(event_id=f"r-{key}", occurred_at=NOW, message_key=key, account_id="acc", user_id="u-1",
                              links=[TrackedLink(index=i, url=u) for i, u in enumerate(links)],
                              sent_at=NOW - timedelta(minutes=5))


async def test_registrations_are_idempotent_and_keep_only_safe_links(db):
    store = RegistrationStore(db)
    event = registered(links=["https://acme.example/a", "javascript:alert(1)", "https://acme.example/b\r\nX: y"])
    assert await store.upsert(event) == 2
    assert await store.upsert(event) == 2  # a redelivery changes nothing
    assert await db["registrations"].count_documents({}) == 1
    fresh = RegistrationStore(db)  # no cache: read from the store
    found = await fresh.get("m-1")
    assert found.links == {0: "https://acme.example/a"} and found.user_id == "u-1"
    assert abs((found.delivered_at - event.sent_at).total_seconds()) < 0.01  # sent time, not registration time
    assert await fresh.get("unknown") is None


async def test_a_registration_with_a_tracking_id_is_found_by_it_and_by_its_message_key(db):
    # Outbound's tokens carry the tracking id (the message key digests the body the URLs are in).
    store = RegistrationStore(db)
    await store.ensure_indexes()
    event = registered(key="6495eefcada4258efd5dc52ae000a870", links=["https://acme.example/a"])
    event = event.model_copy(update={"tracking_id": "3f0c2b1e9d8a7f6e5d4c3b2a19087f6e"})
    await store.upsert(event)
    await store.upsert(event)
    assert await db["registrations"].count_documents({}) == 1
    fresh = RegistrationStore(db)
    by_token = await fresh.get("3f0c2b1e9d8a7f6e5d4c3b2a19087f6e")
    assert by_token.message_key == event.message_key and by_token.links == {0: "https://acme.example/a"}
    assert await fresh.get(event.message_key) is None  # tokens never carry this message's key
    assert (await fresh.by_message_key(event.message_key)).links == by_token.links
    # A registration without a tracking id (older outbound, tests): the token carries the key.
    await store.upsert(registered(key="m-2", links=["https://acme.example/b"]))
    assert (await fresh.get("m-2")).message_key == "m-2" == (await fresh.by_message_key("m-2")).message_key


async def test_hits_are_recorded_once_and_purged_after_retention(db):
    hits = HitStore(db)
    await hits.ensure_indexes()
    opened = TrackingOpened(event_id="e-1", occurred_at=NOW, message_key="m-1", user_agent_family="Chrome",
                            network="203.0.113.0/24", classification="human")
    await hits.record_event(opened, "m-1")
    await hits.record_event(opened, "m-1")
    await hits.record_head("h-1", "m-1", "click", 2, "198.51.100.0/24", "Barracuda", NOW - timedelta(days=500))
    recorded = await hits.recorded("m-1")
    assert sorted(r.kind for r in recorded) == ["head", "open"]
    assert await hits.purge(NOW, timedelta(days=400)) == 1
    assert [r.kind for r in await hits.recorded("m-1")] == ["open"]
    doc = await db["hits"].find_one({"_id": "e-1"})
    assert set(doc) >= {"network", "ua_family"} and "ip" not in doc and "user_agent" not in doc


async def test_the_batching_publisher_delivers_each_event_once_on_the_default_partition(namespace):
    topic = f"{namespace}mail.tracking.opened.v1"
    admin = AIOKafkaAdminClient(bootstrap_servers=KAFKA)
    await admin.start()
    await admin.create_topics([NewTopic(topic, 6, 1), NewTopic(f"{topic}.ref", 6, 1)])
    await admin.close()
    publisher = EventPublisher(KafkaSettings(), "test-tracker", linger_ms=5, wait_s=10)
    await publisher.start()
    keys = [f"message-{i}".encode() for i in range(5)]
    try:
        results = await asyncio.gather(*[publisher.publish(topic, keys[i % 5], json.dumps({"n": i}).encode())
                                         for i in range(500)])
    finally:
        await publisher.stop()
    assert results == [True] * 500 and publisher.acked == 500
    records = await read_topic(KAFKA, topic, expect=500)
    assert len(records) == 500
    # Same partition as a plain producer would choose for the key, and in order within it.
    plain = AIOKafkaProducer(bootstrap_servers=KAFKA)
    await plain.start()
    try:
        reference = {k: (await plain.send_and_wait(f"{topic}.ref", b"x", key=k)).partition for k in keys}
    finally:
        await plain.stop()
    for key in keys:
        mine = [r for r in records if r.key == key]
        assert {r.partition for r in mine} == {reference[key]}
        numbers = [json.loads(r.value)["n"] for r in sorted(mine, key=lambda r: r.offset)]
        assert numbers == sorted(numbers) and len(numbers) == 100


async def test_a_cancelled_request_does_not_cancel_its_batch(namespace):
    topic = f"{namespace}mail.tracking.opened.v1"
    publisher = EventPublisher(KafkaSettings(), "test-tracker", linger_ms=50, wait_s=10)
    await publisher.start()
    try:
        assert await publisher.publish(topic, b"k", b'{"n": -1}')  # the partition is known from here on
        tasks = [asyncio.create_task(publisher.publish(topic, b"k", json.dumps({"n": i}).encode())) for i in range(10)]
        await asyncio.sleep(0.01)  # all appended to one open batch, which lingers 50 ms
        tasks[0].cancel()
        results = await asyncio.gather(*tasks[1:])
    finally:
        await publisher.stop()
    assert results == [True] * 9
    assert len(await read_topic(KAFKA, topic, expect=11)) == 11  # the cancelled request's event went too
