"""matcher's own projections of the CRM topics (rebuildable by replaying them)."""
from pymongo.asynchronous.database import AsyncDatabase

from maillink_schemas.crm import CrmRecord, DealStatus


class Projection:
    """One CRM record type, keyed by its id; an older version never overwrites a newer one."""

    def __init__(self, db: AsyncDatabase, name: str, id_field: str) -> None:
        self._col = db[name]
        self._id_field = id_field

    async def upsert(self, record: CrmRecord) -> bool:
        record_id = getattr(record, self._id_field)
        existing = await self._col.find_one({"_id": record_id}, {"version": 1})
        if existing is not None and existing.get("version", 0) > record.version:
            return False  # stale replay
        doc = record.model_dump(mode="json")
        for key in ("emails", "domains"):
            if key in doc:
                doc[key] = sorted({e.strip().lower() for e in doc[key]})
        await self._col.replace_one({"_id": record_id}, {"_id": record_id, **doc}, upsert=True)
        return True

    @property
    def collection(self):
        return self._col


class CrmProjections:
    def __init__(self, db: AsyncDatabase) -> None:
        self.persons = Projection(db, "persons", "person_id")
        self.deals = Projection(db, "deals", "deal_id")
        self.users = Projection(db, "users", "user_id")

    async def persons_by_address(self, addresses: list[str]) -> list[str]:
        if not addresses:
            return []
        cursor = self.persons.collection.find({"emails": {"$in": addresses}, "deleted": False}, {"_id": 1})
        return [d["_id"] async for d in cursor]

    async def open_deals_of(self, person_ids: list[str]) -> set[str]:
        if not person_ids:
            return set()
        cursor = self.deals.collection.find(
            {"person_ids": {"$in": person_ids}, "status": DealStatus.OPEN.value, "deleted": False}, {"_id": 1})
        return {d["_id"] async for d in cursor}

    async def deal_is_open(self, deal_id: str) -> bool:
        doc = await self.deals.collection.find_one({"_id": deal_id}, {"status": 1, "deleted": 1})
        return bool(doc) and doc.get("status") == DealStatus.OPEN.value and not doc.get("deleted")

    async def user_addresses(self, user_id: str) -> set[str]:
        doc = await self.users.collection.find_one({"_id": user_id}, {"emails": 1})
        return set(doc.get("emails", [])) if doc else set()

    async def ensure_indexes(self) -> None:
        await self.persons.collection.create_index("emails")
        await self.deals.collection.create_index("person_ids")
