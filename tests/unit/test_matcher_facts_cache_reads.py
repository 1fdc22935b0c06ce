"""The mail writer's facts cache (adapters/facts_cache.py) against a change that lands while one of
its reads is on the way: the read's answer may predate the change, so it must not be kept."""
from maillink_matcher.adapters.facts_cache import FactsCache


def _cache() -> FactsCache:
    return FactsCache(crm=None, settings=None, clock=None)  # _get needs none of them


async def test_a_read_overtaken_by_a_change_serves_its_call_but_is_not_kept():
    cache = _cache()
    before, after = {"smart_bcc": []}, {"smart_bcc": ["alice@home.example"]}

    async def read_then_changed(keys):
        # The facts consumer verified an address (and the writer's sync dropped the entry) while
        # this read was on its way; what the read got is the user's accounts from before.
        cache._forget({"accounts": ["alice"]})
        return {"alice": before}

    assert await cache._get("accounts", ["alice"], read_then_changed) == {"alice": before}

    async def read_now(keys):
        return {"alice": after}

    assert await cache._get("accounts", ["alice"], read_now) == {"alice": after}


async def test_a_read_nothing_overtook_is_kept():
    cache = _cache()
    reads = []

    async def read(keys):
        reads.append(keys)
        return {k: {"n": k} for k in keys if k != "absent"}

    assert await cache._get("accounts", ["a", "absent"], read) == {"a": {"n": "a"}}
    assert await cache._get("accounts", ["a", "absent"], read) == {"a": {"n": "a"}}
    assert reads == [["a", "absent"]]   # the second call was answered from the cache, absence included
