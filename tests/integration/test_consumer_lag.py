"""maillink_consumer_lag on the real broker: records behind a consumer that is stuck in its handler
are reported, per group and topic, and the gauge returns to 0 once the consumer has caught up."""
import asyncio

import pytest
from prometheus_client import REGISTRY
from pydantic import BaseModel

from maillink_devtools.kafka_tools import produce, wait_group_caught_up
from maillink_runtime import bus, lag
from tests.conftest import KAFKA

pytestmark = pytest.mark.integration


class Note(BaseModel):
    n: int


def reported(group: str, topic: str) -> float | None:
    return REGISTRY.get_sample_value("maillink_consumer_lag", {"group": group, "topic": topic})


async def wait_until(predicate, timeout: float = 30) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not predicate():
        assert asyncio.get_running_loop().time() < deadline, "condition not reached"
        await asyncio.sleep(0.2)


async def test_lag_counts_what_a_stuck_consumer_has_not_handled_then_drops_to_zero(namespace):
    topic, group = f"{namespace}notes.v1", f"{namespace}lag-group"
    release, entered = asyncio.Event(), asyncio.Event()

    async def handler(note: Note, _msg) -> None:
        entered.set()
        await release.wait()

    await produce(KAFKA, topic, [(b"k", Note(n=i).model_dump_json().encode()) for i in range(10)])  # one partition
    broker = bus.make_broker(KAFKA, "test")
    bus.subscribe(broker, topic, group, Note, handler)
    await broker.start()
    try:
        await asyncio.wait_for(entered.wait(), 60)

        async def refreshed() -> float | None:
            await lag.refresh(broker)
            return reported(group, topic)
        # The first record is in the handler; the nine behind it are the lag.
        for _ in range(50):
            if await refreshed() == 9:
                break
            await asyncio.sleep(0.2)
        assert reported(group, topic) == 9
        release.set()
        await wait_group_caught_up(KAFKA, group, topic, timeout=60)
        for _ in range(50):
            if await refreshed() == 0:
                break
            await asyncio.sleep(0.2)
        assert reported(group, topic) == 0
    finally:
        release.set()
        await broker.stop()
    await lag.refresh(broker)
    assert reported(group, topic) is None  # a stopped consumer's partitions are not reported any more


def test_totals_sum_partitions_and_skip_unknown_high_watermarks():
    readings = [("g", "t", 10, 4), ("g", "t", 7, 7), ("g", "u", None, 0), ("h", "t", 3, 5)]
    assert lag.totals(readings) == {("g", "t"): 6, ("h", "t"): 0}
