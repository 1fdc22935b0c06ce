"""bcc-gateway's intake with fakes of its own interfaces: blob before event, 451 when either fails."""
import pytest

from maillink_bcc_gateway.domain.senders import Owner, Standing
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

    async def open(self, blob_id):
        return self.stored.get(blob_id)


def arrival(raw=RAW, mail_from="alice@x.test"):
    return Arrival("127.0.0.1", "mua", mail_from, ["company-1@bcc.example"], None, raw)


async def test_blob_is_stored_before_the_event_is_published():
    blobs, published = FakeBlobs(), []

    async def publish(event):
        assert event.raw.blob_id in blobs.stored  # the claim-check resolves when the event is seen
        published.append(event)

    assert await accept(arrival(), IntakeDeps(FakeDirectory(), blobs, publish)) is None
    assert len(published) == 1 and published[0].user_id == "u-a"


@pytest.mark.parametrize("blob_fails,publish_fails", [(True, False), (False, True)])
async def test_a_store_or_broker_failure_is_a_451_so_the_sender_retries(blob_fails, publish_fails):
    published = []

    async def publish(event):
        if publish_fails:
            raise ConnectionError("broker down")
        published.append(event)

    refusal = await accept(arrival(), IntakeDeps(FakeDirectory(), FakeBlobs(fail=blob_fails), publish))
    assert refusal.code == 451 and refusal.reason == "store_unavailable" and not published


async def test_from_header_is_checked_even_when_the_envelope_passes():
    async def publish(event):
        raise AssertionError("must not publish")

    refusal = await accept(arrival(RAW.replace(b"From: alice@x.test", b"From: eve@x.test")),
                           IntakeDeps(FakeDirectory(), FakeBlobs(), publish))
    assert refusal.reason == "from_not_allowed"
