import random

from maillink_ingest.sync.backoff import retry_delay


def test_first_retry_after_a_working_session_is_immediate_then_doubles_with_jitter_up_to_the_cap():
    rand = random.Random(7)
    assert retry_delay(0, rand=rand) == 0
    for attempt, full in [(1, 1), (2, 2), (3, 4), (10, 300), (50, 300)]:
        delays = {retry_delay(attempt, cap_s=300, rand=rand) for _ in range(50)}
        assert all(full / 2 <= d <= full for d in delays)
        assert len(delays) > 1  # jitter: a thousand accounts do not come back at the same instant


def test_a_providers_requested_wait_is_a_floor():
    assert retry_delay(0, floor_s=60) >= 60 and retry_delay(1, floor_s=2.5) >= 2.5
    assert retry_delay(20, floor_s=1, cap_s=300) <= 300
