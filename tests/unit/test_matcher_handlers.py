"""The mailbox writer (handlers/mail.py) with in-memory fakes of its ports: links are derived and
re-derived, and a crash between any two writes is repaired by handling the same records again."""
import pytest

from maillink_matcher.handlers.mail import MailDeps, handle_mail
from maillink_schemas.base import utcnow
from maillink_schemas.mail import MessageExpunged
from maillink_schemas.matcher import RecheckRequested, ThreadAction, ThreadCommand
from tests.unit.matcher_fakes import Crash, FakeBus, FakeCrm, FakeMessages, FakeSettings, received

TOPICS = {"linked": "linked", "unlinked": "unlinked", "ignored": "ignored", "mailbox": "mailbox"}


@pytest.fixture
def world():
    store, crm, settings, bus = FakeMessages(), FakeCrm(), FakeSettings(), FakeBus()
    return MailDeps(store, crm, settings, bus, TOPICS), store, crm, settings, bus


def latest(bus, key):
    return max((e for e in bus.of("linked") if e.message_key == key), key=lambda e: e.revision)


async def test_a_person_created_after_their_mail_is_linked_by_a_recheck(world):
    deps, store, crm, _, bus = world
    await handle_mail([received("k1")], deps)
    assert latest(bus, "k1").person_ids == []
    crm.add("person", "p-jan", name="Jan Novák", emails=["jan@acme.cz"])
    await handle_mail([RecheckRequested(event_id="r", occurred_at=utcnow(), account_id="acc-1",
                                        message_keys=["k1"], cause="person appeared")], deps)
    event = latest(bus, "k1")
    assert event.person_ids == ["p-jan"] and event.revision == 2
    assert any(r.code == "person.address" and "Jan Novák" in r.text for r in event.reasons)


async def test_the_deal_decided_by_a_reply_reaches_the_earlier_messages_of_its_thread(world):
    deps, store, crm, _, bus = world
    await handle_mail([received("k1", "root@x", sender="someone@else.org")], deps)
    crm.add("person", "p-jan", emails=["jan@acme.cz"])
    crm.add("deal", "d1", title="ACME", status="open", person_ids=["p-jan"])
    await handle_mail([received("k2", "reply@x", refs=["root@x"])], deps)
    assert latest(bus, "k2").deal_id == "d1" and latest(bus, "k1").deal_id == "d1"
    assert latest(bus, "k1").thread_id == latest(bus, "k2").thread_id


async def test_a_chain_arriving_newest_first_with_in_reply_to_only_is_one_thread(world):
    deps, _, _, _, bus = world
    await handle_mail([received("c", "c@x", irt="b@x")], deps)
    await handle_mail([received("b", "b@x", irt="a@x")], deps)
    await handle_mail([received("a", "a@x")], deps)
    assert len({latest(bus, k).thread_id for k in "abc"}) == 1


async def test_a_parent_arriving_after_two_split_replies_merges_their_threads(world):
    deps, store, _, _, bus = world
    await handle_mail([received("c", "c@x", irt="b@x")], deps)   # thread from b
    await handle_mail([received("a", "a@x")], deps)               # thread from a
    await handle_mail([received("b", "b@x", irt="a@x")], deps)   # ties them together
    threads = {latest(bus, k).thread_id for k in "abc"}
    assert len(threads) == 1
    assert {store.messages[k]["thread_id"] for k in "abc"} == threads


@pytest.mark.parametrize("step", ["outbox", "messages", "threads", "refs", "publish"])
async def test_a_crash_between_any_two_writes_is_repaired_by_redelivery(world, step):
    deps, store, crm, _, bus = world
    crm.add("person", "p-jan", emails=["jan@acme.cz"])
    crm.add("deal", "d1", status="open", person_ids=["p-jan"])
    await handle_mail([received("c", "c@x", irt="b@x")], deps)
    await handle_mail([received("a", "a@x", sender="x@y.org")], deps)
    batch = [received("b", "b@x", irt="a@x")]
    if step == "publish":
        bus.fail = True
    else:
        store.fail_at = step
    with pytest.raises(Crash):
        await handle_mail(batch, deps)
    bus.fail, store.fail_at = False, None
    await handle_mail(batch, deps)   # the redelivery
    events = {k: latest(bus, k) for k in "abc"}
    assert len({e.thread_id for e in events.values()}) == 1
    assert {store.messages[k]["thread_id"] for k in "abc"} == {events["a"].thread_id}
    assert all(e.deal_id == "d1" for e in events.values())
    assert all(store.messages[k]["published_revision"] == store.messages[k]["revision"] for k in "abc")


async def test_redelivery_changes_nothing_and_publishes_nothing_new(world):
    deps, store, _, _, bus = world
    await handle_mail([received("k1")], deps)
    before, sent = dict(store.messages["k1"]), len(bus.sent)
    await handle_mail([received("k1")], deps)
    await handle_mail([received("k1", folder="Archive", uid=7)], deps)
    assert len(bus.sent) == sent
    assert store.messages["k1"]["revision"] == before["revision"]
    assert len(store.messages["k1"]["locations"]) == 2


async def test_expunged_from_every_folder_is_unlinked(world):
    deps, store, _, _, bus = world
    await handle_mail([received("k1"), received("k1", folder="Archive", uid=3)], deps)
    gone = MessageExpunged(event_id="e1", occurred_at=utcnow(), message_key="k1", account_id="acc-1",
                           location={"folder": "INBOX", "uidvalidity": 1, "uid": 1})
    await handle_mail([gone], deps)
    assert bus.of("unlinked") == [] and store.messages["k1"]["status"] == "active"
    await handle_mail([MessageExpunged.model_validate({**gone.model_dump(), "location": {"folder": "Archive", "uidvalidity": 1, "uid": 3}})], deps)
    (unlinked,) = bus.of("unlinked")
    assert unlinked.reason == "expunged" and store.messages["k1"]["status"] == "expunged"


async def test_delete_in_the_mail_tab_unlinks_and_with_sync_back_orders_ingest_to_delete(world):
    deps, store, _, settings, bus = world
    settings.history["user:u1"] = [{"version": 1, "effective_at": utcnow(), "sync_back": True}]
    await handle_mail([received("k1")], deps)
    thread = store.messages["k1"]["thread_id"]
    await handle_mail([ThreadCommand(event_id="c", occurred_at=utcnow(), action=ThreadAction.DELETE_MESSAGE,
                                     user_id="u1", account_id="acc-1", thread_id=thread, message_key="k1")], deps)
    assert bus.of("unlinked")[0].reason == "deleted"
    (order,) = bus.of("mailbox")
    assert order.action == "delete" and order.locations[0].folder == "INBOX"


async def test_only_the_owner_commands_a_thread(world):
    deps, store, crm, _, bus = world
    await handle_mail([received("k1")], deps)
    thread = store.messages["k1"]["thread_id"]
    await handle_mail([ThreadCommand(event_id="c", occurred_at=utcnow(), action=ThreadAction.LINK, user_id="intruder",
                                     account_id="acc-1", thread_id=thread, kind="deal", record_id="d9")], deps)
    assert store.messages["k1"].get("deal_id") is None


async def test_header_variant_copies_merge_their_participants(world):
    deps, store, crm, _, bus = world
    crm.add("person", "p-eva", emails=["eva@acme.cz"])
    await handle_mail([received("k1", cc=["x@acme.cz"])], deps)
    await handle_mail([received("k1", cc=["eva@acme.cz"], folder="Archive", uid=2)], deps)
    assert latest(bus, "k1").person_ids == ["p-eva"]
    assert {"x@acme.cz", "eva@acme.cz"} <= set(store.messages["k1"]["addresses"])


async def test_a_person_added_while_the_batch_is_in_flight_is_not_missed(world):
    """The facts consumer adds the person and looks for affected messages after the writer resolved
    the message but before it stored it: the writer notices once stored and re-resolves."""
    deps, store, crm, _, bus = world
    flush = store.flush

    async def flush_while_person_appears(messages, threads, refs):
        crm.add("person", "p-jan", emails=["jan@acme.cz"])   # ...and its re-check finds nothing stored yet
        await flush(messages, threads, refs)

    store.flush = flush_while_person_appears
    await handle_mail([received("k1")], deps)
    assert latest(bus, "k1").person_ids == ["p-jan"]
    assert store.messages["k1"]["person_ids"] == ["p-jan"]
