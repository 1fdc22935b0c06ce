"""Alternative addresses: add (pending + confirmation mail), confirm, remove, and publish the
verified set. Handlers name everything they touch; routes only translate."""
import secrets
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from maillink_schemas.base import deterministic_id, utcnow
from maillink_schemas.bcc import UserAddressesVerified
from maillink_schemas.mail import Address
from maillink_schemas.outbound import SendRequested

from .adapters.addresses import VERIFIED, AddressStore, address_id
from .adapters.directory import Directory
from .domain.confirmation import LinkClaim, LinkState, make_token, read_token


@dataclass
class AddressBookDeps:
    addresses: AddressStore
    directory: Directory
    send: Callable[[SendRequested], Awaitable[None]]
    publish_verified: Callable[[UserAddressesVerified], Awaitable[None]]
    link_secrets: list[bytes]
    public_url: str
    link_ttl_s: int
    system_account_id: str


class AddressTaken(Exception):
    pass


async def add(user_id: str, company_id: str | None, address: str, deps: AddressBookDeps) -> dict:
    address = address.strip().lower()
    owner = deps.directory.owner(address)
    if owner is not None and owner.user_id != user_id and owner.may_send:
        raise AddressTaken(f"{address} is already a sending address of another user.")
    if owner is not None and owner.user_id == user_id and owner.may_send:
        raise AddressTaken(f"{address} is already one of your sending addresses.")
    nonce, expires = secrets.token_urlsafe(16), int(time.time() + deps.link_ttl_s)
    key = await deps.addresses.put_pending(user_id, company_id, address, nonce, expires, utcnow())
    link = f"{deps.public_url.rstrip('/')}/bcc/confirm?token={make_token(deps.link_secrets[0], LinkClaim(key, nonce, expires))}"
    await deps.send(confirmation_mail(user_id, address, link, nonce, deps))
    await deps.directory.reload()
    return await deps.addresses.get(key)


def confirmation_mail(user_id: str, address: str, link: str, nonce: str, deps: AddressBookDeps) -> SendRequested:
    hours = deps.link_ttl_s // 3600
    text = (f"Someone (hopefully you) asked to use {address} to send mail to your company's Smart Bcc address.\n\n"
            f"To confirm, open this link within {hours} hours:\n{link}\n\n"
            "If this was not you, ignore this message: the address stays unusable.\n")
    return SendRequested(
        event_id=deterministic_id("bcc-confirmation", user_id, address, nonce), occurred_at=utcnow(),
        request_id=deterministic_id("bcc-confirmation", user_id, address, nonce),
        account_id=deps.system_account_id, user_id=user_id, to=[Address(email=address)],
        subject="Confirm your address for Smart Bcc", text=text, purpose="system")


async def confirm(token: str, deps: AddressBookDeps) -> tuple[str, dict | None]:
    """('verified' | 'expired' | 'invalid' | 'used' | 'taken', the address record)."""
    state, claim = read_token(deps.link_secrets, token, time.time())
    if state != LinkState.VALID:
        return state.value, None
    pending = await deps.addresses.get(claim.address_id)
    owner = deps.directory.owner(pending["address"]) if pending else None
    if pending and owner and owner.may_send and owner.user_id != pending["user_id"]:
        return "taken", pending  # another user confirmed (or logs in with) it first
    doc = await deps.addresses.confirm(claim.address_id, claim.nonce, utcnow())
    if doc is None:
        return "used", await deps.addresses.get(claim.address_id)
    await _publish_verified(doc["user_id"], doc.get("company_id"), deps)
    await deps.directory.reload()
    return "verified", doc


async def peek(token: str, deps: AddressBookDeps) -> tuple[str, dict | None]:
    """What following the link would do, without doing it (GET must be safe: scanners prefetch links)."""
    state, claim = read_token(deps.link_secrets, token, time.time())
    if state != LinkState.VALID:
        return state.value, None
    doc = await deps.addresses.get(claim.address_id)
    if doc is None or doc.get("nonce") != claim.nonce:
        return "used", doc
    return "valid", doc


async def remove(user_id: str, address: str, deps: AddressBookDeps) -> bool:
    doc = await deps.addresses.remove(address_id(user_id, address.strip().lower()), utcnow())
    if doc is None:
        return False
    if doc["status"] == VERIFIED:
        await _publish_verified(user_id, doc.get("company_id"), deps)
    await deps.directory.reload()
    return True


async def _publish_verified(user_id: str, company_id: str | None, deps: AddressBookDeps) -> None:
    verified = sorted(d["address"] for d in await deps.addresses.of_user(user_id) if d["status"] == VERIFIED)
    version = int(time.time() * 1000)
    await deps.publish_verified(UserAddressesVerified(
        event_id=deterministic_id("user-addresses", user_id, str(version)), occurred_at=utcnow(),
        user_id=user_id, company_id=company_id, addresses=verified, version=version))
