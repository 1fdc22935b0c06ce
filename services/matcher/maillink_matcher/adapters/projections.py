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
"""
from collections.abc import Awaitable, Callable

from pymongo.asynchronous.database import AsyncDatabase

from maillink_schemas.crm import CrmRecord

from .messages import by_ids

FollowUp = Callable[[set[str], set[str]], Awaitable[None]]  # (old keys, new keys)


class KeyIndex:
    """key -> ids, one document per key (e.g. address -> person ids)."""

    def __init__(self, db: AsyncDatabase, name: str) -> None:
        self.collection = db[name]

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

    def __init__(self, db: AsyncDatabase, kind: str, name: str, id_field: str,
                 index: KeyIndex | None = None, keys: Callable[[dict], set[str]] = lambda d: set()) -> None:
        self.kind, self.collection, self._id_field = kind, db[name], id_field
        self.index, self._keys = index, keys

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
        if previous is not None and previous.get("version", 0) > record.version:
            return False  # a replay of an older version
        old_keys = set(previous.get("indexed", [])) if previous else set()
        new_keys = self.keys_of(doc)
        fields_changed = previous is None or {k: v for k, v in previous.items() if k != "indexed"} != doc
        if fields_changed:
            await self.collection.replace_one({"_id": doc["_id"]}, {**doc, "indexed": sorted(old_keys)}, upsert=True)
        if old_keys == new_keys and not fields_changed:
            return True   # already fully applied (a redelivery)
        if self.index is not None:
            await self.index.move(doc["_id"], old_keys, new_keys)
        if follow_up is not None:
            await follow_up(old_keys, new_keys)
        await self.collection.update_one({"_id": doc["_id"]}, {"$set": {"indexed": sorted(new_keys)}})
        return True

    async def rebuild_index(self) -> int:
        """Drops and re-derives the index from the records; returns how many records were indexed."""
        if self.index is None:
            return 0
        await self.index.collection.drop()
        count = 0
        async for doc in self.collection.find({}):
            keys = self.keys_of(doc)
            await self.index.move(doc["_id"], set(), keys)
            await self.collection.update_one({"_id": doc["_id"]}, {"$set": {"indexed": sorted(keys)}})
            count += 1
        return count

    async def get_many(self, ids: list[str]) -> dict[str, dict]:
        return await by_ids(self.collection, ids)


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
        self.address_persons = KeyIndex(db, "address_persons")
        self.open_items = {kind: KeyIndex(db, f"person_open_{kind}s") for kind in ("deal", "lead", "project")}
        self.persons = Projection(db, "person", "persons", "person_id", self.address_persons, _person_keys)
        self.organizations = Projection(db, "organization", "organizations", "organization_id")
        self.deals = Projection(db, "deal", "deals", "deal_id", self.open_items["deal"], _open_persons)
        self.leads = Projection(db, "lead", "leads", "lead_id", self.open_items["lead"], _open_persons)
        self.projects = Projection(db, "project", "projects", "project_id", self.open_items["project"], _open_persons)
        self.users = Projection(db, "user", "users", "user_id", keys=_user_keys)
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
