"""A message's links and visibility, from the facts alone. Pure: the one place that decides.

- Blocked mail (sole-sender rule, blocklist.py) is ignored: no links, not in the Mail tab.
- Persons: always, every person whose address appears on the message, own addresses excluded.
- Deals, leads, projects: a thread has at most one of each and later messages stay on it. A
  thread without one gets the matched persons' open item only in Automatic mode, only when
  exactly one open item of that kind exists across them, and never for bulk mail. Several
  leave the choice to the user (suggestions, newest activity first).
- Won, lost or deleted deals (closed leads, projects) keep the links they have and get no new ones.
- Visibility: the owner's choice for the thread, else private for sensitive mail, else the
  sharing default in force when the message arrived.
Every decision carries its reason, in a code and in words.
"""
from dataclasses import dataclass, field

from maillink_schemas.mail import Reason, Visibility
from maillink_schemas.matcher import LinkingMode, RecordKind

from .blocklist import blocked_by
from .facts import KINDS, CrmView, MessageFacts, Record, Settings, Status, ThreadFacts
from .sensitive import classify


@dataclass(frozen=True)
class Resolution:
    status: Status
    visibility: Visibility
    person_ids: tuple[str, ...] = ()
    organization_ids: tuple[str, ...] = ()
    links: dict[RecordKind, str | None] = field(default_factory=dict)
    reasons: tuple[Reason, ...] = ()
    suggestions: dict[RecordKind, tuple[str, ...]] = field(default_factory=dict)
    thread_links: dict[RecordKind, str] = field(default_factory=dict)  # decided here for a thread that had none
    thread_reasons: dict[RecordKind, Reason] = field(default_factory=dict)  # why, for every message of the thread

    @property
    def linked(self) -> bool:
        return bool(self.person_ids) or any(self.links.values())


def _r(code: str, text: str) -> Reason:
    return Reason(code=code, text=text)


def _name(crm: CrmView, kind: str, record_id: str) -> str:
    record = crm.record(kind, record_id)
    return f"{kind} {record.title or record_id}" if record else f"{kind} {record_id}"


def resolve(message: MessageFacts, crm: CrmView, thread: ThreadFacts, settings: Settings,
            previous_links: dict[RecordKind, str | None] | None = None) -> Resolution:
    if message.deleted:
        return Resolution(Status.DELETED, Visibility.PRIVATE, reasons=(_r("deleted.mail_tab", "deleted by its owner in the Mail tab"),))
    if message.expunged:
        return Resolution(Status.EXPUNGED, Visibility.PRIVATE,
                          reasons=(_r("deleted.mailbox", "no synced folder of the mailbox holds it any more"),))
    own = crm.own_addresses | set(message.account_addresses)
    senders = [a for a in dict.fromkeys(message.senders) if a not in own]
    others = [a for a in dict.fromkeys(message.recipients) if a not in own and a not in senders]
    blocked = _blocked(senders, others, settings)
    if blocked:
        return Resolution(Status.IGNORED, Visibility.PRIVATE, reasons=(blocked,))
    reasons: list[Reason] = []
    persons = _persons([*senders, *others], crm, reasons)
    links, suggestions, decided, why = {}, {}, {}, {}
    for kind in KINDS:
        links[kind], suggestions[kind], decided_id = _item(kind, message, persons, crm, thread, settings,
                                                          (previous_links or {}).get(kind), reasons)
        if decided_id:
            decided[kind], why[kind] = decided_id, reasons[-1]
    visibility = _visibility(message, thread, settings, reasons)
    orgs = tuple(sorted({r.organization_id for p in persons if (r := crm.record("person", p)) and r.organization_id}))
    return Resolution(Status.ACTIVE, visibility, tuple(persons), orgs, links, tuple(reasons),
                      {k: v for k, v in suggestions.items() if v}, decided, why)


def _blocked(senders: list[str], others: list[str], settings: Settings) -> Reason | None:
    for entries, whose in ((settings.blocklist, "your"), (settings.company_blocklist, "the company's")):
        entry = blocked_by(senders, others, entries)
        if entry:
            return _r("blocked.sole_sender", f"blocked: the only sender, {entry}, is on {whose} blocklist")
    both = settings.blocklist | settings.company_blocklist
    entry = blocked_by(senders, others, both)
    if entry:  # sender on one list, every other participant on the other
        return _r("blocked.sole_sender", f"blocked: the only sender, {entry}, is on a blocklist")
    return None


def _persons(addresses: list[str], crm: CrmView, reasons: list[Reason]) -> list[str]:
    persons: dict[str, str] = {}
    for address in addresses:
        for person_id in crm.persons_by_address.get(address, ()):
            persons.setdefault(person_id, address)
    for person_id, address in persons.items():
        reasons.append(_r("person.address", f"linked to {_name(crm, 'person', person_id)} because {address} is their address"))
    if not persons:
        reasons.append(_r("person.none", "no person in the CRM has any of the participants' addresses"))
    return sorted(persons)


def _item(kind: RecordKind, message: MessageFacts, persons: list[str], crm: CrmView, thread: ThreadFacts,
          settings: Settings, previous: str | None, reasons: list[Reason]) -> tuple[str | None, tuple[str, ...], str | None]:
    """(linked id, suggestions, id decided for the thread here)."""
    current = thread.links.get(kind)
    if current:
        record = crm.record(kind, current)
        if (record and record.open) or previous == current or kind in thread.user_decided:
            # Every message of the thread gives the reason the thread got it (stable across re-checks).
            code, text = thread.link_reasons.get(kind) or (f"{kind}.thread", f"linked to {_name(crm, kind, current)}: "
                                                           "the thread is linked to it")
            reasons.append(_r(code, text))
            return current, (), None
        state = record.closed_as if record else "deleted"
        reasons.append(_r(f"{kind}.closed", f"not linked to {_name(crm, kind, current)}: it is {state} "
                          "and receives no new messages"))
        return None, (), None
    if kind in thread.user_decided:
        reasons.append(_r(f"{kind}.unlinked_by_user", f"no {kind}: the owner removed the thread's {kind}"))
        return None, (), None
    candidates = _open_items(kind, persons, crm)
    ordered = tuple(sorted(candidates, key=lambda i: (crm.record(kind, i).activity if crm.record(kind, i) else "", i),
                           reverse=True))
    if settings.linking_mode == LinkingMode.MANUAL:
        if candidates:
            reasons.append(_r(f"{kind}.manual", f"not linked to a {kind}: linking is manual"))
        return None, ordered, None
    if message.bulk_reason:
        if candidates:
            reasons.append(_r(f"{kind}.bulk", f"not linked to a {kind}: bulk mail ({message.bulk_reason})"))
        return None, ordered, None
    if len(candidates) == 1:
        (only,) = candidates
        owners = [p for p in persons if only in crm.open_items.get(kind, {}).get(p, ())]
        who = " and ".join(_title(crm, "person", p) for p in owners)
        reasons.append(_r(f"{kind}.only_open", f"linked to {_name(crm, kind, only)} because it is {who}'s only open {kind}"))
        return only, (), only
    if candidates:
        by_person = crm.open_items.get(kind, {})
        counts = ", ".join(f"{_title(crm, 'person', p)} has {len(by_person[p])} open {kind}{'s' * (len(by_person[p]) > 1)}"
                           for p in persons if by_person.get(p))
        reasons.append(_r(f"{kind}.several_open", f"not linked to a {kind}: {counts}; the choice is left to the user"))
    return None, ordered, None


def _title(crm: CrmView, kind: str, record_id: str) -> str:
    record = crm.record(kind, record_id)
    return record.title if record and record.title else record_id


def _open_items(kind: RecordKind, persons: list[str], crm: CrmView) -> set[str]:
    by_person = crm.open_items.get(kind, {})
    found = {i for p in persons for i in by_person.get(p, ())}
    return {i for i in found if (r := crm.record(kind, i)) is None or r.open}


def _visibility(message: MessageFacts, thread: ThreadFacts, settings: Settings, reasons: list[Reason]) -> Visibility:
    if thread.visibility is not None:
        reasons.append(_r("visibility.owner", f"{thread.visibility}: chosen by the owner for this thread"))
        return thread.visibility
    sensitive = classify(message.subject, message.snippet, message.senders)
    if sensitive:
        reasons.append(_r("visibility.sensitive", f"private: sensitive mail ({sensitive.replace('_', ' ')})"))
        return Visibility.PRIVATE
    reasons.append(_r("visibility.default", f"{settings.sharing_default}: the owner's sharing default when it arrived"))
    return settings.sharing_default


def record_from(kind: str, doc: dict) -> Record:
    """A CRM projection document as the decision needs it."""
    if kind == "deal":
        is_open = doc.get("status", "open") == "open" and not doc.get("deleted")
        closed = "deleted" if doc.get("deleted") else doc.get("status")
    else:
        is_open = bool(doc.get("open", True)) and not doc.get("deleted")
        closed = "deleted" if doc.get("deleted") else "closed"
    return Record(kind, doc["_id"], doc.get("title") or doc.get("name") or "", is_open, None if is_open else closed,
                  doc.get("visibility_group"), str(doc.get("last_activity_at") or ""), doc.get("organization_id"))
