"""At-least-once without loss or blocking, proven on the real broker: a failing handler parks its
message on the dead-letter topic with the reason, and the messages behind it still flow."""
import asyncio
import base64
import json

import pytest
from pydantic import BaseModel

from maillink_runtime import bus
from maillink_schemas.dead_letter import DeadLettered
from maillink_schemas.topics import dead_letter_topic
from tests.conftest import KAFKA
from maillink_devtools.kafka_tools import produce, read_topic, wait_group_caught_up

pytestmark = pytest.mark.integration


class Note(BaseModel):
    n: int
    poison: bool = False


async def test_poison_goes_to_dlq_and_the_partition_keeps_flowing(namespace):
    topic, group = f"{namespace}notes.v1", f"{namespace}group"
    handled, attempts = [], {}

    async def handler(note: Note, _msg) -> None:
        attempts[note.n] = attempts.get(note.n, 0) + 1
        if note.poison:
            raise RuntimeError(f"cannot handle note {note.n}")
        handled.append(note.n)

    # One key: all on one partition, so "behind it" is meaningful.
    items = [(b"k", Note(n=1).model_dump_json().encode()), (b"k", Note(n=2, poison=True).model_dump_json().encode()),
             (b"k", b"{not json"), (b"k", Note(n=4).model_dump_json().encode())]
    await produce(KAFKA, topic, items)

    broker = bus.make_broker(KAFKA, "test")
    bus.subscribe(broker, topic, group, Note, handler, retries=3, backoff_s=0.01)
    await broker.start()
    try:
        await wait_group_caught_up(KAFKA, group, topic, timeout=60)
    finally:
        await broker.stop()

    assert handled == [1, 4]
    assert attempts[2] == 3  # retried a bounded number of times, then parked
    parked = [DeadLettered.model_validate_json(r.value) for r in await read_topic(KAFKA, dead_letter_topic(topic), expect=2)]
    assert [(p.offset, p.error_type, p.attempts) for p in parked] == [(1, "failed", 3), (2, "undecodable", 0)]
    assert "cannot handle note 2" in parked[0].error
    assert json.loads(base64.b64decode(parked[0].payload)) == {"n": 2, "poison": True}  # nothing lost
    assert base64.b64decode(parked[1].payload) == b"{not json"
    assert parked[0].key == base64.b64encode(b"k").decode()


async def test_a_restarted_consumer_does_not_reprocess_committed_messages(namespace):
    topic, group = f"{namespace}notes.v1", f"{namespace}group"
    handled = []

    async def handler(note: Note, _msg) -> None:
        handled.append(note.n)

    await produce(KAFKA, topic, [(b"k", Note(n=i).model_dump_json().encode()) for i in range(5)])
    for _ in range(2):
        broker = bus.make_broker(KAFKA, "test")
        bus.subscribe(broker, topic, group, Note, handler)
        await broker.start()
        await wait_group_caught_up(KAFKA, group, topic, timeout=60)
        await asyncio.sleep(0.5)
        await broker.stop()
    assert handled == [0, 1, 2, 3, 4]
