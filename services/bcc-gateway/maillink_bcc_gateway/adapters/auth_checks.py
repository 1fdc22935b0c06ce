"""SPF, DKIM and DMARC, checked with pyspf, dkimpy and authheaders against the configured resolver.

Libraries (measured in docs/bcc-gateway.md): pyspf for SPF, dkimpy for DKIM, and authheaders for
DMARC (policy discovery through the public suffix list, and alignment of the SPF and DKIM
results). They look names up synchronously; here they read dns_cache.DnsCache, which runs the
check in passes and fetches what a pass missed asynchronously, so the event loop never blocks.
"""
import functools
import math
import importlib.resources
import re
from collections.abc import Callable

import authheaders
import dns.exception
import spf
from authheaders import check_dkim, dmarc_lookup, dmarc_per_from
from authres import SPFAuthenticationResult
from publicsuffix2 import PublicSuffixList

from ..domain.authentication import AuthResults
from . import dkim_speedups  # noqa: F401 - applies its replacements of dkimpy helpers (same verdicts)
from .dns_cache import DnsCache, NeedLookup, Pass
from .verdict_cache import VerdictCache

_DKIM_HEADER = re.compile(rb"^dkim-signature:", re.IGNORECASE | re.MULTILINE)
# SPF allows 10 lookups (RFC 7208 4.6.4) plus void ones; DKIM one per signature; DMARC two.
MAX_PASSES = 25


@functools.cache
def _suffix_list() -> PublicSuffixList:
    with importlib.resources.as_file(importlib.resources.files("authheaders") / "public_suffix_list.txt") as path:
        with open(path, encoding="utf-8") as handle:
            return PublicSuffixList(handle)


@functools.lru_cache(maxsize=65536)
def _org_domain(domain: str) -> str:
    return _suffix_list().get_public_suffix(domain)


# Quirk, measured: authheaders 0.16.3 re-reads and re-builds the whole public suffix list on every
# organisational-domain lookup (~270 ms each, two or more per DMARC check: 0.55 s per message).
# The same list, built once, answers in microseconds; the results are identical.
authheaders.get_org_domain = dmarc_lookup.get_org_domain = _org_domain




class AuthChecker:
    def __init__(self, host: str | None, port: int = 53, timeout_s: float = 5.0, clock=None) -> None:
        self._dns = DnsCache(host, port, timeout_s, **({"clock": clock} if clock else {}))
        self._spf_verdicts = VerdictCache()
        self._dmarc_verdicts = VerdictCache()
        self._timeout_s = timeout_s
        self._pass: Pass | None = None
        # Quirk: pyspf looks names up through its module-level DNSLookup and has no per-call
        # resolver, so the gateway process points it at its own. One resolver per process is what
        # the setting means anyway.
        spf.DNSLookup = self._spf_lookup
        _suffix_list()  # built now (~0.25 s), not during the first SMTP session

    async def check(self, raw: bytes, ip: str, mail_from: str, helo: str, from_domains: list[str]) -> AuthResults:
        """`from_domains`: the domains of the From header's addresses, from the gateway's own parse of
        the message (the first one names the result), so DMARC does not parse the headers again."""
        from_domain = from_domains[0]
        current = Pass()
        for _ in range(MAX_PASSES):
            self._pass = current
            try:
                results = self._check_once(raw, ip, mail_from, helo, from_domains)
            except NeedLookup:
                results = None
            finally:
                self._pass = None
            # A miss swallowed by a library's bare `except:` still counts: the pass is redone.
            if not current.misses:
                return results
            await self._dns.fetch_all(current)
        return AuthResults(domain=from_domain, spf="temperror", dkim="temperror", dmarc="temperror")

    def _check_once(self, raw: bytes, ip: str, mail_from: str, helo: str, from_domains: list[str]) -> AuthResults:
        current, now = self._pass, self._dns.clock()
        spf_key = (ip, mail_from, helo)
        spf_result = self._spf_verdicts.get(spf_key, now)
        if spf_result is None:
            current.expires = math.inf
            spf_result, _ = spf.check2(ip, mail_from, helo or "unknown", querytime=self._timeout_s)
            if not current.misses:  # a miss a library swallowed leaves the verdict unproven
                self._spf_verdicts.put(spf_key, spf_result, current.expires, now)
        def spf_obj() -> SPFAuthenticationResult:
            return SPFAuthenticationResult(result=spf_result, smtp_mailfrom=mail_from, smtp_helo=helo)
        if _DKIM_HEADER.search(raw.split(b"\r\n\r\n", 1)[0]):
            dkim_obj = check_dkim(raw, dnsfunc=self._dkim_txt)
            dkim_result = dkim_obj.result
        else:
            dkim_obj, dkim_result = None, "none"
        # dmarc_per_from reads of the DKIM result only its verdict and signing domain (d=).
        dkim_identity = (dkim_result, dkim_obj.header_d) if dkim_obj is not None else None
        dmarc_key = (tuple(from_domains), spf_result, mail_from, helo, dkim_identity)
        found = self._dmarc_verdicts.get(dmarc_key, now)
        if found is not None:
            dmarc_result, policy = found
        else:
            current.expires = math.inf
            try:
                dmarc_result, policy = self._dmarc(from_domains, spf_obj, dkim_obj)
            except dns.exception.DNSException:
                dmarc_result, policy = "temperror", "none"
                current.expires = 0.0
            if not current.misses:
                self._dmarc_verdicts.put(dmarc_key, (dmarc_result, policy), current.expires, now)
        return AuthResults(domain=from_domains[0], spf=spf_result, dkim=dkim_result, dmarc=dmarc_result,
                           dmarc_policy=policy)

    def _dmarc(self, from_domains: list[str], spf_obj: Callable[[], SPFAuthenticationResult],
               dkim_obj) -> tuple[str, str]:
        """authheaders.check_dmarc without its own header parse (~0.04 ms a message): each From
        domain's verdict, and of several the one under the strictest policy, as check_dmarc picks."""
        verdicts = []
        for domain in dict.fromkeys(from_domains):
            try:
                # A fresh SPF result each: dmarc_per_from overwrites its smtp_mailfrom with the domain
                # part, after which the next From domain reads a wrong one (check_dmarc's own
                # multi-From loop shares one object, so its later domains were judged on that).
                result, _, _, policy = dmarc_per_from(domain, spf_result=spf_obj(), dkim_result=dkim_obj,
                                                      dnsfunc=self._dmarc_txt)
            except dmarc_lookup.DMARCException:
                return "permerror", "none"
            verdicts.append((result or "none", (policy or "none").lower()))
        for strictest in ("reject", "quarantine", "none"):
            for result, policy in verdicts:
                if policy == strictest:
                    return result, policy
        return verdicts[-1]

    def _entry(self, name: str, qtype: str):
        entry = self._dns.lookup(name, qtype, self._pass)
        if entry.kind == "temp":
            raise dns.exception.Timeout(f"{qtype} {name}: {entry.records[0]}")
        return entry.records

    def _spf_lookup(self, name, qtype, strict=True, timeout=None):
        try:
            records = self._entry(name, qtype)
        except dns.exception.Timeout as exc:
            raise spf.TempError(f"DNS {exc}") from exc
        out = []
        for rdata in records:
            if qtype in ("A", "AAAA"):
                out.append(((name, qtype), rdata.address))
            elif qtype == "MX":
                out.append(((name, qtype), (rdata.preference, rdata.exchange)))
            elif qtype == "PTR":
                out.append(((name, qtype), rdata.target.to_text(True)))
            elif qtype in ("TXT", "SPF"):
                out.append(((name, qtype), rdata.strings))
        return out

    def _txt(self, name: str) -> bytes | None:
        records = self._entry(name, "TXT")
        return b"".join(records[0].strings) if records else None

    def _dkim_txt(self, name, timeout=5):
        # dkimpy wants the record's bytes; a DNS timeout (a DNSException) is its temperror.
        name = name.decode() if isinstance(name, bytes) else name
        return self._txt(name.rstrip("."))

    def _dmarc_txt(self, name):
        # authheaders' DMARC lookup wants text without quotes from a custom lookup function.
        record = self._txt(name)
        return record.decode("utf-8", "replace") if record else None
