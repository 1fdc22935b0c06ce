"""Smart Bcc addresses: company-<token>@<domain>, and company-<token>+deal-<id>@<domain>. Pure.

The token is derived from the company id, so every instance computes the same address without a
shared counter; 8 hex digits keep collisions improbable at any CRM's number of companies (the
directory logs one if it ever happens). Knowing an address grants nothing: senders are checked.
"""
import re
from dataclasses import dataclass

from maillink_schemas.base import deterministic_id

TOKEN_LENGTH = 8
_LOCAL = re.compile(r"^company-([0-9a-f]{4,32})(?:\+deal-([A-Za-z0-9_.\-]{1,64}))?$", re.IGNORECASE)


def company_token(company_id: str) -> str:
    return deterministic_id("bcc-company", company_id)[:TOKEN_LENGTH]


def company_address(company_id: str, domain: str) -> str:
    return f"company-{company_token(company_id)}@{domain.lower()}"


def deal_address(company_id: str, deal_id: str, domain: str) -> str:
    return f"company-{company_token(company_id)}+deal-{deal_id}@{domain.lower()}"


@dataclass(frozen=True)
class Recipient:
    token: str
    deal_id: str | None = None


def parse_recipient(address: str, domain: str) -> Recipient | None:
    local, _, host = address.strip().strip("<>").rpartition("@")
    if host.lower() != domain.lower():
        return None
    match = _LOCAL.match(local)
    # Deal ids are the CRM's and kept as written; the token is hex and compared lower-cased.
    return Recipient(match.group(1).lower(), match.group(2)) if match else None
