"""adapters/recent.py: bounded memory of what a long-lived process learns, recently used first."""
from maillink_matcher.adapters.recent import RecentCounts, RecentSet


def test_a_recent_set_keeps_at_most_twice_its_limit_and_what_was_used_last():
    many = RecentSet(limit=3)
    many.update(range(1000))
    assert len(many) <= 6
    s = RecentSet([1, 2, 3], limit=3)        # full: they become the old generation
    assert 1 in s                             # used: moved to the new one
    s.update([4, 5])                          # full again: 2 and 3, unused, are forgotten
    assert 1 in s and 4 in s and 5 in s
    assert 2 not in s and 3 not in s


def test_recent_counts_keep_the_count_of_what_was_used_and_forget_the_rest():
    c = RecentCounts(limit=2)
    c["a"], c["b"] = 1, 2                     # full: the old generation
    assert c.get("a") == 1                    # moved to the new one, count kept
    c["d"] = 4                                # full again: "b" forgotten
    assert c.get("b") == 0 and "b" not in c and c.get("a") == 1 and c.get("d") == 4
    for i in range(100):
        c[i] = i
    assert len(c) <= 4
