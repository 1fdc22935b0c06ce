"""matcher's handler against the real store and broker: store once, publish once, link right."""
import json
from datetime import datetime, timezone
from pathlib import Path

import pytest

from maillink_matcher.adapters.messages import MessageStore
from maillink_matcher.adapters.projections import CrmProjections
from maillink_matcher.handlers import MatcherDeps, on_received
from maillink_runtime import bus, mongo
from maillink_schemas import crm
from maillink_schemas.mail import MessageLinked, MessageReceived, Visibility
from tests.conftest import KAFKA, MONGODB_URL
from maillink_devtools.kafka_tools import read_topic

pytestmark = pytest.mark.integration
SAMPLE = json.loads((Path(__file__).resolve().parents[2] / "schemas/samples/MessageReceived.json").read_text())


def received(key: str, message_id: str, *, refs=(), sender="jan@acme.cz", cc=(), folder="INBOX", uid=1, **extra):
    doc = json.loads(json.dumps(SAMPLE))
    doc.update(message_key=key, event_id=f"ev-{key}-{folder}-{uid}", **extra)
    doc["location"] = {"folder": folder, "uidvalidity": 1, "uid": uid}
    doc["envelope"].update(message_id=message_id, references=list(refs), in_reply_to=list(refs[-1:]),
                           cc=[{"email": c} for c in cc])
    doc["envelope"]["from"] = [{"email": sender}]
    return MessageReceived.model_validate(doc)


@pytest.fixture
async def matcher(namespace):
    client = mongo.connect(MONGODB_URL)
    db = client[f"{namespace.strip('.')}_matcher"]
    broker = bus.make_broker(KAFKA, "test")
    await broker.start()
    topic = f"{namespace}mail.message.linked.v1"

    async def publish(event):
        await bus.publish(broker, topic, event, key=event.account_id)

    store, crm_ = MessageStore(db), CrmProjections(db)
    await store.ensure_indexes()
    yield MatcherDeps(store, crm_, publish), topic, store
    await broker.stop()
    await client.drop_database(db.name)
    await client.close()


async def linked(topic, expect):
    return [MessageLinked.model_validate_json(r.value) for r in await read_topic(KAFKA, topic, expect=expect, timeout=10)]


async def test_redelivery_and_second_folder_store_once_and_publish_once(matcher):
    deps, topic, store = matcher
    await deps.crm.upsert_person(crm.PersonUpserted(person_id="p-jan", emails=["JAN@acme.cz"]))
    first = received("k1", "m1@x")
    await on_received(first, deps)
    await on_received(first, deps)                               # redelivery
    await on_received(received("k1", "m1@x", folder="Sent", uid=9), deps)  # same message, other folder
    events = await linked(topic, 1)
    assert len(events) == 1 and events[0].person_ids == ["p-jan"]
    doc = await store.get("k1")
    assert len(doc["locations"]) == 2


async def test_exactly_one_open_deal_links_the_thread_and_replies_stay_on_it(matcher):
    deps, topic, _ = matcher
    await deps.crm.upsert_person(crm.PersonUpserted(person_id="p-jan", emails=["jan@acme.cz"]))
    await deps.crm.upsert_deal(crm.DealUpserted(deal_id="d1", person_ids=["p-jan"]))
    await on_received(received("k1", "root@x"), deps)
    # A second open deal appears; the thread keeps d1 because it already has it.
    await deps.crm.upsert_deal(crm.DealUpserted(deal_id="d2", person_ids=["p-jan"]))
    await on_received(received("k2", "reply@x", refs=["root@x"]), deps)
    # A new thread with two open deals: nothing is linked automatically.
    await on_received(received("k3", "other@x"), deps)
    events = {e.message_key: e for e in await linked(topic, 3)}
    assert events["k1"].deal_id == "d1" and events["k2"].deal_id == "d1" and events["k3"].deal_id is None
    assert events["k1"].thread_id == events["k2"].thread_id != events["k3"].thread_id


async def test_closed_deals_get_no_new_links_and_stale_crm_versions_are_ignored(matcher):
    deps, topic, _ = matcher
    await deps.crm.upsert_person(crm.PersonUpserted(person_id="p-jan", emails=["jan@acme.cz"]))
    await deps.crm.upsert_deal(crm.DealUpserted(deal_id="d1", person_ids=["p-jan"], version=2, status="won"))
    await deps.crm.upsert_deal(crm.DealUpserted(deal_id="d1", person_ids=["p-jan"], version=1))  # stale replay
    await on_received(received("k1", "m@x"), deps)
    (event,) = await linked(topic, 1)
    assert event.deal_id is None and event.person_ids == ["p-jan"]


async def test_private_mail_is_never_shown_to_another_user(matcher):
    deps, _, store = matcher
    private = MatcherDeps(deps.messages, deps.crm, deps.publish_linked, default_visibility=Visibility.PRIVATE)
    await deps.crm.upsert_person(crm.PersonUpserted(person_id="p-jan", emails=["jan@acme.cz"]))
    await on_received(received("k1", "m@x"), private)
    assert [d["_id"] for d in await store.visible({"person_ids": "p-jan"}, "u1", 10)] == ["k1"]
    assert await store.visible({"person_ids": "p-jan"}, "admin", 10) == []


async def test_own_alternative_addresses_are_not_linked_as_persons(matcher):
    deps, topic, _ = matcher
    await deps.crm.users.upsert(crm.UserUpserted(user_id="u1", emails=["alice@alias.example.com"]))
    await deps.crm.upsert_person(crm.PersonUpserted(person_id="p-self", emails=["alice@alias.example.com"]))
    await on_received(received("k1", "m@x", sender="alice@alias.example.com", cc=["nobody@x.org"]), deps)
    (event,) = await linked(topic, 1)
    assert event.person_ids == []


async def test_address_and_open_deal_indexes_follow_crm_changes(matcher):
    deps, _, _ = matcher
    await deps.crm.upsert_person(crm.PersonUpserted(person_id="p1", emails=["old@acme.cz"], version=1))
    await deps.crm.upsert_person(crm.PersonUpserted(person_id="p1", emails=["new@acme.cz"], version=2))
    assert await deps.crm.persons_by_address(["old@acme.cz"]) == []
    assert await deps.crm.persons_by_address(["new@acme.cz"]) == ["p1"]
    await deps.crm.upsert_person(crm.PersonUpserted(person_id="p1", emails=["new@acme.cz"], version=3, deleted=True))
    assert await deps.crm.persons_by_address(["new@acme.cz"]) == []

    await deps.crm.upsert_deal(crm.DealUpserted(deal_id="d1", person_ids=["p1", "p2"], version=1))
    assert await deps.crm.open_deals_of(["p2"]) == {"d1"}
    await deps.crm.upsert_deal(crm.DealUpserted(deal_id="d1", person_ids=["p1"], version=2))
    assert await deps.crm.open_deals_of(["p2"]) == set()
    await deps.crm.upsert_deal(crm.DealUpserted(deal_id="d1", person_ids=["p1"], version=3, status="lost"))
    assert await deps.crm.open_deals_of(["p1"]) == set() and not await deps.crm.deal_is_open("d1")
    await deps.crm.upsert_deal(crm.DealUpserted(deal_id="d1", person_ids=["p1"], version=2))  # stale: ignored
    assert await deps.crm.open_deals_of(["p1"]) == set()
