"""matcher's handlers against the real store and broker: store once, publish once, link right,
indexes that survive a crash between two writes, and re-linking when a person appears."""
import dataclasses

import pytest

from maillink_matcher.adapters.alternative_addresses import AlternativeAddresses
from maillink_matcher.adapters.facts_cache import FactsCache
from maillink_matcher.adapters.facts_clock import FactsClock
from maillink_matcher.adapters.messages import MessageStore
from maillink_matcher.adapters.writer_cache import CachedMessages
from maillink_matcher.adapters.projections import BULK_MIN, CrmProjections
from maillink_matcher.adapters.queries import QueryStore
from maillink_matcher.adapters.settings import SettingsStore
from maillink_matcher.domain.visibility import Viewer
from maillink_matcher.handlers.facts import FactsDeps, handle_facts
from maillink_matcher.handlers.mail import MailDeps, handle_mail
from maillink_runtime import bus, mongo
from maillink_schemas import crm
from maillink_schemas.base import utcnow
from maillink_schemas.bcc import UserAddressesVerified
from maillink_schemas.mail import MessageLinked
from maillink_schemas.matcher import RecheckRequested
from tests.conftest import KAFKA, MONGODB_URL
from tests.unit.matcher_fakes import received
from maillink_devtools.kafka_tools import read_topic

pytestmark = pytest.mark.integration


class Crash(Exception):
    pass


@pytest.fixture(params=["plain", "cached", "evicting"])
async def matcher(namespace, request):
    """`cached`: wired as app.py wires it, with the writer's caches and the facts clock; `evicting`:
    the same with room for 2 message and thread documents, so documents dropped from memory are
    read again (the results must not change)."""
    client = mongo.connect(MONGODB_URL)
    db = client[f"{namespace.strip('.')}_matcher"]
    broker = bus.make_broker(KAFKA, "test")
    await broker.start()
    topics = {name: f"{namespace}mail.message.{name}.v1" for name in ("linked", "unlinked", "ignored")}
    topics["mailbox"] = f"{namespace}mail.mailbox.command.v1"
    rechecks: list[RecheckRequested] = []

    async def publish(events):
        for topic, key, event in events:
            if isinstance(event, RecheckRequested):
                rechecks.append(event)
            else:
                await bus.publish(broker, topic, event, key=key)

    store, projections, settings = MessageStore(db), CrmProjections(db), SettingsStore(db)
    await store.ensure_indexes()
    if request.param in ("cached", "evicting"):
        clock = FactsClock(db)
        known = FactsCache(projections, settings, clock)
        own = CachedMessages(store, max_docs=2) if request.param == "evicting" else CachedMessages(store)
        mail = MailDeps(own, known, known, publish, topics, clock=known)
        facts = FactsDeps(projections, settings, store, publish, "recheck", AlternativeAddresses(db), clock)
    else:
        mail = MailDeps(store, projections, settings, publish, topics)
        facts = FactsDeps(projections, settings, store, publish, "recheck", AlternativeAddresses(db))
    yield mail, facts, topics["linked"], db, rechecks
    await broker.stop()
    await client.drop_database(db.name)
    await client.close()


async def linked(topic, expect):
    events = [MessageLinked.model_validate_json(r.value) for r in await read_topic(KAFKA, topic, expect=expect, timeout=10)]
    latest: dict[str, MessageLinked] = {}
    for e in events:
        if e.message_key not in latest or latest[e.message_key].revision < e.revision:
            latest[e.message_key] = e
    return events, latest


async def test_redelivery_and_second_folder_store_once_and_publish_once(matcher):
    mail, facts, topic, db, _ = matcher
    await handle_facts([crm.PersonUpserted(person_id="p-jan", emails=["JAN@acme.cz"])], facts)
    first = received("k1", "m1@x")
    await handle_mail([first], mail)
    await handle_mail([first], mail)                                            # redelivery
    await handle_mail([received("k1", "m1@x", folder="Sent", uid=9)], mail)    # same message, other folder
    events, _ = await linked(topic, 1)
    assert len(events) == 1 and events[0].person_ids == ["p-jan"]
    doc = await db["messages"].find_one({"_id": "k1"})
    assert len(doc["locations"]) == 2


async def test_a_person_created_after_their_mail_picks_it_up(matcher):
    mail, facts, topic, _, rechecks = matcher
    await handle_mail([received("k1", "m1@x"), received("k2", "m2@x", sender="other@y.org")], mail)
    await handle_facts([crm.PersonUpserted(person_id="p-jan", name="Jan", emails=["jan@acme.cz"])], facts)
    assert [r.message_keys for r in rechecks] == [["k1"]]
    await handle_mail(rechecks, mail)
    _, latest = await linked(topic, 3)
    assert latest["k1"].person_ids == ["p-jan"] and latest["k1"].revision == 2
    assert latest["k2"].person_ids == []


async def test_exactly_one_open_deal_links_the_thread_and_replies_stay_on_it(matcher):
    mail, facts, topic, _, _ = matcher
    await handle_facts([crm.PersonUpserted(person_id="p-jan", emails=["jan@acme.cz"]),
                        crm.DealUpserted(deal_id="d1", person_ids=["p-jan"])], facts)
    await handle_mail([received("k1", "root@x")], mail)
    await handle_facts([crm.DealUpserted(deal_id="d2", person_ids=["p-jan"])], facts)
    await handle_mail([received("k2", "reply@x", refs=["root@x"]), received("k3", "other@x")], mail)
    _, latest = await linked(topic, 3)
    assert latest["k1"].deal_id == "d1" and latest["k2"].deal_id == "d1" and latest["k3"].deal_id is None
    assert latest["k1"].thread_id == latest["k2"].thread_id != latest["k3"].thread_id


async def test_a_reply_finds_its_thread_after_other_mail_pushed_it_out_of_memory(matcher):
    # With the `evicting` cache, the thread of k1 and k1 itself are dropped from memory by the later
    # threads; the reply must still join it and keep its deal (read again by `_id`), not start anew.
    mail, facts, topic, _, _ = matcher
    await handle_facts([crm.PersonUpserted(person_id="p-jan", emails=["jan@acme.cz"]),
                        crm.DealUpserted(deal_id="d1", person_ids=["p-jan"])], facts)
    await handle_mail([received("k1", "root@x")], mail)
    for i in range(4):
        await handle_mail([received(f"o{i}", f"other{i}@x", sender=f"someone{i}@else.example")], mail)
    await handle_facts([crm.DealUpserted(deal_id="d2", person_ids=["p-jan"])], facts)
    await handle_mail([received("k2", "reply@x", refs=["root@x"])], mail)
    await handle_mail([received("k1", "root@x", folder="Archive", uid=5)], mail)   # k1 seen again: one record
    _, latest = await linked(topic, 6)
    assert latest["k2"].thread_id == latest["k1"].thread_id and latest["k2"].deal_id == "d1"
    assert len(latest) == 6


async def test_closed_deals_get_no_new_links_and_stale_crm_versions_are_ignored(matcher):
    mail, facts, topic, _, _ = matcher
    await handle_facts([crm.PersonUpserted(person_id="p-jan", emails=["jan@acme.cz"]),
                        crm.DealUpserted(deal_id="d1", person_ids=["p-jan"], version=2, status="won"),
                        crm.DealUpserted(deal_id="d1", person_ids=["p-jan"], version=1)], facts)  # stale replay
    await handle_mail([received("k1", "m@x")], mail)
    (event,), _ = await linked(topic, 1)
    assert event.deal_id is None and event.person_ids == ["p-jan"]


async def test_a_deal_won_after_the_writer_read_it_gets_no_new_thread(matcher):
    mail, facts, topic, _, _ = matcher
    await handle_facts([crm.PersonUpserted(person_id="p-jan", emails=["jan@acme.cz"]),
                        crm.DealUpserted(deal_id="d1", person_ids=["p-jan"])], facts)
    await handle_mail([received("k1", "m1@x")], mail)      # the writer now knows d1 as open
    await handle_facts([crm.DealUpserted(deal_id="d1", person_ids=["p-jan"], version=2, status="won")], facts)
    await handle_facts([crm.PersonUpserted(person_id="p-eva", emails=["eva@acme.cz"])], facts)
    await handle_mail([received("k2", "m2@x"), received("k3", "m3@x", sender="eva@acme.cz")], mail)
    _, latest = await linked(topic, 3)
    assert latest["k1"].deal_id == "d1" and latest["k2"].deal_id is None
    assert latest["k3"].person_ids == ["p-eva"]


async def test_private_mail_is_never_shown_to_another_user(matcher):
    mail, facts, _, db, _ = matcher
    from maillink_schemas.matcher import MailSettingsChanged
    from maillink_schemas.base import utcnow
    from datetime import timedelta
    await handle_facts([crm.PersonUpserted(person_id="p-jan", emails=["jan@acme.cz"]),
                        crm.UserUpserted(user_id="u1", company_id="c1"), crm.UserUpserted(user_id="u2", company_id="c1"),
                        MailSettingsChanged(event_id="s", occurred_at=utcnow() - timedelta(minutes=1), owner_id="u1",
                                            version=1, sharing_default="private")], facts)
    await handle_mail([received("k1", "m@x")], mail)
    queries = QueryStore(db, facts.crm)
    assert [d["_id"] for d in (await queries.page(Viewer("u1", "c1"), {"person_ids": "p-jan"}, 10))[0]] == ["k1"]
    assert (await queries.page(Viewer("u2", "c1", is_admin=True), {"person_ids": "p-jan"}, 10))[0] == []


async def test_own_alternative_addresses_are_not_linked_as_persons(matcher):
    mail, facts, topic, _, _ = matcher
    await handle_facts([crm.UserUpserted(user_id="u1", emails=["alice@alias.example.com"]),
                        crm.PersonUpserted(person_id="p-self", emails=["alice@alias.example.com"])], facts)
    await handle_mail([received("k1", "m@x", sender="alice@alias.example.com", cc=["nobody@x.org"])], mail)
    (event,), _ = await linked(topic, 1)
    assert event.person_ids == []


async def test_address_and_open_deal_indexes_follow_crm_changes(matcher):
    _, facts, _, _, _ = matcher
    c = facts.crm
    await handle_facts([crm.PersonUpserted(person_id="p1", emails=["old@acme.cz"], version=1),
                        crm.PersonUpserted(person_id="p1", emails=["new@acme.cz"], version=2)], facts)
    assert await c.persons_by_address(["old@acme.cz"]) == {}
    assert await c.persons_by_address(["new@acme.cz"]) == {"new@acme.cz": ("p1",)}
    await handle_facts([crm.PersonUpserted(person_id="p1", emails=["new@acme.cz"], version=3, deleted=True)], facts)
    assert await c.persons_by_address(["new@acme.cz"]) == {}
    await handle_facts([crm.DealUpserted(deal_id="d1", person_ids=["p1", "p2"], version=1)], facts)
    assert await c.open_items_of("deal", ["p2"]) == {"p2": ("d1",)}
    await handle_facts([crm.DealUpserted(deal_id="d1", person_ids=["p1"], version=2)], facts)
    assert await c.open_items_of("deal", ["p2"]) == {}
    await handle_facts([crm.DealUpserted(deal_id="d1", person_ids=["p1"], version=3, status="lost"),
                        crm.DealUpserted(deal_id="d1", person_ids=["p1"], version=2)], facts)  # stale: ignored
    assert await c.open_items_of("deal", ["p1"]) == {}


@pytest.mark.parametrize("crash_in", ["after_record", "index_pull", "follow_up"])
async def test_a_crash_between_two_writes_of_a_crm_update_is_repaired_by_redelivery(matcher, crash_in, monkeypatch):
    _, facts, _, _, _ = matcher
    c = facts.crm
    await handle_facts([crm.DealUpserted(deal_id="d1", person_ids=["p1"], version=1)], facts)
    moved = crm.DealUpserted(deal_id="d1", person_ids=["p2"], version=2)
    original = c.open_items["deal"].collection.update_one

    async def failing(query, update, **kw):
        if crash_in == "after_record" or "$pull" in update:
            raise Crash()
        return await original(query, update, **kw)

    async def follow_up(old, new):
        raise Crash()

    monkeypatch.setattr(c.open_items["deal"].collection, "update_one",
                        original if crash_in == "follow_up" else failing)
    with pytest.raises(Crash):
        await c.deals.apply(moved, follow_up if crash_in == "follow_up" else None)
    monkeypatch.undo()
    # The record is already overwritten; on main, the index then stayed wrong for good.
    assert (await c.deals.collection.find_one({"_id": "d1"}))["person_ids"] == ["p2"]
    await handle_facts([moved], facts)   # the redelivery
    assert await c.open_items_of("deal", ["p1", "p2"]) == {"p2": ("d1",)}
    await handle_facts([crm.DealUpserted(deal_id="d1", person_ids=["p2"], version=3, status="won")], facts)
    assert await c.open_items_of("deal", ["p1", "p2"]) == {}
    # The rebuild command derives the same index from the records, whatever the index held.
    await original({"_id": "p1"}, {"$addToSet": {"ids": "d1"}}, upsert=True)
    await c.rebuild_indexes()
    assert await c.open_items_of("deal", ["p1", "p2"]) == {}


@pytest.mark.parametrize("crash_in", ["none", "index", "follow_up", "mark"])
async def test_a_crash_in_the_middle_of_a_bulk_crm_batch_is_repaired_by_redelivery(matcher, crash_in, monkeypatch):
    """A batch of new records goes the bulk way (adapters/projections.py): records inserted, index
    entries added, the past mail of the new persons re-checked, then the attempt marked finished.
    Killed between any two of those, the redelivered batch finishes the job; the records are then
    indexed exactly as the one-record way would have left them."""
    mail, facts, topic, db, rechecks = matcher
    c = facts.crm
    await handle_mail([received("k1", "m1@x", sender="jan@acme.cz")], mail)
    batch = [crm.PersonUpserted(person_id=f"p{i}", emails=[f"p{i}@acme.cz"]) for i in range(BULK_MIN)]
    batch += [crm.PersonUpserted(person_id="p-jan", name="Jan", emails=["jan@acme.cz"], organization_id="o1")]
    batch += [crm.DealUpserted(deal_id=f"d{i}", person_ids=["p-jan" if i == 1 else "p0"]) for i in range(1, BULK_MIN + 1)]
    crashing = facts
    if crash_in == "index":       # the records are in, their index entries are half written
        original = c.address_persons.add_many

        async def half(entries):
            await original(dict(sorted(entries.items())[:3]))
            raise Crash()
        monkeypatch.setattr(c.address_persons, "add_many", half)
    elif crash_in == "follow_up":  # indexed, the re-check not published
        async def failing(events):
            raise Crash()
        crashing = dataclasses.replace(facts, publish=failing)
    elif crash_in == "mark":       # indexed and re-checked, the attempt not marked finished
        async def unmarked(doc):
            raise Crash()
        monkeypatch.setattr(c.persons, "_batches", type("Batches", (), {
            "insert_one": staticmethod(unmarked), "find_one": db["crm_batches"].find_one})())
    if crash_in != "none":
        with pytest.raises(Crash):
            await handle_facts(batch, crashing)
        monkeypatch.undo()
        rechecks.clear()
    await handle_facts(batch, facts)   # the redelivery (or, for "none", the first delivery)
    expected = {f"p{i}@acme.cz": (f"p{i}",) for i in range(BULK_MIN)} | {"jan@acme.cz": ("p-jan",)}
    others = tuple(sorted(f"d{i}" for i in range(2, BULK_MIN + 1)))
    assert await c.persons_by_address(sorted(expected)) == expected
    assert await c.persons_of_organization("o1") == ["p-jan"]
    assert await c.open_items_of("deal", ["p-jan", "p0"]) == {"p-jan": ("d1",), "p0": others}
    assert await db["crm_batches"].count_documents({}) >= 1    # it went the bulk way
    assert ["k1"] in [r.message_keys for r in rechecks]   # the past mail of the person who appeared
    await handle_mail([r for r in rechecks if "k1" in r.message_keys][:1], mail)
    _, latest = await linked(topic, 2)
    assert latest["k1"].person_ids == ["p-jan"]
    # Delivered once more, a finished batch writes and re-checks nothing.
    rechecks.clear()
    await handle_facts(batch, facts)
    assert rechecks == []
    # Later changes move the index from what the bulk way stored.
    await handle_facts([crm.PersonUpserted(person_id="p-jan", emails=["new@acme.cz"], version=2),
                        crm.DealUpserted(deal_id="d1", person_ids=["p-jan"], version=2, status="won")], facts)
    assert await c.persons_by_address(["jan@acme.cz", "new@acme.cz"]) == {"new@acme.cz": ("p-jan",)}
    assert await c.persons_of_organization("o1") == []
    assert await c.open_items_of("deal", ["p-jan"]) == {}
    stored = await db["persons"].find_one({"_id": "p-jan"})
    assert stored["indexed"] == ["new@acme.cz"] and "pending" not in stored
    # The rebuild derives the same indexes from the records, bulk-inserted ones included.
    await c.rebuild_indexes()
    assert await c.persons_by_address(sorted(expected)) == {k: v for k, v in expected.items() if k != "jan@acme.cz"}
    assert await c.open_items_of("deal", ["p-jan", "p0"]) == {"p0": others}


async def test_verified_smart_bcc_addresses_become_own_addresses_and_recheck_the_users_mail(matcher):
    mail, facts, topic, db, rechecks = matcher
    await handle_facts([crm.PersonUpserted(person_id="p-home", emails=["me@home.example"])], facts)
    await handle_mail([received("k1", "m1@x", sender="me@home.example", to=("jan@acme.cz",))], mail)
    _, latest = await linked(topic, 1)
    assert latest["k1"].person_ids == ["p-home"]
    rechecks.clear()
    verified = UserAddressesVerified(event_id="a1", occurred_at=utcnow(), user_id="u1", addresses=["Me@Home.example"],
                                     version=2)
    await handle_facts([verified], facts)
    await handle_facts([verified], facts)                         # a redelivery re-checks nothing more
    await handle_facts([verified.model_copy(update={"addresses": [], "version": 1})], facts)  # older: ignored
    assert [r.message_keys for r in rechecks] == [["k1"]]
    await handle_mail(rechecks, mail)
    _, latest = await linked(topic, 2)
    assert latest["k1"].person_ids == [] and latest["k1"].revision == 2
    assert (await db["user_accounts"].find_one({"_id": "u1"}))["smart_bcc"] == ["me@home.example"]
