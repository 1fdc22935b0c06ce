"""Who may send to a company's Smart Bcc address. Pure.

The envelope sender and every From address must be the login address of a user of that company,
or one of that user's verified alternative addresses, and both must be the same user's: otherwise
anyone who learned one user's address could file mail under another's name. A pending
(unconfirmed) alternative address counts for nothing.
"""
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum

from . import refusals
from .refusals import Refusal


class Standing(StrEnum):
    LOGIN = "login"
    VERIFIED = "verified"
    PENDING = "pending"


@dataclass(frozen=True)
class Owner:
    user_id: str
    company_id: str | None
    standing: Standing

    @property
    def may_send(self) -> bool:
        return self.standing in (Standing.LOGIN, Standing.VERIFIED)


Lookup = Callable[[str], Owner | None]


def check_envelope_sender(address: str, owner: Owner | None) -> Refusal | None:
    if owner is None:
        return refusals.unknown_sender(address)
    if not owner.may_send:
        return refusals.pending_sender(address)
    return None


def check_recipient(address: str, company_id: str | None, sender_address: str, sender: Owner) -> Refusal | None:
    if company_id is None:
        return refusals.unknown_recipient(address)
    if sender.company_id != company_id:
        return refusals.other_company(sender_address)
    return None


def check_from(from_addresses: list[str], sender: Owner, lookup: Lookup) -> Refusal | None:
    if not from_addresses:
        return refusals.from_missing()
    for address in from_addresses:
        owner = lookup(address)
        if owner is None or not owner.may_send or owner.user_id != sender.user_id:
            return refusals.pending_sender(address) if owner and owner.standing == Standing.PENDING \
                else refusals.from_not_allowed(address)
    return None
