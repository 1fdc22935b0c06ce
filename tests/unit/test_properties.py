"""Property tests: the small pure pieces hold for any input, not just the examples."""
from hypothesis import given, settings
from hypothesis import strategies as st

from maillink_ingest.domain.envelope import SNIPPET_CHARS, parse
from maillink_ingest.imap.fetch import uid_set
from maillink_ingest.sync.pipeline import _by_size


def expand(uid_set_text: str) -> set[int]:
    out = set()
    for part in uid_set_text.split(","):
        lo, _, hi = part.partition(":")
        out.update(range(int(lo), int(hi or lo) + 1))
    return out


@given(st.sets(st.integers(min_value=1, max_value=10_000), min_size=1))
def test_uid_set_names_exactly_the_given_uids(uids):
    assert expand(uid_set(list(uids))) == uids


@given(st.lists(st.integers(min_value=1, max_value=30_000_000), min_size=1, max_size=300),
       st.integers(min_value=1, max_value=50_000_000))
def test_size_groups_keep_order_and_bound_size(sizes, limit):
    uids = list(range(1, len(sizes) + 1))
    by_uid = dict(zip(uids, sizes))
    groups = _by_size(uids, by_uid, limit)
    assert [u for g in groups for u in g] == uids
    assert all(len(g) == 1 or sum(by_uid[u] for u in g) <= limit for g in groups)


@settings(max_examples=300)
@given(st.binary(max_size=4000))
def test_parsing_never_raises_and_bounds_the_snippet(raw):
    parsed = parse(raw)
    assert len(parsed.snippet) <= SNIPPET_CHARS
    assert all("@" in a.email and a.email == a.email.lower() for a in parsed.envelope.to)
