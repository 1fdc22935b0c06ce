"""matcher's own projections of the CRM topics (rebuildable by replaying them).

Lookups on the hot path go by natural key (`_id`): address -> persons, person -> open deals.
Those two index collections are maintained here, next to the records they are derived from.
"""
from pymongo.asynchronous.database import AsyncDatabase

from maillink_schemas.crm import CrmRecord, DealStatus, DealUpserted, PersonUpserted


class Projection:
    """One CRM record type, keyed by its id; an older version never overwrites a newer one."""

    def __init__(self, db: AsyncDatabase, name: str, id_field: str) -> None:
        self.collection = db[name]
        self._id_field = id_field

    async def upsert(self, record: CrmRecord) -> tuple[bool, dict | None]:
        """Returns (applied, previous document)."""
        record_id = getattr(record, self._id_field)
        previous = await self.collection.find_one({"_id": record_id})
        if previous is not None and previous.get("version", 0) > record.version:
            return False, previous  # stale replay
        doc = record.model_dump(mode="json")
        if "emails" in doc:
            doc["emails"] = sorted({e.strip().lower() for e in doc["emails"]})
        await self.collection.replace_one({"_id": record_id}, {"_id": record_id, **doc}, upsert=True)
        return True, previous

    async def get(self, record_id: str) -> dict | None:
        return await self.collection.find_one({"_id": record_id})


class KeyIndex:
    """key -> set of ids, one document per key (e.g. address -> person ids)."""

    def __init__(self, db: AsyncDatabase, name: str) -> None:
        self._col = db[name]

    async def move(self, member: str, old_keys: set[str], new_keys: set[str]) -> None:
        for key in old_keys - new_keys:
            await self._col.update_one({"_id": key}, {"$pull": {"ids": member}})
        for key in new_keys - old_keys:
            await self._col.update_one({"_id": key}, {"$addToSet": {"ids": member}}, upsert=True)

    async def lookup(self, keys: list[str]) -> set[str]:
        found: set[str] = set()
        for key in keys:
            doc = await self._col.find_one({"_id": key})
            found.update(doc.get("ids", []) if doc else [])
        return found


def _is_open(doc: dict | None) -> bool:
    return bool(doc) and doc.get("status") == DealStatus.OPEN.value and not doc.get("deleted")


def _open_deal_persons(doc: dict | None) -> set[str]:
    return set(doc.get("person_ids", [])) if _is_open(doc) else set()


class CrmProjections:
    def __init__(self, db: AsyncDatabase) -> None:
        self.persons = Projection(db, "persons", "person_id")
        self.deals = Projection(db, "deals", "deal_id")
        self.users = Projection(db, "users", "user_id")
        self._address_persons = KeyIndex(db, "address_persons")
        self._person_open_deals = KeyIndex(db, "person_open_deals")

    async def upsert_person(self, person: PersonUpserted) -> None:
        applied, previous = await self.persons.upsert(person)
        if applied:
            old = set() if not previous or previous.get("deleted") else set(previous.get("emails", []))
            new = set() if person.deleted else {e.strip().lower() for e in person.emails}
            await self._address_persons.move(person.person_id, old, new)

    async def upsert_deal(self, deal: DealUpserted) -> None:
        applied, previous = await self.deals.upsert(deal)
        if applied:
            await self._person_open_deals.move(deal.deal_id, _open_deal_persons(previous),
                                               _open_deal_persons(deal.model_dump(mode="json")))

    async def persons_by_address(self, addresses: list[str]) -> list[str]:
        return sorted(await self._address_persons.lookup(addresses))

    async def open_deals_of(self, person_ids: list[str]) -> set[str]:
        return await self._person_open_deals.lookup(person_ids)

    async def deal_is_open(self, deal_id: str) -> bool:
        return _is_open(await self.deals.get(deal_id))

    async def user_addresses(self, user_id: str) -> set[str]:
        doc = await self.users.get(user_id)
        return set(doc.get("emails", [])) if doc and not doc.get("deleted") else set()
