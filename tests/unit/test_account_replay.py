from collections import namedtuple

from maillink_ingest.entrypoints.assignments import _newest_per_key

Record = namedtuple("Record", "key value offset")


def config(version: int) -> bytes:
    return f'{{"version": {version}}}'.encode()


def chosen(*values) -> list:
    return [r.value for r in _newest_per_key([Record(b"a1", v, n) for n, v in enumerate(values)])]


def test_the_highest_version_wins_even_out_of_order():
    assert chosen(config(1), config(3), config(2)) == [config(3)]


def test_a_tombstone_ends_what_came_before_and_a_later_connect_starts_afresh():
    assert chosen(config(5), None) == [None]
    assert chosen(config(5), None, config(6)) == [config(6)]
    assert chosen(config(5), b"", config(2)) == [config(2)]  # FastStream's b"" counts as a tombstone too
