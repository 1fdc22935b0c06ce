"""The matcher's integrations with bcc-gateway and outbound, driven through Kafka and the HTTP API
against a real matcher process, the real broker and the real store (as in
test_matcher_rules_through_kafka.py, whose matcher process and World these tests share):

- a Smart Bcc deal address (`MessageReceived.deal_hint`) links the thread to that deal whatever
  the automatic rules say, or says in words why not;
- verified Smart Bcc alternative addresses (`mail.user.addresses.v1`) are the user's own: never
  participants, and mail already linked through them is re-checked;
- outbound's `mail.message.sent.v1` and ingest's copy in the Sent folder are one record with one
  revision chain, whichever arrives first.
"""
import asyncio
import json

import pytest

from maillink_devtools.kafka_tools import produce, read_topic
from maillink_schemas.base import utcnow
from maillink_schemas.bcc import UserAddressesVerified
from maillink_schemas.mail import Address, MessageReceived
from maillink_schemas.outbound import MessageSent
from tests.conftest import KAFKA
from tests.e2e.test_matcher_rules_through_kafka import matcher, world, eventually, messages, texts  # noqa: F401
from tests.unit.matcher_fakes import received

pytestmark = pytest.mark.e2e


async def publish_received(world, event: MessageReceived) -> None:
    await produce(KAFKA, f"{world.ns}mail.message.received.v1", [(event.account_id.encode(), event.model_dump_json().encode())])


def bcc_copy(world, key: str, deal: str, **kw) -> MessageReceived:
    event = received(world.id(key), f"{world.id(key)}@mail", user=world.id("alice"), account=world.id("acc"),
                     source="bcc", deal_hint=deal, company_id=world.company, to=[world.addr("alice", "me.example")], **kw)
    return event.model_copy(update={"location": None})   # a Smart Bcc copy sits in no folder


async def probe_until(world, sender: str, check, attempts: int = 20) -> dict:
    """Deals are not retroactive, so a probe that arrived before the CRM did proves nothing: send a
    fresh probe from `sender` until the matcher's view of it passes `check` (the CRM is stored)."""
    for attempt in range(attempts):
        key = await world.mail(f"probe{attempt}", sender=sender)
        view = await eventually(lambda: messages(world.get("/mail")), lambda m: key in m)
        detail = world.get(f"/threads/{view[key]['thread_id']}")
        if check(view[key], detail):
            return view[key]
        await asyncio.sleep(1)
    raise AssertionError(f"the matcher never saw the CRM records for {sender}")


async def test_a_deal_specific_smart_bcc_address_links_the_thread_to_that_deal(world):
    await world.user("alice")
    jan = await world.person("Jan Novák", world.addr("jan"))
    priya = await world.person("Priya", world.addr("priya"))
    automatic = await world.deal("Automatic", jan)
    named = await world.deal("Named deal", priya, company_id=world.company)
    foreign = await world.deal("Foreign deal", priya, company_id="another-company")
    await probe_until(world, world.addr("jan"), lambda m, _: m["deal_id"] == automatic)
    await probe_until(world, world.addr("priya"), lambda _, t: {s["title"] for s in t["suggestions"]}
                      == {"Named deal", "Foreign deal"})
    await publish_received(world, bcc_copy(world, "m1", named, sender=world.addr("jan")))
    await publish_received(world, bcc_copy(world, "m2", foreign, sender=world.addr("jan")))
    view = await eventually(lambda: messages(world.get("/mail")), lambda m: {world.id("m1"), world.id("m2")} <= m.keys())
    hinted, refused = view[world.id("m1")], view[world.id("m2")]
    assert hinted["deal_id"] == named and hinted["source"] == "bcc"
    assert "linked to deal Named deal because the message was sent to that deal's Smart Bcc address" in texts(hinted)
    assert refused["deal_id"] == automatic
    assert ("not linked to deal Foreign deal named by the Smart Bcc address: it is not a deal of your company"
            in texts(refused))
    assert world.id("m1") in messages(world.get(f"/deals/{named}/conversations"))


async def test_verified_smart_bcc_addresses_are_own_addresses_and_recheck_past_mail(world):
    await world.user("alice")
    private = world.addr("alice", "home.example")
    me_as_person = await world.person("Alice at home", private)
    jan = await world.person("Jan", world.addr("jan"))
    await world.settled()
    key = await world.mail("m1", sender=private, cc=[world.addr("jan")])
    before = await eventually(lambda: messages(world.get("/mail")), lambda m: key in m)
    assert sorted(before[key]["person_ids"]) == sorted([me_as_person, jan])
    verified = UserAddressesVerified(event_id=world.id("v1"), occurred_at=utcnow(), user_id=world.id("alice"),
                                     company_id=world.company, addresses=[private], version=1)
    await produce(KAFKA, f"{world.ns}mail.user.addresses.v1", [(world.id("alice").encode(), verified.model_dump_json().encode())])
    after = await eventually(lambda: messages(world.get("/mail")), lambda m: m[key]["person_ids"] == [jan])
    assert after[key]["person_ids"] == [jan]
    assert messages(world.get(f"/persons/{me_as_person}/conversations")) == {}


def sent_pair(world, key: str) -> tuple[MessageSent, MessageReceived]:
    """Outbound's event and ingest's Sent copy of one message. Only outbound knows the Bcc (Eva),
    so whichever arrives second is visible in the record."""
    copy = received(world.id(key), f"{world.id(key)}@mail", user=world.id("alice"), account=world.id("acc"),
                    sender=world.addr("alice", "me.example"), to=[world.addr("jan")], folder="Sent", uid=7,
                    direction="outgoing")
    copy = copy.model_copy(update={"account_addresses": [world.addr("alice", "me.example")]})
    envelope = copy.envelope.model_copy(update={"bcc": [Address(email=world.addr("eva"))]})
    sent = MessageSent(event_id=world.id(f"sent-{key}"), occurred_at=utcnow(), request_id=world.id(f"req-{key}"),
                       message_key=copy.message_key, account_id=copy.account_id, user_id=copy.user_id,
                       message_id=copy.envelope.message_id, envelope=envelope, snippet=copy.snippet, size=1234,
                       sent_copy="appended", sent_folder="Sent", sent_at=utcnow())
    return sent, copy


async def linked_revisions(world, key: str) -> list[dict]:
    records = await read_topic(KAFKA, f"{world.ns}mail.message.linked.v1", expect=10**6, timeout=5)
    return [e for r in records if (e := json.loads(r.value))["message_key"] == key]


@pytest.mark.parametrize("first", ["sent", "synced"])
async def test_a_sent_message_is_one_record_with_one_revision_chain_whichever_arrives_first(world, first):
    jan = await world.person("Jan", world.addr("jan"))
    eva = await world.person("Eva", world.addr("eva"))
    await world.settled()
    sent, copy = sent_pair(world, "m1")
    key = copy.message_key

    async def publish_sent():
        await produce(KAFKA, f"{world.ns}mail.message.sent.v1", [(sent.account_id.encode(), sent.model_dump_json().encode())])

    if first == "sent":
        await publish_sent()
        view = await eventually(lambda: messages(world.get("/mail")), lambda m: key in m)
        assert view[key]["source"] == "outbound" and view[key]["folders"] == [] and view[key]["raw_url"] is None
        await publish_received(world, copy)
    else:
        await publish_received(world, copy)
        view = await eventually(lambda: messages(world.get("/mail")), lambda m: key in m)
        assert view[key]["person_ids"] == [jan]
        await publish_sent()
    both = await eventually(lambda: messages(world.get("/mail")),
                            lambda m: key in m and m[key]["folders"] == ["Sent"] and sorted(m[key]["person_ids"]) == sorted([jan, eva]))
    record = both[key]
    assert record["direction"] == "outgoing" and sorted(record["person_ids"]) == sorted([jan, eva])
    assert record["folders"] == ["Sent"] and record["raw_url"]       # the raw MIME from the synced copy
    await publish_received(world, copy)                                # a redelivery on top changes nothing
    await publish_sent()
    await asyncio.sleep(2)
    chain = await linked_revisions(world, key)
    # One chain: revisions 1..n, each published once, all outgoing; the last one has both persons.
    assert [e["revision"] for e in chain] == list(range(1, len(chain) + 1))
    assert len({e["event_id"] for e in chain}) == len(chain) and {e["direction"] for e in chain} == {"outgoing"}
    assert sorted(chain[-1]["person_ids"]) == sorted([jan, eva])
    # The first sighting's revision already had everything the second brought, or the second added Eva.
    assert len(chain) == (1 if first == "sent" else 2)
