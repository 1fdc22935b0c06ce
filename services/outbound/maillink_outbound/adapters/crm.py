"""Outbound's own projection of the crm.* topics, as much as smart fields need."""
from pymongo.asynchronous.database import AsyncDatabase

from maillink_schemas.crm import DealUpserted, OrganizationUpserted, PersonUpserted

from .versioned import VersionedStore


class CrmView:
    def __init__(self, db: AsyncDatabase) -> None:
        self.persons = VersionedStore(db, "crm_persons")
        self.organizations = VersionedStore(db, "crm_organizations")
        self.deals = VersionedStore(db, "crm_deals")

    async def on_person(self, p: PersonUpserted) -> None:
        await self.persons.put(p.person_id, p.version, p.model_dump(mode="json"))

    async def on_organization(self, o: OrganizationUpserted) -> None:
        await self.organizations.put(o.organization_id, o.version, o.model_dump(mode="json"))

    async def on_deal(self, d: DealUpserted) -> None:
        await self.deals.put(d.deal_id, d.version, d.model_dump(mode="json"))
