"""SPF, DKIM and DMARC lookups against a configurable resolver.

Libraries (measured in docs/bcc-gateway.md): pyspf for SPF, dkimpy for DKIM, and authheaders for
DMARC (policy discovery through the public suffix list, and alignment of the SPF and DKIM results).
All three are synchronous, pure Python and do blocking DNS, so checks run in worker processes
(auth_pool.py), never on the event loop that serves SMTP sessions.
"""
import functools
import importlib.resources
import re

import dns.exception
import dns.resolver
import authheaders
import spf
from authheaders import check_dkim, check_dmarc, dmarc_lookup
from authres import SPFAuthenticationResult
from publicsuffix2 import PublicSuffixList

from ..domain.authentication import AuthResults

_DKIM_HEADER = re.compile(rb"^dkim-signature:", re.IGNORECASE | re.MULTILINE)
_NOT_FOUND = (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer)


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
    def __init__(self, host: str | None, port: int = 53, timeout_s: float = 5.0) -> None:
        self._resolver = dns.resolver.Resolver(configure=host is None)
        if host is not None:
            self._resolver.nameservers, self._resolver.port = [host], port
        self._resolver.lifetime = timeout_s
        # Answers are cached for their TTL: a busy sender's SPF/DKIM/DMARC records are looked up
        # once per TTL, not once per message.
        self._resolver.cache = dns.resolver.LRUCache(50_000)
        # Quirk: pyspf looks names up through its module-level DNSLookup and has no per-call
        # resolver, so the gateway process points it at its own. One resolver per process is what
        # the setting means anyway.
        spf.DNSLookup = self._spf_lookup
        _suffix_list()  # built now (~0.25 s), not during the first SMTP session

    def check_sync(self, raw: bytes, ip: str, mail_from: str, helo: str, from_domain: str) -> AuthResults:
        spf_result, _ = spf.check2(ip, mail_from, helo or "unknown", querytime=self._resolver.lifetime)
        spf_obj = SPFAuthenticationResult(result=spf_result, smtp_mailfrom=mail_from, smtp_helo=helo)
        if _DKIM_HEADER.search(raw.split(b"\r\n\r\n", 1)[0]):
            dkim_obj = check_dkim(raw, dnsfunc=self._dkim_txt)
            dkim_result = dkim_obj.result
        else:
            dkim_obj, dkim_result = None, "none"
        dmarc = check_dmarc(raw, spf_obj, dkim_obj, dnsfunc=self._dmarc_txt)
        return AuthResults(domain=from_domain, spf=spf_result, dkim=dkim_result, dmarc=dmarc.result or "none",
                           dmarc_policy=(getattr(dmarc, "policy", None) or "none").lower())

    def _spf_lookup(self, name, qtype, strict=True, timeout=None):
        try:
            answer = self._resolver.resolve(name, qtype, lifetime=timeout or self._resolver.lifetime)
        except _NOT_FOUND:
            return []
        except (dns.exception.Timeout, dns.resolver.NoNameservers) as exc:
            raise spf.TempError(f"DNS {exc}") from exc
        out = []
        for rdata in answer:
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
        try:
            answer = self._resolver.resolve(name, "TXT")
        except _NOT_FOUND:
            return None
        return b"".join(next(iter(answer)).strings)

    def _dkim_txt(self, name, timeout=5):
        # dkimpy wants the record's bytes; a timeout surfaces as its DnsTimeoutError -> temperror.
        name = name.decode() if isinstance(name, bytes) else name
        return self._txt(name.rstrip("."))

    def _dmarc_txt(self, name):
        # authheaders' DMARC lookup wants text without quotes from a custom lookup function.
        record = self._txt(name)
        return record.decode("utf-8", "replace") if record else None
