from datetime import datetime, timedelta, timezone

from maillink_ingest.adapters.folder_state import FolderState, from_document, to_document
from maillink_ingest.domain import uid_ranges


def test_a_state_stored_before_the_state_machine_still_loads():
    old = {"_id": "a\x1fINBOX", "account_id": "a", "folder": "INBOX", "uidvalidity": 7, "top_uid": 90,
           "initial_cursor": 12, "initial_done": True, "initial_total": 40, "synced": 40}
    state = from_document(old)
    assert (state.state, state.top_uid, state.initial_top, state.synced) == ("incremental", 90, 90, 40)
    assert state.delivered == []  # unknown: the first reconciliation re-delivers the covered range
    assert from_document({**old, "initial_done": False}).state == "initial"


def test_a_state_round_trips_with_its_ranges_as_text():
    state = FolderState("a", "INBOX", state="incremental", delivered=[[1, 500], [502, 502]], failed={"501": "NO"})
    doc = to_document(state)
    assert doc["delivered"] == "1:500,502" and doc["initial_done"] and doc["failed_count"] == 1
    assert from_document(doc) == state


def test_first_sync_progress_and_time_left():
    start = datetime(2026, 11, 27, 8, 0, tzinfo=timezone.utc)
    state = FolderState("a", "INBOX", window_total=400, window_done=100, window_started_at=start)
    assert state.progress_percent == 25.0
    assert state.eta_seconds(start + timedelta(seconds=60)) == 180.0
    assert FolderState("a", "INBOX").eta_seconds() is None
    assert FolderState("a", "INBOX", state="incremental").progress_percent == 100.0


def test_uid_ranges_merge_and_remove():
    ranges = uid_ranges.add([[1, 3]], [5, 4, 9])
    assert ranges == [[1, 5], [9, 9]] and uid_ranges.count(ranges) == 6
    assert uid_ranges.remove(ranges, [3]) == [[1, 2], [4, 5], [9, 9]]
    assert uid_ranges.add([[10, 20]], [1, 2, 3, 21]) == [[1, 3], [10, 21]]
    assert uid_ranges.parse(uid_ranges.format(ranges)) == ranges and uid_ranges.parse("") == []
