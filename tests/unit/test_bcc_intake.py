"""bcc-gateway's intake with fakes of its own interfaces: blob written before the event, 250 only after
the flush and the ack, 451 when any step fails."""
import asyncio
import hashlib

import pytest

from maillink_bcc_gateway.domain.senders import Owner, Standing
from maillink_bcc_gateway.commit import GroupCommit
from maillink_bcc_gateway.intake import Arrival, IntakeDeps, accept
from maillink_schemas.mail import MessageReceived

RAW = b"From: alice@x.test\r\nTo: jan@acme.test\r\nSubject: s\r\nMessage-ID: <m@x>\r\n\r\nbody\r\n"


class FakeDirectory:
    def owner(self, address):
        return Owner("u-a", "c-1", Standing.LOGIN) if address.lower() == "alice@x.test" else None

    def own_addresses(self, user_id):
        return ("alice@x.test",)


class FakeBlobs:
    def __init__(self, fail_write=False, fail_flush=False):
        self.stored, self.durable, self.fail_write, self.fail_flush = {}, set(), fail_write, fail_flush

    async def write_many(self, blobs):
        if self.fail_write:
            raise OSError("disk full")
        self.stored.update(blobs)

    async def flush_many(self, blob_ids):
        if self.fail_flush:
            raise OSError("I/O error")
        assert all(b in self.stored for b in blob_ids)
        self.durable.update(blob_ids)

    async def get(self, blob_id):
        return self.stored.get(blob_id)


def arrival(raw=RAW, mail_from="alice@x.test"):
    return Arrival("127.0.0.1", "mua", mail_from, ["company-1@bcc.example"], None, raw)


async def test_blob_is_written_before_the_event_is_published_and_the_250_waits_for_flush_and_ack():
    flush_may_end, published = asyncio.Event(), []

    class SlowFlush(FakeBlobs):
        async def flush_many(self, blob_ids):
            await flush_may_end.wait()  # a slow disk: the event is published meanwhile
            await super().flush_many(blob_ids)

    blobs = SlowFlush()

    async def publish(events):
        for event in events:
            event = MessageReceived.model_validate_json(event.payload)  # as published
            assert event.raw.blob_id in blobs.stored  # written (readable) before Kafka sees the event
            published.append(event)

    session = asyncio.create_task(accept(arrival(), IntakeDeps(FakeDirectory(), GroupCommit(blobs, publish).commit)))
    for _ in range(10):
        await asyncio.sleep(0)
    assert len(published) == 1 and published[0].user_id == "u-a"  # published while the flush runs
    assert not session.done() and not blobs.durable                 # but no 250 before the blob is durable
    flush_may_end.set()
    assert await session is None and blobs.durable == {published[0].raw.blob_id}


@pytest.mark.parametrize("failing", ["write", "flush", "publish"])
async def test_a_store_or_broker_failure_is_a_451_so_the_sender_retries(failing):
    published = []

    async def publish(events):
        if failing == "publish":
            raise ConnectionError("broker down")
        published.extend(events)

    blobs = FakeBlobs(fail_write=failing == "write", fail_flush=failing == "flush")
    refusal = await accept(arrival(), IntakeDeps(FakeDirectory(), GroupCommit(blobs, publish).commit))
    assert refusal.code == 451 and refusal.reason == "store_unavailable"
    if failing == "write":
        assert not published  # nothing reaches Kafka for bytes that were never written


async def test_from_header_is_checked_even_when_the_envelope_passes():
    async def commit(blob_id, raw, event):
        raise AssertionError("must not store or publish")

    refusal = await accept(arrival(RAW.replace(b"From: alice@x.test", b"From: eve@x.test")),
                           IntakeDeps(FakeDirectory(), commit))
    assert refusal.reason == "from_not_allowed"


async def test_concurrent_messages_share_publish_batches_and_each_waits_for_its_own():
    blobs, batches = FakeBlobs(), []

    async def publish(events):
        await asyncio.sleep(0)  # a broker round trip, during which more sessions finish DATA
        batches.append(len(events))

    commit = GroupCommit(blobs, publish).commit
    raws = [RAW.replace(b"body", f"body {i}".encode()) for i in range(10)]
    results = await asyncio.gather(*(accept(arrival(raw), IntakeDeps(FakeDirectory(), commit)) for raw in raws))
    assert results == [None] * 10 and sum(batches) == 10 and len(batches) < 10
    assert len(blobs.stored) == 10


async def test_concurrent_messages_share_flushes_and_each_waits_for_its_own_blob():
    flushes, answered = [], []

    class SlowBlobs(FakeBlobs):
        async def flush_many(self, blob_ids):
            await asyncio.sleep(0)  # a flush, during which more sessions finish DATA
            flushes.append(len(blob_ids))
            await super().flush_many(blob_ids)

    blobs = SlowBlobs()

    async def publish(events):
        pass

    commit = GroupCommit(blobs, publish).commit

    async def session(raw):
        result = await accept(arrival(raw), IntakeDeps(FakeDirectory(), commit))
        answered.append(hashlib.sha256(raw).hexdigest() in blobs.durable)
        return result

    raws = [RAW.replace(b"body", f"body {i}".encode()) for i in range(10)]
    results = await asyncio.gather(*(session(raw) for raw in raws))
    assert results == [None] * 10 and sum(flushes) == 10 and len(flushes) < 10 and answered == [True] * 10
