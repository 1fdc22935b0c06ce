"""bcc-gateway's intake with fakes of its own interfaces: blob before event, 451 when either fails."""
import asyncio

import pytest

from maillink_bcc_gateway.domain.senders import Owner, Standing
from maillink_bcc_gateway.commit import GroupCommit
from maillink_bcc_gateway.intake import Arrival, IntakeDeps, accept

RAW = b"From: alice@x.test\r\nTo: jan@acme.test\r\nSubject: s\r\nMessage-ID: <m@x>\r\n\r\nbody\r\n"


class FakeDirectory:
    def owner(self, address):
        return Owner("u-a", "c-1", Standing.LOGIN) if address.lower() == "alice@x.test" else None

    def own_addresses(self, user_id):
        return ("alice@x.test",)


class FakeBlobs:
    def __init__(self, fail=False):
        self.stored, self.fail = {}, fail

    async def put_many(self, blobs):
        if self.fail:
            raise OSError("disk full")
        self.stored.update(blobs)

    async def get(self, blob_id):
        return self.stored.get(blob_id)


def arrival(raw=RAW, mail_from="alice@x.test"):
    return Arrival("127.0.0.1", "mua", mail_from, ["company-1@bcc.example"], None, raw)


async def test_blob_is_stored_before_the_event_is_published():
    blobs, published = FakeBlobs(), []

    async def publish(events):
        for event in events:
            assert event.raw.blob_id in blobs.stored  # the claim-check resolves when the event is seen
        published.extend(events)

    assert await accept(arrival(), IntakeDeps(FakeDirectory(), GroupCommit(blobs, publish).commit)) is None
    assert len(published) == 1 and published[0].user_id == "u-a"


@pytest.mark.parametrize("blob_fails,publish_fails", [(True, False), (False, True)])
async def test_a_store_or_broker_failure_is_a_451_so_the_sender_retries(blob_fails, publish_fails):
    published = []

    async def publish(events):
        if publish_fails:
            raise ConnectionError("broker down")
        published.extend(events)

    commit = GroupCommit(FakeBlobs(fail=blob_fails), publish).commit
    refusal = await accept(arrival(), IntakeDeps(FakeDirectory(), commit))
    assert refusal.code == 451 and refusal.reason == "store_unavailable" and not published


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


async def test_concurrent_messages_share_store_batches_and_each_blob_is_durable_before_its_event():
    stores, published = [], []

    class SlowBlobs(FakeBlobs):
        async def put_many(self, blobs):
            await asyncio.sleep(0)  # a flush, during which more sessions finish DATA
            stores.append(len(blobs))
            await super().put_many(blobs)

    blobs = SlowBlobs()

    async def publish(events):
        assert all(e.raw.blob_id in blobs.stored for e in events)
        published.extend(events)

    commit = GroupCommit(blobs, publish).commit
    raws = [RAW.replace(b"body", f"body {i}".encode()) for i in range(10)]
    results = await asyncio.gather(*(accept(arrival(raw), IntakeDeps(FakeDirectory(), commit)) for raw in raws))
    assert results == [None] * 10 and sum(stores) == 10 and len(stores) < 10 and len(published) == 10
