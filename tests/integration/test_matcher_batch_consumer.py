"""The matcher's batch subscriber on the real broker: a failing record is isolated, retried a
bounded number of times and parked with its reason; the rest of its batch is applied; the offsets
are committed; an outage keeps the offsets and the batch is read again."""
import base64
import json

import pytest
from pydantic import BaseModel
from pymongo.errors import ServerSelectionTimeoutError

from maillink_matcher.entrypoints.consumers import subscribe_batch
from maillink_runtime import bus
from maillink_schemas.dead_letter import DeadLettered
from tests.conftest import KAFKA
from maillink_devtools.kafka_tools import produce, read_topic, wait_group_caught_up

pytestmark = pytest.mark.integration


class Note(BaseModel):
    n: int
    poison: bool = False


class Other(BaseModel):
    other: str


async def test_a_poison_record_in_a_batch_is_parked_alone_and_the_rest_is_applied(namespace):
    notes, others, group = f"{namespace}notes.v1", f"{namespace}others.v1", f"{namespace}group"
    batches, applied, attempts = [], [], {}

    async def handler(items) -> None:
        batches.append(len(items))
        for item in items:
            if isinstance(item, Note):
                attempts[item.n] = attempts.get(item.n, 0) + 1
                if item.poison:
                    raise RuntimeError(f"cannot handle note {item.n}")
        applied.extend(items)

    await produce(KAFKA, notes, [(b"k", Note(n=i, poison=i == 3).model_dump_json().encode()) for i in range(6)]
                  + [(b"k", b"{not json")])
    await produce(KAFKA, others, [(b"k", Other(other="x").model_dump_json().encode())])
    broker = bus.make_broker(KAFKA, "test")
    subscribe_batch(broker, {notes: Note, others: Other}, group, "test", handler, retries=2, backoff_s=0.01)
    await broker.start()
    try:
        await wait_group_caught_up(KAFKA, group, notes, timeout=60)
        await wait_group_caught_up(KAFKA, group, others, timeout=60)
    finally:
        await broker.stop()

    assert sorted(n.n for n in applied if isinstance(n, Note)) == [0, 1, 2, 4, 5]
    assert any(isinstance(o, Other) for o in applied)
    assert max(batches) > 1                      # consumed in batches
    assert attempts[3] >= 3                      # 2 as part of the batch, then 2 alone
    parked = [DeadLettered.model_validate_json(r.value) for r in await read_topic(KAFKA, f"{notes}.dlq", expect=2)]
    assert sorted((p.offset, p.error_type) for p in parked) == [(3, "failed"), (6, "undecodable")]
    failed = next(p for p in parked if p.error_type == "failed")
    assert json.loads(base64.b64decode(failed.payload)) == {"n": 3, "poison": True} and failed.attempts == 2


async def test_an_outage_keeps_the_offsets_and_the_batch_is_read_again(namespace):
    topic, group = f"{namespace}notes.v1", f"{namespace}group"
    calls, applied = {"n": 0}, []

    async def handler(items) -> None:
        calls["n"] += 1
        if calls["n"] <= 3:   # the store is unreachable for a while
            raise ServerSelectionTimeoutError("store down")
        applied.extend(i.n for i in items)

    await produce(KAFKA, topic, [(b"k", Note(n=i).model_dump_json().encode()) for i in range(3)])
    broker = bus.make_broker(KAFKA, "test")
    subscribe_batch(broker, {topic: Note}, group, "test", handler, retries=2, backoff_s=0.01)
    await broker.start()
    try:
        await wait_group_caught_up(KAFKA, group, topic, timeout=60)
    finally:
        await broker.stop()
    assert sorted(set(applied)) == [0, 1, 2]
    assert await read_topic(KAFKA, f"{topic}.dlq", timeout=3) == []   # nothing parked for an outage
