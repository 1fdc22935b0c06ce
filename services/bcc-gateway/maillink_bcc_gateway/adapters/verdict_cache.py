"""SPF and DMARC verdicts kept no longer than the DNS answers they were built from.

A verdict is a pure function of its inputs and of the DNS records the library read: SPF's of the
client IP, the envelope sender (its local part too: SPF macros may use it) and HELO; DMARC's of the
From domains, the SPF verdict and the identities it was given, and the DKIM verdict with its
signing domain (all that authheaders' dmarc_per_from reads of it; DKIM itself is checked per
message). So the same inputs within the smallest TTL of the records read give the same verdict,
and it is reused (measured: pyspf 0.022 ms and DMARC ~0.02 ms a message). The key holds every
input, so different IPs, senders or domains never share a verdict; an answer that may not be kept
(a temporary failure, TTL 0) makes the verdict unkept too (dns_cache.Pass.expires is 0 then).
"""
from collections import OrderedDict
from collections.abc import Hashable

MAX_AGE_S = 3600.0  # a verdict that read no record at all is still recomputed hourly


class VerdictCache:
    def __init__(self, max_entries: int = 20_000) -> None:
        self._entries: OrderedDict[Hashable, tuple[float, object]] = OrderedDict()
        self._max = max_entries

    def get(self, key: Hashable, now: float):
        found = self._entries.get(key)
        if found is None:
            return None
        if found[0] <= now:
            del self._entries[key]
            return None
        self._entries.move_to_end(key)
        return found[1]

    def put(self, key: Hashable, verdict: object, expires: float, now: float) -> None:
        expires = min(expires, now + MAX_AGE_S)
        if expires <= now:
            return
        self._entries[key] = (expires, verdict)
        self._entries.move_to_end(key)
        while len(self._entries) > self._max:
            self._entries.popitem(last=False)
