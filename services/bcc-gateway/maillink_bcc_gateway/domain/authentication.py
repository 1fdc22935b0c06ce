"""What SPF, DKIM and DMARC results mean for a message. Pure.

The rule (issue 11): refuse when both SPF and DKIM fail. "Fail" here is "did not pass": a domain
that publishes no SPF record and signs nothing has proven nothing, and accepting it would let
anyone file mail under a user's address. A DNS outage (temperror) on a check that might have
passed is answered 451, so the sending server retries instead of bouncing. DMARC is also
honoured where its owner asked for it: a DMARC fail under p=reject is refused.
"""
from dataclasses import dataclass

from . import refusals
from .refusals import Refusal


@dataclass(frozen=True)
class AuthResults:
    domain: str          # the From domain
    spf: str             # pass, fail, softfail, neutral, none, temperror, permerror
    dkim: str            # pass, fail, none (no signature), temperror
    dmarc: str = "none"  # pass, fail, none, temperror, permerror
    dmarc_policy: str = "none"


def judge(results: AuthResults) -> Refusal | None:
    if results.spf != "pass" and results.dkim != "pass":
        if "temperror" in (results.spf, results.dkim):
            return refusals.authentication_unavailable(results.domain)
        return refusals.not_authenticated(results.domain, results.spf, results.dkim)
    if results.dmarc == "fail" and results.dmarc_policy == "reject":
        return refusals.dmarc_reject(results.domain)
    return None
