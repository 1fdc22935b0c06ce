"""A store outage is not a poison message: with the store stopped for seconds while messages flow,
nothing is dead-lettered, nothing is lost, and the consumer resumes where it paused."""
import asyncio
import os
import subprocess
import uuid

import pytest
from pydantic import BaseModel
from pymongo import AsyncMongoClient
from pymongo.errors import DuplicateKeyError

from maillink_devtools.kafka_tools import produce, read_topic, wait_group_caught_up
from maillink_runtime import bus
from maillink_schemas.topics import dead_letter_topic
from tests.conftest import KAFKA, ROOT, RUN_DIR

pytestmark = pytest.mark.integration


class Note(BaseModel):
    n: int


def private_store(action: str, port: int, run_dir) -> None:
    """A store of this test's own (same script as the shared one, its own port and data), so
    stopping it disturbs nothing else."""
    env = {**os.environ, "MONGO_PORT": str(port), "MAILLINK_RUN_DIR": str(run_dir)}
    env.pop("MONGODB_URL", None)
    subprocess.run(["bash", str(ROOT / "deploy/local/store.sh"), action], env=env, check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


@pytest.fixture
def store(tmp_path):
    port = 27200 + uuid.uuid4().int % 500
    private_store("start", port, tmp_path)
    yield port, tmp_path
    private_store("stop", port, tmp_path)


async def test_a_store_outage_pauses_the_consumer_and_loses_nothing(namespace, store):
    port, run_dir = store
    topic, group = f"{namespace}notes.v1", f"{namespace}group"
    client = AsyncMongoClient(f"mongodb://127.0.0.1:{port}/", serverSelectionTimeoutMS=500)
    notes = client["outage"]["notes"]
    handled = []

    async def handler(note: Note, _msg) -> None:
        try:
            await notes.insert_one({"_id": note.n})
        except DuplicateKeyError:
            pass  # idempotent: a retried insert that had landed
        handled.append(note.n)
        if note.n == 4:
            # The store goes away in the middle of the stream.
            await asyncio.to_thread(private_store, "stop", port, run_dir)

    await produce(KAFKA, topic, [(b"k", Note(n=i).model_dump_json().encode()) for i in range(20)])
    broker = bus.make_broker(KAFKA, "test")
    bus.subscribe(broker, topic, group, Note, handler, retries=2, backoff_s=0.05, max_outage_backoff_s=1)
    await broker.start()
    try:
        await asyncio.sleep(6)  # several handler attempts against a dead store
        assert handled == [0, 1, 2, 3, 4]
        await asyncio.to_thread(private_store, "start", port, run_dir)
        await wait_group_caught_up(KAFKA, group, topic, timeout=90)
    finally:
        await broker.stop()
    assert handled == list(range(20))
    assert sorted([d["_id"] async for d in notes.find()]) == list(range(20))
    assert await read_topic(KAFKA, dead_letter_topic(topic), timeout=2) == []
    await client.close()
