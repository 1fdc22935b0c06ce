"""Recipient and sender addresses, validated with email-validator. Pure (no DNS lookups).

IDN domains are accepted and travel in their ASCII (punycode) form, which every server accepts;
a non-ASCII local part would need SMTPUTF8 end to end, which we cannot promise, so it is refused
with a message that says so.
"""
from email.headerregistry import Address as HeaderAddress

from email_validator import EmailNotValidError, validate_email

from maillink_schemas.mail import Address


class InvalidAddress(ValueError):
    pass


def normalise(address: Address) -> Address:
    try:
        checked = validate_email(address.email, check_deliverability=False, allow_smtputf8=False)
    except EmailNotValidError as exc:
        raise InvalidAddress(f"{address.email!r} is not a valid email address: {exc}") from exc
    email = checked.ascii_email or checked.normalized
    local, domain = email.rsplit("@", 1)
    return Address(email=f"{local}@{domain.lower()}", name=address.name)


def header_address(address: Address) -> HeaderAddress:
    local, domain = address.email.rsplit("@", 1)
    return HeaderAddress(display_name=address.name or "", username=local, domain=domain)
