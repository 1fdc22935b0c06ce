"""matcher's own projections of the CRM topics, and the indexes derived from them.

Records are the facts; the index collections (address -> persons, person -> open deals, leads,
projects) are derived from them and can be rebuilt at any time (`python -m maillink_matcher
rebuild-indexes`, or by replaying the crm.* topics).

Crash safety, the rule: every step is idempotent, so being killed between any two writes is
repaired by running the same handler again (the redelivered event). A record remembers which
index keys it was last *fully* indexed under (`indexed`). The handler writes the new record
but keeps the old `indexed`, then adds the new keys, then removes the stale ones, then runs the
follow-up (re-checking affected messages), and only then records the new `indexed`. A redelivery
after a crash anywhere in between finds the old keys still listed and finishes the move. (On
main, the index move read the previous record after it had been overwritten, so a retry left a
won deal in person_open_deals for good.)

The bulk path (`Projection.apply_many`, a first CRM sync): the batch's records are inserted in
one command, marked `pending: <attempt id>` with `indexed: []`; those whose `_id` was taken (they
existed) go the one-record way above. For the inserted ones: their index keys are added (inserts
for new index documents), the follow-up runs once for all of them, and only then one document
`crm_batches/<attempt id>` says the attempt finished. That document is the completion mark a
per-record `indexed` update would be, for a whole batch at once: a record whose `pending`
attempt has no such document was not fully applied, so the one-record way (a redelivery) adds its
keys again, runs its follow-up as for a record that just appeared, and records `indexed`.
"""
import uuid
from collections.abc import Awaitable, Callable

from pymongo.asynchronous.database import AsyncDatabase

from maillink_runtime.mongo import insert_new
from maillink_schemas.crm import CrmRecord

from .facts_clock import Changes
from .messages import by_ids
from .recent import RecentSet
from .string_sets import add_strings, snapshot_ids

FollowUp = Callable[[set[str], set[str]], Awaitable[None]]  # (old keys, new keys)
# (record id -> its keys) of the records a bulk apply inserted: all of them appeared.
BulkFollowUp = Callable[[dict[str, set[str]]], Awaitable[None]]
# Fewer records of a kind in a batch go the one-record way: the marks (one per bulk attempt,
# kept while a record names it) then accrue with bulk loads, not with every batch.
BULK_MIN = 8
_STATE = ("indexed", "pending")   # the handler's bookkeeping on a record, not the record's fields


class KeyIndex:
    """key -> ids, one document per key (e.g. address -> person ids)."""

    def __init__(self, db: AsyncDatabase, name: str, table: str, max_snapshot: int = 2_000_000) -> None:
        self.collection, self.table = db[name], table   # table: its name in the writer's facts cache
        self._max_snapshot = max_snapshot
        self._known: RecentSet | None = None   # keys known to have a document (None: not read yet or too many)
        self._loaded = False

    def forget(self) -> None:
        self._known, self._loaded = None, False

    async def add_many(self, entries: dict[str, set[str]]) -> None:
        """Adds members under keys in bulk: documents for new keys are inserted (adapters/string_sets.py)."""
        if not entries:
            return
        if not self._loaded:
            self._loaded = True
            self._known = await snapshot_ids(self.collection, self._max_snapshot)
        await add_strings(self.collection, "ids", entries, self._known)

    async def move(self, member: str, old_keys: set[str], new_keys: set[str]) -> None:
        for key in sorted(new_keys):   # adds first: a crash leaves a member findable under both, never neither
            await self.collection.update_one({"_id": key}, {"$addToSet": {"ids": member}}, upsert=True)
        for key in sorted(old_keys - new_keys):
            await self.collection.update_one({"_id": key}, {"$pull": {"ids": member}})

    async def lookup(self, keys: list[str]) -> dict[str, tuple[str, ...]]:
        return {k: tuple(sorted(d.get("ids", []))) for k, d in (await by_ids(self.collection, keys)).items()
                if d.get("ids")}


class Projection:
    """One CRM record type keyed by its id, with the index derived from it (if any)."""

    def __init__(self, db: AsyncDatabase, kind: str, name: str, id_field: str, changes: Changes,
                 index: KeyIndex | None = None, keys: Callable[[dict], set[str]] = lambda d: set()) -> None:
        self.kind, self.collection, self._id_field = kind, db[name], id_field
        self.index, self._keys, self._changes = index, keys, changes
        self._batches = db["crm_batches"]

    def doc_of(self, record: CrmRecord) -> dict:
        doc = record.model_dump(mode="json")
        if "emails" in doc:
            doc["emails"] = sorted({e.strip().lower() for e in doc["emails"] if e.strip()})
        return {"_id": getattr(record, self._id_field), **doc}

    def keys_of(self, doc: dict) -> set[str]:
        return set() if doc.get("deleted") else self._keys(doc)

    async def apply(self, record: CrmRecord, follow_up: FollowUp | None = None) -> bool:
        """Stores the record and its index entries; False for a stale version."""
        doc = self.doc_of(record)
        previous = await self.collection.find_one({"_id": doc["_id"]})
        old_keys = set(previous.get("indexed", [])) if previous else set()
        unfinished = False
        if previous is not None and (attempt := previous.get("pending")):
            # Inserted by a bulk apply: finished, it is indexed under its keys; unfinished, it just
            # appeared and may be indexed under them in part. Until this handler is done, the
            # record's `indexed` keeps them.
            old_keys |= self.keys_of(_fields(previous))
            unfinished = not await self._finished(attempt)
        new_keys = self.keys_of(doc)
        # Noted whatever is written below, a redelivery included: a delivery that wrote and was
        # killed before the clock ticked is then told to the writers' caches by this one's tick.
        self._note([doc["_id"]], old_keys | new_keys)
        if previous is not None and previous.get("version", 0) > record.version:
            return False  # a replay of an older version
        fields_changed = previous is None or _fields(previous) != doc
        if fields_changed:
            kept = {"pending": previous["pending"]} if unfinished else {}
            await self.collection.replace_one({"_id": doc["_id"]}, {**doc, "indexed": sorted(old_keys), **kept},
                                              upsert=True)
        if old_keys == new_keys and not fields_changed and not unfinished:
            return True   # already fully applied (a redelivery)
        if self.index is not None:
            await self.index.move(doc["_id"], old_keys, new_keys)
        if follow_up is not None:
            # An unfinished record appeared: old ^ new must cover every key it has or may have had.
            await follow_up(old_keys - new_keys if unfinished else old_keys, new_keys)
        await self.collection.update_one({"_id": doc["_id"]}, {"$set": {"indexed": sorted(new_keys)},
                                                               "$unset": {"pending": ""}})
        return True

    def _note(self, ids: list[str], keys: set[str]) -> None:
        self._changes.note(f"record_{self.kind}", ids)
        if self.index is not None:
            self._changes.note(self.index.table, keys)

    async def _finished(self, attempt: str) -> bool:
        return await self._batches.find_one({"_id": attempt}) is not None

    async def apply_many(self, records: list[CrmRecord], follow_up: Callable[[CrmRecord], FollowUp] | None = None,
                         bulk_follow_up: BulkFollowUp | None = None) -> None:
        """Applies a batch of records of this kind: new ones in bulk (see the module's docstring),
        the others one at a time. The latest version of each record in the batch is what lands."""
        latest: dict[str, CrmRecord] = {}
        for record in records:
            key = getattr(record, self._id_field)
            if key not in latest or record.version >= latest[key].version:
                latest[key] = record
        if len(latest) < BULK_MIN:   # a trickle of changes: no insert attempt, no mark left behind
            for record in latest.values():
                await self.apply(record, follow_up(record) if follow_up is not None else None)
            return
        attempt = uuid.uuid4().hex
        docs = [{**self.doc_of(r), "indexed": [], "pending": attempt} for r in latest.values()]
        taken = set(await insert_new(self.collection, docs))
        inserted = [d for i, d in enumerate(docs) if i not in taken]
        if inserted:
            keys = {d["_id"]: self.keys_of(d) for d in inserted}
            self._note(list(keys), {k for member_keys in keys.values() for k in member_keys})
            if self.index is not None:
                entries: dict[str, set[str]] = {}
                for member, member_keys in keys.items():
                    for key in member_keys:
                        entries.setdefault(key, set()).add(member)
                await self.index.add_many(entries)
            if bulk_follow_up is not None:
                await bulk_follow_up(keys)
            await self._batches.insert_one({"_id": attempt, "kind": self.kind, "records": len(inserted)})
        for i in sorted(taken):   # they existed: the one-record way (it reads what is stored)
            record = latest[docs[i]["_id"]]
            await self.apply(record, follow_up(record) if follow_up is not None else None)

    async def rebuild_index(self) -> int:
        """Drops and re-derives the index from the records; returns how many records were indexed."""
        if self.index is None:
            return 0
        await self.index.collection.drop()
        self.index.forget()
        count = 0
        async for doc in self.collection.find({}):
            keys = self.keys_of(_fields(doc))
            await self.index.move(doc["_id"], set(), keys)
            await self.collection.update_one({"_id": doc["_id"]}, {"$set": {"indexed": sorted(keys)},
                                                                   "$unset": {"pending": ""}})
            count += 1
        return count

    async def get_many(self, ids: list[str]) -> dict[str, dict]:
        return await by_ids(self.collection, ids)


def _fields(stored: dict) -> dict:
    return {k: v for k, v in stored.items() if k not in _STATE}


def _person_keys(doc: dict) -> set[str]:
    """Its addresses, and `org:<id>` (so the same index also lists an organization's persons)."""
    org = {f"org:{doc['organization_id']}"} if doc.get("organization_id") else set()
    return set(doc.get("emails", [])) | org


def _user_keys(doc: dict) -> set[str]:
    """Not an index: what a change must be followed up for (own addresses, company)."""
    return {f"email:{e}" for e in doc.get("emails", [])} | {f"company:{doc.get('company_id')}"}


def _open_persons(doc: dict) -> set[str]:
    is_open = doc.get("status", "open") == "open" if "status" in doc else doc.get("open", True)
    return set(doc.get("person_ids", [])) if is_open else set()


class CrmProjections:
    def __init__(self, db: AsyncDatabase) -> None:
        # What the facts consumer changed since its last tick, by the writer's cache tables
        # (adapters/facts_clock.py); its handlers note their settings and accounts here too.
        self.changes = c = Changes()
        self.address_persons = KeyIndex(db, "address_persons", "address")
        self.open_items = {kind: KeyIndex(db, f"person_open_{kind}s", f"open_{kind}") for kind in ("deal", "lead", "project")}
        self.persons = Projection(db, "person", "persons", "person_id", c, self.address_persons, _person_keys)
        self.organizations = Projection(db, "organization", "organizations", "organization_id", c)
        self.deals = Projection(db, "deal", "deals", "deal_id", c, self.open_items["deal"], _open_persons)
        self.leads = Projection(db, "lead", "leads", "lead_id", c, self.open_items["lead"], _open_persons)
        self.projects = Projection(db, "project", "projects", "project_id", c, self.open_items["project"], _open_persons)
        self.users = Projection(db, "user", "users", "user_id", c, keys=_user_keys)
        self.by_kind = {"person": self.persons, "organization": self.organizations, "deal": self.deals,
                        "lead": self.leads, "project": self.projects, "user": self.users}

    async def rebuild_indexes(self) -> dict[str, int]:
        return {kind: await p.rebuild_index() for kind, p in self.by_kind.items() if p.index is not None}

    # --- lookups (all by _id) ---------------------------------------------------------------
    async def persons_by_address(self, addresses: list[str]) -> dict[str, tuple[str, ...]]:
        return await self.address_persons.lookup(addresses)

    async def persons_of_organization(self, organization_id: str) -> list[str]:
        return list((await self.address_persons.lookup([f"org:{organization_id}"])).get(f"org:{organization_id}", ()))

    async def open_items_of(self, kind: str, person_ids: list[str]) -> dict[str, tuple[str, ...]]:
        # A CRM without leads (or projects) at all costs one cheap count instead of a lookup per person.
        if not person_ids or not await self.open_items[kind].collection.estimated_document_count():
            return {}
        return await self.open_items[kind].lookup(person_ids)

    async def records(self, kind: str, ids: list[str]) -> dict[str, dict]:
        return await self.by_kind[kind].get_many(ids)
