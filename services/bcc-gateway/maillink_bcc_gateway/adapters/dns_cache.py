"""DNS answers for the authentication checks: fetched asynchronously, kept for their TTL.

pyspf, dkimpy and authheaders look names up synchronously. Rather than give them a blocking
resolver (which stalls the event loop, or costs a thread or process hand-off per message:
measured in make bench-bcc, either made the checks the slowest step), each check runs in passes:
the libraries read only this cache, every name they miss is noted (and a NeedLookup raised to cut
the pass short), the misses are fetched with dnspython's asyncio resolver, and the check runs
again. A sender whose records are cached is checked in one pass, with no waiting; its SPF and
DMARC verdicts are reused too (verdict_cache.py: ~0.05 ms of CPU a message for the checks).
"""
import asyncio
import math
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field

import dns.asyncresolver
import dns.exception
import dns.resolver

NEGATIVE_TTL = 60  # NXDOMAIN / no answer, when the response carries no SOA to say otherwise


class NeedLookup(BaseException):
    """Raised inside a library's lookup on a cache miss. A BaseException, so that the libraries'
    own `except Exception` handlers let it through and the pass ends at once."""


@dataclass(frozen=True)
class Entry:
    kind: str                # "ok", "none" (NXDOMAIN or no records of that type), "temp" (timeout, SERVFAIL)
    records: tuple = ()


@dataclass
class Pass:
    """One check's passes: the misses of the last pass, and every answer fetched for this check
    (temporary failures and TTL-0 answers included, which are never kept for other messages).
    `expires`: the earliest expiry (DnsCache's clock) of the answers read since it was last reset,
    0 if one of them may not be kept (a temporary failure, TTL 0): how long a verdict built on
    them may be reused (auth_checks' verdict cache resets it before each check it caches)."""
    misses: set[tuple[str, str]] = field(default_factory=set)
    fetched: dict[tuple[str, str], Entry] = field(default_factory=dict)
    fetched_expiry: dict[tuple[str, str], float] = field(default_factory=dict)
    expires: float = math.inf


class DnsCache:
    def __init__(self, host: str | None, port: int, timeout_s: float, max_entries: int = 50_000,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock  # a parameter so tests can step past a TTL without waiting for it
        self._resolver = dns.asyncresolver.Resolver(configure=host is None)
        if host is not None:
            self._resolver.nameservers, self._resolver.port = [host], port
        self._resolver.lifetime = timeout_s
        self._entries: OrderedDict[tuple[str, str], tuple[float, Entry]] = OrderedDict()
        self._max = max_entries

    def lookup(self, name: str, qtype: str, current: Pass) -> Entry:
        """Synchronous, cache only: what the libraries call during a pass."""
        key = (name.rstrip(".").lower(), qtype)
        if key in current.fetched:
            current.expires = min(current.expires, current.fetched_expiry[key])
            return current.fetched[key]
        found = self._entries.get(key)
        if found is not None and found[0] > self.clock():
            self._entries.move_to_end(key)
            if found[0] < current.expires:
                current.expires = found[0]
            return found[1]
        current.misses.add(key)
        raise NeedLookup(key)

    async def fetch_all(self, current: Pass) -> None:
        misses, current.misses = current.misses, set()
        await asyncio.gather(*(self._fetch(key, current) for key in misses))

    async def _fetch(self, key: tuple[str, str], current: Pass) -> None:
        name, qtype = key
        try:
            answer = await self._resolver.resolve(name, qtype, raise_on_no_answer=False, search=False)
        except dns.resolver.NXDOMAIN:
            self._put(key, Entry("none"), NEGATIVE_TTL, current)
            return
        except (dns.exception.Timeout, dns.resolver.NoNameservers, dns.resolver.NoResolverConfiguration) as exc:
            current.fetched[key] = Entry("temp", (repr(exc),))
            current.fetched_expiry[key] = 0.0
            return
        if answer.rrset is None:
            self._put(key, Entry("none"), NEGATIVE_TTL, current)
        else:
            self._put(key, Entry("ok", tuple(answer.rrset)), answer.rrset.ttl, current)

    def _put(self, key: tuple[str, str], entry: Entry, ttl: int, current: Pass) -> None:
        current.fetched[key] = entry
        if ttl <= 0:
            current.fetched_expiry[key] = 0.0
            return  # the zone asks not to be cached: other messages fetch it again
        current.fetched_expiry[key] = expiry = self.clock() + ttl
        self._entries[key] = (expiry, entry)
        self._entries.move_to_end(key)
        while len(self._entries) > self._max:
            self._entries.popitem(last=False)
