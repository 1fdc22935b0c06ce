from datetime import datetime, timezone

from hypothesis import given, settings, strategies as st

from maillink_ingest.imap.fetch import _internaldate, parse_fetch_answer, parse_fetch_lines, parse_flag_lines, uid_set
from maillink_ingest.imap.qresync import parse_ranges
from maillink_ingest.sync.pipeline import _by_size


def test_fetch_lines_as_aioimaplib_returns_them():
    # Shape recorded from Dovecot 2.3.19 through aioimaplib 2.0.3.
    lines = [
        b'1 FETCH (UID 7 FLAGS (\\Seen \\Answered) INTERNALDATE "26-Nov-2026 22:19:59 +0100" RFC822.SIZE 5 BODY[] {5}',
        bytearray(b"Hello"), b")",
        b"2 FETCH (FLAGS () BODY[] {3}", bytearray(b"Bye"), b" UID 9)",
        b"Fetch completed (0.001 + 0.000 secs).",
    ]
    first, second = parse_fetch_lines(lines)
    assert (first.uid, first.flags, first.raw) == (7, ("\\Seen", "\\Answered"), b"Hello")
    assert first.internal_date.astimezone(timezone.utc).hour == 21
    assert (second.uid, second.flags, second.raw) == (9, (), b"Bye")  # UID after the literal


def test_uid_set_is_compact():
    assert uid_set([5, 1, 2, 3, 9, 10]) == "1:3,5,9:10"
    assert uid_set([4]) == "4"


def test_batches_are_split_by_size_and_a_big_message_goes_alone():
    sizes = {1: 10, 2: 10, 3: 100, 4: 10}
    assert _by_size([1, 2, 3, 4], sizes, 25) == [[1, 2], [3], [4]]


def test_an_item_without_a_literal_is_reported_not_dropped():
    # A body sent as a quoted string is a message; one sent as NIL is an answer without content.
    lines = [b'1 FETCH (UID 4 FLAGS () BODY[] "Subject: q\\"x\\"\r\n\r\nhi")', b"2 FETCH (UID 5 FLAGS () BODY[] NIL)",
             b"3 FETCH (UID 6 BODY[] {2}", bytearray(b"ok"), b")", b"Fetch completed."]
    answer = parse_fetch_answer(lines)
    assert [(m.uid, m.raw) for m in answer.messages] == [(4, b'Subject: q"x"\r\n\r\nhi'), (6, b"ok")]
    assert answer.bodiless == [5]


def test_qresync_vanished_ranges_and_flag_lines():
    assert parse_ranges("3,5:7,9:8") == [(3, 3), (5, 7), (8, 9)]
    (seen,) = parse_flag_lines([b"2 FETCH (UID 2 FLAGS (\\Flagged \\Recent) MODSEQ (6))", b"done"])
    assert (seen.uid, seen.flags, seen.modseq) == (2, ("\\Flagged", "\\Recent"), 6)


_DATE_PARTS = st.tuples(
    st.sampled_from(["1", " 1", "01", "9", "09", "28", "31", "32", "0", "+1", "1 "]),
    st.sampled_from(["Jan", "Feb", "Dec", "jan", "JAN", "Foo", ""]),
    st.sampled_from(["2024", "1999", "0999", "20245", "+202"]),
    st.sampled_from(["00:00:00", "23:59:59", "24:00:00", "12:60:00", "12:00:61", "1:02:03", "12:00"]),
    st.sampled_from(["+0000", "-0000", "+0130", "-1200", "+2359", "+2400", "Z", "+01:30", "0100", "+01", ""]))


@given(st.one_of(_DATE_PARTS.map(lambda p: f"{p[0]}-{p[1]}-{p[2]} {p[3]} {p[4]}"), st.text(max_size=40)))
@settings(max_examples=600, deadline=None)
def test_internaldate_reads_what_strptime_reads(value):
    # The fast reader must agree with strptime("%d-%b-%Y %H:%M:%S %z"), value, offset and all.
    try:
        expected = datetime.strptime(value, "%d-%b-%Y %H:%M:%S %z")
    except ValueError:
        expected = None
    got = _internaldate(value)
    assert got == expected
    if expected is not None:
        assert got.utcoffset() == expected.utcoffset() and got.replace(tzinfo=None) == expected.replace(tzinfo=None)
