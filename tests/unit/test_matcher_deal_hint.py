"""Smart Bcc deal hints (domain/deal_hint.py, handlers/deal_hints.py) through the mailbox writer with
in-memory ports: the thread takes the named deal whatever the automatic rules say, unless the deal
is unknown, another company's, invisible to the owner or closed; then the reason says so."""
import pytest

from maillink_matcher.handlers.mail import MailDeps, handle_mail
from maillink_schemas.base import utcnow
from maillink_schemas.matcher import RecheckRequested, RecordKind, ThreadAction, ThreadCommand
from tests.unit.matcher_fakes import Crash, FakeBus, FakeCrm, FakeMessages, FakeSettings, received

TOPICS = {"linked": "linked", "unlinked": "unlinked", "ignored": "ignored", "mailbox": "mailbox"}


@pytest.fixture
def world():
    store, crm, settings, bus = FakeMessages(), FakeCrm(), FakeSettings(), FakeBus()
    crm.add("user", "u1", company_id="c1", emails=["me@example.com"])
    crm.add("person", "p-jan", name="Jan", emails=["jan@acme.cz"])
    crm.add("deal", "d-auto", title="Automatic", status="open", person_ids=["p-jan"])
    crm.add("deal", "d-hint", title="Named", status="open", person_ids=[])
    return MailDeps(store, crm, settings, bus, TOPICS), store, crm, bus


def latest(bus, key):
    return max((e for e in bus.of("linked") if e.message_key == key), key=lambda e: e.revision)


def bcc(key, deal, **kw):
    return received(key, source="bcc", deal_hint=deal, company_id="c1", **kw).model_copy(update={"location": None})


async def test_the_named_deal_wins_over_the_only_open_deal_and_reaches_earlier_messages(world):
    deps, _, _, bus = world
    await handle_mail([received("k1", "root@x")], deps)
    assert latest(bus, "k1").deal_id == "d-auto"
    await handle_mail([bcc("k2", "d-hint", refs=["root@x"])], deps)
    assert latest(bus, "k2").deal_id == "d-hint" and latest(bus, "k1").deal_id == "d-hint"
    assert any(r.code == "deal.smart_bcc" and "Named" in r.text for r in latest(bus, "k1").reasons)


async def test_a_bcc_copy_of_a_synced_message_brings_its_hint(world):
    deps, _, _, bus = world
    await handle_mail([received("k1")], deps)
    await handle_mail([bcc("k1", "d-hint")], deps)
    assert latest(bus, "k1").deal_id == "d-hint" and latest(bus, "k1").revision == 2


@pytest.mark.parametrize("setup, code, words", [
    (lambda crm: None, "deal.hint_unknown", "there is no such deal"),
    (lambda crm: crm.add("deal", "d-x", title="X", status="open", company_id="c2"), "deal.hint_other_company",
     "not a deal of your company"),
    (lambda crm: crm.add("deal", "d-x", title="X", status="open", visibility_group="board"), "deal.hint_not_visible",
     "you may not see it"),
    (lambda crm: crm.add("deal", "d-x", title="X", status="won"), "deal.hint_closed", "it is won"),
    (lambda crm: crm.add("deal", "d-x", title="X", status="open", deleted=True), "deal.hint_unknown", "deleted"),
])
async def test_a_refused_hint_leaves_the_automatic_rules_and_says_why(world, setup, code, words):
    deps, _, crm, bus = world
    setup(crm)
    await handle_mail([bcc("k1", "d-x")], deps)
    event = latest(bus, "k1")
    assert event.deal_id == "d-auto"
    refusal = [r for r in event.reasons if r.code == code]
    assert refusal and words in refusal[0].text and "named by the Smart Bcc address" in refusal[0].text


async def test_the_owner_unlinking_later_is_not_undone_by_a_redelivery_or_recheck(world):
    deps, store, _, bus = world
    await handle_mail([bcc("k1", "d-hint")], deps)
    thread_id = latest(bus, "k1").thread_id
    await handle_mail([ThreadCommand(event_id="c", occurred_at=utcnow(), action=ThreadAction.UNLINK, thread_id=thread_id,
                                     account_id="acc-1", user_id="u1", kind=RecordKind.DEAL)], deps)
    await handle_mail([bcc("k1", "d-hint"), RecheckRequested(event_id="r", occurred_at=utcnow(), account_id="acc-1",
                                                             message_keys=["k1"], cause="test")], deps)
    assert latest(bus, "k1").deal_id is None


async def test_a_crash_between_the_message_and_thread_writes_is_repaired_by_redelivery(world):
    deps, store, _, bus = world
    store.fail_at = "threads"
    with pytest.raises(Crash):
        await handle_mail([bcc("k1", "d-hint")], deps)
    store.fail_at = None
    await handle_mail([bcc("k1", "d-hint")], deps)
    assert latest(bus, "k1").deal_id == "d-hint"
    assert store.threads[latest(bus, "k1").thread_id]["links"]["deal"] == "d-hint"
