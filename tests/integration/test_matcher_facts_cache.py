"""The mail writer's cached facts against the real store: a CRM change drops just the entries it
changed (told by the facts clock, adapters/facts_clock.py), whichever process's facts consumer made
it; when the clock cannot tell what changed, everything is dropped."""
import pytest

from maillink_matcher.adapters import facts_clock
from maillink_matcher.adapters.alternative_addresses import AlternativeAddresses
from maillink_matcher.adapters.facts_cache import FactsCache
from maillink_matcher.adapters.facts_clock import FactsClock
from maillink_matcher.adapters.messages import MessageStore
from maillink_matcher.adapters.projections import CrmProjections
from maillink_matcher.adapters.settings import SettingsStore
from maillink_matcher.handlers.facts import FactsDeps, handle_facts
from maillink_runtime import mongo
from maillink_schemas import crm
from tests.conftest import MONGODB_URL

pytestmark = pytest.mark.integration


@pytest.fixture
async def world(namespace):
    client = mongo.connect(MONGODB_URL)
    db = client[f"{namespace.strip('.')}_matcher"]

    async def publish(events):
        pass

    def facts_process() -> FactsDeps:   # one matcher process's facts consumer
        return FactsDeps(CrmProjections(db), SettingsStore(db), MessageStore(db), publish, "recheck",
                         AlternativeAddresses(db), FactsClock(db))

    a, b = facts_process(), facts_process()
    cache = FactsCache(CrmProjections(db), SettingsStore(db), FactsClock(db))
    yield a, b, cache
    await client.drop_database(db.name)
    await client.close()


def person(pid, *emails, version=1):
    return crm.PersonUpserted(person_id=pid, name=pid, emails=list(emails), version=version)


async def test_a_crm_change_drops_only_the_entries_it_changed(world):
    a, b, cache = world
    await handle_facts([person("p1", "one@x.cz"), person("p2", "two@x.cz"),
                        crm.DealUpserted(deal_id="d1", person_ids=["p2"])], a)
    await cache.sync()                                  # the first sync takes a snapshot
    assert "address" in cache.complete
    kept = (await cache.records("person", ["p2"]))["p2"]
    assert await cache.persons_by_address(["one@x.cz"]) == {"one@x.cz": ("p1",)}

    await handle_facts([person("p1", "uno@x.cz", version=2), person("p3", "three@x.cz")], a)
    await cache.sync()
    assert cache.tables["record_person"]["p2"] is kept   # not read again
    assert "p1" not in cache.tables["record_person"] and "p3" not in cache.tables["record_person"]
    # Read again from the store, in a table that was read whole (a miss there is no absence now).
    assert await cache.persons_by_address(["one@x.cz", "uno@x.cz", "three@x.cz"]) == {
        "uno@x.cz": ("p1",), "three@x.cz": ("p3",)}
    assert (await cache.records("person", ["p1"]))["p1"]["emails"] == ["uno@x.cz"]

    # Another process's facts consumer: its own clock document, read the same way.
    await handle_facts([crm.DealUpserted(deal_id="d1", person_ids=["p1"], version=2)], b)
    await cache.sync()
    assert cache.tables["record_person"]["p2"] is kept
    assert await cache.open_items_of("deal", ["p1", "p2"]) == {"p1": ("d1",)}
    assert (await cache.records("deal", ["d1"]))["d1"]["person_ids"] == ["p1"]

    # Two changes from two processes between two syncs.
    await handle_facts([person("p2", "dva@x.cz", version=2)], a)
    await handle_facts([crm.DealUpserted(deal_id="d1", person_ids=["p1"], version=3, status="won")], b)
    await cache.sync()
    assert await cache.persons_by_address(["two@x.cz", "dva@x.cz"]) == {"dva@x.cz": ("p2",)}
    assert await cache.open_items_of("deal", ["p1"]) == {}


async def test_when_the_clock_cannot_tell_what_changed_everything_is_dropped(world, monkeypatch):
    a, _, cache = world
    await handle_facts([person("p1", "one@x.cz"), person("p2", "two@x.cz")], a)
    await cache.sync()
    assert cache.tables["record_person"]
    await a.clock.tick(None)                            # "anything may have changed"
    await cache.sync()
    assert cache.tables == {}
    await cache.records("person", ["p1", "p2"])
    # More changed keys since the last sync than the clock lists: the seen token is gone.
    monkeypatch.setattr(facts_clock, "RECENT_KEYS", 3)
    for i in range(3):
        await handle_facts([person(f"q{i}", f"q{i}@x.cz")], a)
    await cache.sync()
    assert cache.tables == {}
    assert await cache.persons_by_address(["q0@x.cz"]) == {"q0@x.cz": ("q0",)}
    # A redelivered record that changes nothing still names its entries (its first delivery may
    # have written and been killed before its tick).
    await cache.records("person", ["p1"])
    await handle_facts([person("p1", "one@x.cz")], a)
    await cache.sync()
    assert "p1" not in cache.tables["record_person"]
