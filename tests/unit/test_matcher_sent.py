"""Outbound's sent event and ingest's Sent copy of one message (handlers/sent.py) through the
mailbox writer with in-memory ports: one record, one revision chain, whichever comes first."""
import pytest

from maillink_matcher.handlers.mail import MailDeps, handle_mail
from maillink_schemas.base import utcnow
from maillink_schemas.outbound import MessageSent
from tests.unit.matcher_fakes import FakeBus, FakeCrm, FakeMessages, FakeSettings, received

TOPICS = {"linked": "linked", "unlinked": "unlinked", "ignored": "ignored", "mailbox": "mailbox"}


@pytest.fixture
def world():
    store, crm, bus = FakeMessages(), FakeCrm(), FakeBus()
    crm.add("person", "p-jan", emails=["jan@acme.cz"])
    return MailDeps(store, crm, FakeSettings(), bus, TOPICS), store, bus


def pair(purpose="user"):
    copy = received("k1", "k1@x", sender="me@example.com", to=("jan@acme.cz",), folder="Sent", uid=3,
                    direction="outgoing")
    sent = MessageSent(event_id="s1", occurred_at=utcnow(), request_id="r1", message_key="k1", account_id="acc-1",
                       user_id="u1", message_id="k1@x", envelope=copy.envelope, size=10, sent_copy="appended",
                       sent_at=utcnow(), purpose=purpose)
    return sent, copy


@pytest.mark.parametrize("order", ["sent first", "synced first", "one batch"])
async def test_sent_and_synced_copies_are_one_record_linked_once(world, order):
    deps, store, bus = world
    sent, copy = pair()
    batches = {"sent first": [[sent], [copy]], "synced first": [[copy], [sent]], "one batch": [[sent, copy]]}[order]
    for batch in batches:
        await handle_mail(batch, deps)
    await handle_mail([sent, copy], deps)   # redelivered
    events = bus.of("linked")
    assert [(e.message_key, e.revision, e.direction) for e in events] == [("k1", 1, "outgoing")]
    assert events[0].person_ids == ["p-jan"]   # the sender's From is its own address, never a participant
    doc = store.messages["k1"]
    assert doc["raw"]["blob_id"] == copy.raw.blob_id and doc["locations"] == [copy.location.model_dump()]


async def test_mail_maillink_sends_itself_is_no_conversation(world):
    deps, store, bus = world
    sent, _ = pair(purpose="system")
    await handle_mail([sent], deps)
    assert bus.of("linked") == [] and store.messages == {}
