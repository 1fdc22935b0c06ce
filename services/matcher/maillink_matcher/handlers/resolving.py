"""Loads the facts a set of messages needs, in a few `_id` lookups per batch, and applies the pure
`resolve` to each message document (bumping its revision when the outcome changed)."""
import hashlib
import json

from maillink_schemas.mail import Visibility
from maillink_schemas.matcher import RecordKind

from ..domain.facts import KINDS, CrmView, Record, Status, ThreadFacts
from ..domain.resolve import record_from, resolve
from ..domain.settings_history import settings_at
from ..ports import CrmPort, SettingsPort
from .deal_hints import refused_reasons
from .documents import facts_of

def _digest(state: dict) -> str:
    return hashlib.blake2b(json.dumps(state, sort_keys=True, default=str).encode(), digest_size=8).hexdigest()


_PUBLIC = ("status", "thread_id", "person_ids", "organization_ids", "deal_id", "lead_id", "project_id", "visibility",
           "reasons")


class Resolver:
    def __init__(self, crm: CrmPort, settings: SettingsPort, default_visibility: Visibility) -> None:
        self._crm, self._settings, self._default = crm, settings, default_visibility
        self.persons_by_address: dict[str, tuple[str, ...]] = {}
        self.open_items: dict[RecordKind, dict[str, tuple[str, ...]]] = {k: {} for k in KINDS}
        self.records: dict[tuple[str, str], Record] = {}
        self._asked: set[tuple[str, str]] = set()
        self.users: dict[str, dict] = {}
        self.accounts: dict[str, dict] = {}
        self.histories: dict[str, list[dict]] = {}

    async def load_retroactive(self, docs: list[dict]) -> None:
        """The facts whose change re-checks stored messages: persons by address, users' own
        addresses and company, settings histories (handlers/facts.py)."""
        addresses = [a for d in docs for a in d["addresses"] if a not in self.persons_by_address]
        found = await self._crm.persons_by_address(addresses)
        self.persons_by_address.update({a: found.get(a, ()) for a in addresses})
        user_ids = [u for u in {d["user_id"] for d in docs} if u not in self.users]
        users = await self._crm.records("user", user_ids)
        accounts = await self._settings.user_accounts(user_ids)
        for u in user_ids:
            self.users[u], self.accounts[u] = users.get(u, {}), accounts.get(u, {})
        keys = {f"user:{d['user_id']}" for d in docs} | {f"company:{c}" for d in docs if (c := self._company(d["user_id"]))}
        missing = [k for k in keys if k not in self.histories]
        got = await self._settings.histories(missing)
        self.histories.update({k: got.get(k, []) for k in missing})

    def retroactive_facts(self, docs: list[dict]) -> tuple:
        users = sorted({d["user_id"] for d in docs})
        return ({a: self.persons_by_address.get(a) for d in docs for a in d["addresses"]},
                {u: (sorted(self.own_addresses(u)), self._company(u)) for u in users},
                {k: [e.get("version") for e in v] for k, v in sorted(self.histories.items())})

    async def load(self, docs: list[dict], threads: list[dict]) -> None:
        await self.load_retroactive(docs)
        persons = sorted({p for d in docs for a in d["addresses"] for p in self.persons_by_address.get(a, ())})
        wanted: dict[str, set[str]] = {"person": set(persons)}
        for kind in KINDS:
            new = [p for p in persons if p not in self.open_items[kind]]
            got = await self._crm.open_items_of(kind.value, new)
            self.open_items[kind].update({p: got.get(p, ()) for p in new})
            wanted[kind.value] = {i for p in persons for i in self.open_items[kind][p]}
            wanted[kind.value] |= {t.get("links", {}).get(kind.value) for t in threads} - {None}
            wanted[kind.value] |= {d.get(f"{kind.value}_id") for d in docs} - {None}
        for kind, ids in wanted.items():
            ask = [i for i in ids if (kind, i) not in self._asked]
            self._asked.update((kind, i) for i in ask)
            for record_id, doc in (await self._crm.records(kind, ask)).items():
                self.records[(kind, record_id)] = record_from(kind, doc)

    def _company(self, user_id: str) -> str | None:
        return self.users.get(user_id, {}).get("company_id") or self.accounts.get(user_id, {}).get("company_id")

    def own_addresses(self, user_id: str) -> frozenset[str]:
        user = self.users.get(user_id, {})
        emails = [] if user.get("deleted") else user.get("emails", [])
        accounts = self.accounts.get(user_id, {})
        # crm.users, every connected account, and verified Smart Bcc alternatives (adapters/alternative_addresses.py)
        return frozenset([*emails, *accounts.get("accounts", {}).values(), *accounts.get("smart_bcc", [])])

    def apply(self, doc: dict, thread: dict) -> bool:
        """Resolves `doc` in place; True if this message decided a link for its thread."""
        user, company = doc["user_id"], self._company(doc["user_id"])
        view = CrmView(self.own_addresses(user), self.persons_by_address, self.open_items, self.records)
        settings = settings_at(self.histories.get(f"user:{user}", []), self.histories.get(f"company:{company}", []),
                               doc["arrived_at"], self._default)
        links = thread.get("links") or {}
        facts = ThreadFacts(thread["_id"], {RecordKind(k): v for k, v in links.items()},
                            frozenset(RecordKind(k) for k in thread.get("user_decided", [])),
                            Visibility(thread["visibility"]) if thread.get("visibility") else None,
                            {RecordKind(k): (r["code"], r["text"]) for k, r in (thread.get("link_reasons") or {}).items() if r})
        previous = {kind: doc.get(f"{kind.value}_id") for kind in KINDS}
        result = resolve(facts_of(doc), view, facts, settings, previous)
        doc.update(status=result.status.value, person_ids=list(result.person_ids),
                   organization_ids=list(result.organization_ids), visibility=result.visibility.value,
                   reasons=[*refused_reasons(doc), *(r.model_dump() for r in result.reasons)],
                   linked=result.linked, company_id=company,
                   suggestions={k.value: list(v) for k, v in result.suggestions.items()},
                   **{f"{kind.value}_id": result.links.get(kind) for kind in KINDS})
        state = {k: doc.get(k) for k in _PUBLIC}   # what the last revision published
        # Kept as a digest (the document is rewritten at every change; a dict from before digests still compares).
        stored, stamp = doc.get("state"), _digest(state)
        if (state != stored if isinstance(stored, dict) else stamp != stored) or doc["revision"] == 0:
            doc["revision"] = doc["revision"] + 1
        doc["state"] = stamp
        if result.status == Status.ACTIVE:
            doc["was_linked"] = True
        decided = False
        for kind, record_id in result.thread_links.items():
            if not links.get(kind.value):
                thread.setdefault("links", {})[kind.value] = record_id
                thread.setdefault("link_reasons", {})[kind.value] = result.thread_reasons[kind].model_dump()
                decided = True
        return decided
