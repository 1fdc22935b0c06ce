"""The facts consumer: CRM projections, connected accounts and mail settings. It stores each fact
(adapters/projections.py makes that crash-safe) and then asks the mailbox's single writer to
re-check exactly the messages the change affects (RecheckRequested, keyed by account id).

What is retroactive follows the product's rules (docs/matcher.md):
- a person appears, gains or loses an address, or changes organization: their messages are re-checked;
- a user's own addresses change (crm.users, a connected account, verified Smart Bcc alternative
  addresses): that user's messages are re-checked;
- deals, leads, projects: nothing old is re-checked; a thread decides when a message arrives;
- settings: they apply from the time they took effect; only messages that arrived after that time
  are re-checked (the settings event may be consumed after such mail).
"""
from collections.abc import Awaitable, Callable
import time
from dataclasses import dataclass

import structlog

from maillink_schemas import crm
from maillink_schemas.accounts import AccountConfigured
from maillink_schemas.base import deterministic_id, utcnow
from maillink_schemas.bcc import UserAddressesVerified
from maillink_schemas.matcher import MailSettingsChanged, RecheckRequested, SettingsScope

from ..adapters.alternative_addresses import AlternativeAddresses
from ..adapters.facts_clock import FactsClock
from ..adapters.messages import MessageStore
from ..adapters.projections import CrmProjections
from ..adapters.settings import SettingsStore, settings_key
from ..ports import Publish

_CHUNK = 500
log = structlog.get_logger()


@dataclass(frozen=True)
class FactsDeps:
    crm: CrmProjections
    settings: SettingsStore
    messages: MessageStore
    publish: Publish
    recheck_topic: str
    alternatives: AlternativeAddresses
    clock: FactsClock | None = None


Lookup = Callable[[], Awaitable[list[tuple[str, str]]]]


async def recheck(deps: FactsDeps, query: dict | Lookup, cause: str) -> int:
    """`query`: a filter on the messages (a scan on the embedded store), or a look-up of `_id` reads."""
    # The clock moves after the fact and before the look-up: a mail batch that resolved with the
    # old fact either sees the clock move after its writes, or is found by this look-up.
    await _tick(deps)
    by_account: dict[str, list[str]] = {}
    started = time.perf_counter()
    found = await query() if callable(query) else await deps.messages.affected(query)
    looked_up = time.perf_counter() - started
    for account_id, key in found:
        by_account.setdefault(account_id, []).append(key)
    events = []
    for account_id, keys in sorted(by_account.items()):
        for i in range(0, len(keys), _CHUNK):
            chunk = sorted(keys)[i:i + _CHUNK]
            events.append((deps.recheck_topic, account_id, RecheckRequested(
                event_id=deterministic_id("recheck", cause, account_id, *chunk), occurred_at=utcnow(),
                account_id=account_id, message_keys=chunk, cause=cause)))
    await deps.publish(events)
    count = sum(len(v) for v in by_account.values())
    if count:
        log.info("recheck_requested", cause=cause, messages=count, lookup_s=round(looked_up, 3),
                 by=("filter" if isinstance(query, dict) else "index"))
    return count


def _users_mail(deps: FactsDeps, user_id: str, arrived_since=None) -> Lookup:
    """A user's active and blocked mail (their Mail tab's record view, `_id` reads): what a change
    of their own addresses or settings can change (deleted and expunged mail stays so)."""
    return lambda: deps.messages.affected_in_view(f"user:{user_id}", arrived_since)


def _person_follow_up(event: crm.PersonUpserted, deps: FactsDeps):
    async def follow_up(old: set[str], new: set[str]) -> None:
        changed = old ^ new   # addresses, and "org:<id>" keys (adapters/projections.py)
        addresses = sorted(k for k in changed if not k.startswith("org:"))

        async def lookup() -> list[tuple[str, str]]:
            # `_id` reads: the address index (adapters/address_index.py); an organization change
            # affects the person's linked mail, listed in their record view.
            found = set(await deps.messages.affected_by_addresses(addresses)) if addresses else set()
            if len(addresses) != len(changed):
                found |= set(await deps.messages.affected_in_view(f"person:{event.person_id}"))
            return sorted(found)

        if changed:
            await recheck(deps, lookup, f"person {event.person_id} changed addresses or organization")
    return follow_up


def _persons_appeared(deps: FactsDeps):
    """The follow-up of persons a bulk apply inserted: the past mail of their addresses, in one
    look-up. (A person that did not exist has no linked mail, so no record view to read.)"""
    async def follow_up(keys: dict[str, set[str]]) -> None:
        addresses = sorted({k for member_keys in keys.values() for k in member_keys if not k.startswith("org:")})
        if addresses:
            ids = sorted(keys)
            await recheck(deps, lambda: deps.messages.affected_by_addresses(addresses),
                          f"{len(ids)} persons appeared ({ids[0]} .. {ids[-1]})")
    return follow_up


async def on_records(events: list[crm.CrmRecord], deps: FactsDeps) -> None:
    """A run of CRM records (persons, organizations, deals, leads, projects), each kind in bulk."""
    projections = {crm.PersonUpserted: deps.crm.persons, crm.OrganizationUpserted: deps.crm.organizations,
                   crm.DealUpserted: deps.crm.deals, crm.LeadUpserted: deps.crm.leads,
                   crm.ProjectUpserted: deps.crm.projects}
    by_kind: dict[type, list] = {}
    for event in events:
        by_kind.setdefault(type(event), []).append(event)
    for kind, records in by_kind.items():
        if kind is crm.PersonUpserted:
            await deps.crm.persons.apply_many(records, lambda e: _person_follow_up(e, deps), _persons_appeared(deps))
        else:
            await projections[kind].apply_many(records)


async def on_user(event: crm.UserUpserted, deps: FactsDeps) -> None:
    async def follow_up(old: set[str], new: set[str]) -> None:
        if old != new:  # own addresses or company changed
            await recheck(deps, _users_mail(deps, event.user_id), f"user {event.user_id}'s own addresses changed")

    await deps.crm.users.apply(event, follow_up)


async def on_account(event: AccountConfigured, deps: FactsDeps) -> None:
    deps.crm.changes.note("accounts", [event.user_id])
    if await deps.settings.set_account(event.user_id, event.account_id, event.email if event.enabled else None,
                                       event.company_id):
        await recheck(deps, _users_mail(deps, event.user_id), f"user {event.user_id}'s accounts changed")
        await deps.settings.done(event.user_id)


async def on_user_addresses(event: UserAddressesVerified, deps: FactsDeps) -> None:
    deps.crm.changes.note("accounts", [event.user_id])
    if await deps.alternatives.apply(event):
        await recheck(deps, _users_mail(deps, event.user_id), f"user {event.user_id}'s Smart Bcc addresses changed")
        await deps.settings.done(event.user_id)


async def on_settings(event: MailSettingsChanged, deps: FactsDeps) -> None:
    deps.crm.changes.note("history", [settings_key(event.scope, event.owner_id)])
    entry = await deps.settings.add(event)
    cause = f"{event.scope} {event.owner_id} settings version {event.version}"
    if event.scope == SettingsScope.USER:
        await recheck(deps, _users_mail(deps, event.owner_id, entry["effective_at"]), cause)
    else:   # a company's mail has no view of its own: a filter (a scan on the embedded store)
        await recheck(deps, {"company_id": event.owner_id, "arrived_at": {"$gte": entry["effective_at"]}}, cause)


_BULK = (crm.PersonUpserted, crm.OrganizationUpserted, crm.DealUpserted, crm.LeadUpserted, crm.ProjectUpserted)


async def handle_facts(items: list, deps: FactsDeps) -> None:
    # In order, except that a run of CRM records is applied by kind, in bulk (the records of
    # different kinds and ids are independent; of one record, the latest version lands).
    run: list = []
    for item in items:
        if isinstance(item, _BULK):
            run.append(item)
            continue
        if run:
            await on_records(run, deps)
            run = []
        if isinstance(item, crm.UserUpserted):
            await on_user(item, deps)
        elif isinstance(item, AccountConfigured):
            await on_account(item, deps)
        elif isinstance(item, MailSettingsChanged):
            await on_settings(item, deps)
        elif isinstance(item, UserAddressesVerified):
            await on_user_addresses(item, deps)
        else:
            raise TypeError(f"not a fact: {type(item).__name__}")
    if run:
        await on_records(run, deps)
    # Deals, leads, projects (and anything else stored above) reach the writer's cached facts.
    if items:
        await _tick(deps)


async def _tick(deps: FactsDeps) -> None:
    changed = deps.crm.changes.drain()
    if deps.clock is not None:
        await deps.clock.tick(changed)
