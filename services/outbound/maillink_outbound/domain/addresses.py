"""Recipient and sender addresses, validated with email-validator. Pure (no DNS lookups).

IDN domains are accepted and travel in their ASCII (punycode) form, which every server accepts;
a non-ASCII local part would need SMTPUTF8 end to end, which we cannot promise, so it is refused
with a message that says so.
"""
from functools import lru_cache

from email_validator import EmailNotValidError, validate_email

from maillink_schemas.mail import Address


class InvalidAddress(ValueError):
    pass


def normalise(address: Address) -> Address:
    return _normalised(address.email, address.name)


@lru_cache(maxsize=4096)
def _normalised(email: str, name: str | None) -> Address:
    # Cached: the sender and frequent recipients come back with every message, and email-validator
    # is a good part of building one (a pure function; refusals raise, so they are not cached).
    try:
        checked = validate_email(email, check_deliverability=False, allow_smtputf8=False)
    except EmailNotValidError as exc:
        raise InvalidAddress(f"{email!r} is not a valid email address: {exc}") from exc
    ascii_email = checked.ascii_email or checked.normalized
    local, domain = ascii_email.rsplit("@", 1)
    return Address(email=f"{local}@{domain.lower()}", name=name)
