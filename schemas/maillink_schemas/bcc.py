"""Smart Bcc contracts, produced by bcc-gateway.

A user's verified alternative sending addresses are published whole, on a compacted topic keyed by
user id: the latest record is the complete set, so a consumer (the matcher) keeps a projection by
replaying, exactly as it does for crm.users.v1, and treats these addresses as the user's own.
"""
from pydantic import Field

from .base import Event


class UserAddressesVerified(Event):
    """The set of a user's verified alternative addresses changed (one was verified or removed).
    Topic: mail.user.addresses.v1 (compacted), key: user id."""

    user_id: str = Field(description="The CRM user the addresses belong to.")
    company_id: str | None = Field(default=None, description="The user's company.")
    addresses: list[str] = Field(default_factory=list, description="Every verified alternative address of the user, "
                                 "lower-cased, sorted. Complete: an address missing here is no longer the user's. "
                                 "Pending (unconfirmed) addresses are never listed.")
    version: int = Field(description="Grows with each change (milliseconds since the epoch); an older version never "
                         "overwrites a newer one.")
