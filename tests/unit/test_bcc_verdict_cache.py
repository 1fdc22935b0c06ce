"""The verdict cache's own rules: a verdict is served only before its expiry, never one that expired
as it was built, never older than MAX_AGE_S, and the least recently used goes first when full."""
import math

from maillink_bcc_gateway.adapters.verdict_cache import MAX_AGE_S, VerdictCache


def test_a_verdict_is_served_until_its_expiry_and_not_after():
    cache = VerdictCache()
    cache.put(("192.0.2.1", "a@x.test", "mua"), "pass", expires=160.0, now=100.0)
    assert cache.get(("192.0.2.1", "a@x.test", "mua"), 159.9) == "pass"
    assert cache.get(("192.0.2.2", "a@x.test", "mua"), 120.0) is None
    assert cache.get(("192.0.2.1", "a@x.test", "mua"), 160.0) is None


def test_a_verdict_on_an_answer_that_may_not_be_kept_is_not_kept():
    cache = VerdictCache()
    cache.put("k", "temperror", expires=0.0, now=100.0)  # dns_cache.Pass.expires after a timeout
    assert cache.get("k", 100.0) is None


def test_a_verdict_that_read_no_record_is_kept_at_most_max_age():
    cache = VerdictCache()
    cache.put("k", "none", expires=math.inf, now=0.0)
    assert cache.get("k", MAX_AGE_S - 1) == "none"
    assert cache.get("k", MAX_AGE_S) is None


def test_the_least_recently_used_verdict_goes_first_when_full():
    cache = VerdictCache(max_entries=2)
    cache.put("a", 1, expires=100.0, now=0.0)
    cache.put("b", 2, expires=100.0, now=0.0)
    assert cache.get("a", 1.0) == 1  # now "b" is the least recently used
    cache.put("c", 3, expires=100.0, now=0.0)
    assert (cache.get("a", 1.0), cache.get("b", 1.0), cache.get("c", 1.0)) == (1, None, 3)
