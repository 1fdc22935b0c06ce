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


async def test_replay_republishes_the_chosen_dead_letters_to_their_topic(namespace):
    """`maillink dlq replay`: after the cause is fixed, parked messages flow again, filtered by kind."""
    import os
    import subprocess
    import sys
    topic, group = f"{namespace}notes.v1", f"{namespace}group"
    broken = {2, 3}
    handled = []

    async def handler(note: Note, _msg) -> None:
        if note.n in broken:
            raise RuntimeError(f"bug for note {note.n}")
        handled.append(note.n)

    await produce(KAFKA, topic, [(b"k", Note(n=i).model_dump_json().encode()) for i in range(5)] + [(b"k", b"junk")])
    broker = bus.make_broker(KAFKA, "test")
    bus.subscribe(broker, topic, group, Note, handler, retries=1, backoff_s=0.01)
    await broker.start()
    try:
        await wait_group_caught_up(KAFKA, group, topic, timeout=60)
        assert handled == [0, 1, 4]
        env = {**os.environ, "KAFKA_BOOTSTRAP_SERVERS": KAFKA, "MAILLINK_NAMESPACE": namespace}
        cli = [sys.executable, "-m", "maillink_devtools.cli", "dlq"]
        listed = subprocess.run([*cli, "list", "notes.v1"], env=env, capture_output=True, text=True, check=True).stdout
        assert "3 record(s)" in listed and "bug for note 2" in listed and "undecodable" in listed
        broken.clear()  # the bug is fixed; replay only what failed, not the junk
        out = subprocess.run([*cli, "replay", "notes.v1", "--reason", "failed"], env=env, capture_output=True,
                             text=True, check=True).stdout
        assert "re-published 2 record(s)" in out
        await wait_group_caught_up(KAFKA, group, topic, timeout=60)
        await asyncio.sleep(0.5)
    finally:
        await broker.stop()
    assert handled == [0, 1, 4, 2, 3]


async def test_a_batch_consumer_isolates_the_failing_record_and_dead_letters_only_it(namespace):
    """bus.subscribe_batch: the records of a poll are handled together; when the batch fails, each
    record is handled alone, and only the one that still fails is parked (the others are applied)."""
    topic, group = f"{namespace}notes.v1", f"{namespace}group"
    calls, handled = [], []

    async def handler(notes: list[Note]) -> None:
        calls.append([n.n for n in notes])
        if any(n.poison for n in notes):
            raise RuntimeError("cannot handle a poisoned note")
        handled.extend(n.n for n in notes)

    items = [(b"k", Note(n=1).model_dump_json().encode()), (b"k", Note(n=2, poison=True).model_dump_json().encode()),
             (b"k", b"{not json"), (b"k", Note(n=4).model_dump_json().encode())]
    await produce(KAFKA, topic, items)
    broker = bus.make_broker(KAFKA, "test")
    bus.subscribe_batch(broker, topic, group, Note, handler, retries=2, backoff_s=0.01, batch_timeout_ms=500)
    await broker.start()
    try:
        await wait_group_caught_up(KAFKA, group, topic, timeout=60)
    finally:
        await broker.stop()

    assert sorted(handled) == [1, 4]
    assert any(len(c) > 1 for c in calls) and [2] in calls   # together first, then the failing one alone
    parked = [DeadLettered.model_validate_json(r.value) for r in await read_topic(KAFKA, dead_letter_topic(topic), expect=2)]
    assert sorted((p.offset, p.error_type) for p in parked) == [(1, "failed"), (2, "undecodable")]
    assert json.loads(base64.b64decode(next(p for p in parked if p.offset == 1).payload)) == {"n": 2, "poison": True}
