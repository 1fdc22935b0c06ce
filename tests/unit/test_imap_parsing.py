from datetime import timezone

from maillink_ingest.imap.fetch import parse_fetch_lines, uid_set
from maillink_ingest.sync.folder_sync import _by_size


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
