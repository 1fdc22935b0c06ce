"""A page cursor comes from the caller: whatever it holds, a bad one is a ValueError (the routes' 422),
never another exception (regression: /threads/{id} answered 500 for a cursor of non-UTF-8 bytes)."""
import base64
from datetime import datetime, timezone

import pytest

from maillink_matcher.adapters.queries import decode_cursor, encode_cursor


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode()


@pytest.mark.parametrize("cursor", [b64(b"\x9e\xff"), b64(b"5"), b64(b'["x"]'), b64(b'[1, 2]'), b64(b'["2026-01-01", 7]'),
                                    b64(b"null"), "!!!", "", "\u00e9", b64(b'{"a": 1, "b": 2}')])
def test_a_cursor_that_is_not_ours_is_a_value_error(cursor):
    with pytest.raises(ValueError, match="invalid cursor"):
        decode_cursor(cursor)


def test_our_own_cursor_round_trips():
    when = datetime(2026, 11, 27, 10, 0, tzinfo=timezone.utc)
    assert decode_cursor(encode_cursor({"sort_date": when, "_id": "k1"})) == (when, "k1")
