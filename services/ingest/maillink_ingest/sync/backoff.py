"""How long to wait before the next connection attempt: a pure function of the attempt number.

The first retry after a working session is immediate (a dropped connection is usually just that);
after that the wait doubles up to a cap, with "equal jitter" (a random half of it) so a thousand
accounts that lost the same server do not come back in one storm. A provider that names its wait
(Microsoft's "Suggested Backoff Time", Gmail's download cap) gets at least that. A success resets
the attempt count to 0.
"""
import random


def retry_delay(attempt: int, *, floor_s: float | None = None, base_s: float = 1.0, cap_s: float = 300.0,
                rand: random.Random | None = None) -> float:
    rand = rand or random
    delay = 0.0 if attempt <= 0 else min(cap_s, base_s * 2 ** (attempt - 1))
    delay = delay / 2 + rand.uniform(0, delay / 2)
    if floor_s is not None:
        delay = max(delay, floor_s * rand.uniform(1.0, 1.1))
    return delay
