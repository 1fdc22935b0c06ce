"""Templates (private to their owner, or shared with the owner's company) and signatures (per account)."""
import uuid

from pymongo.asynchronous.database import AsyncDatabase

from maillink_schemas.base import utcnow


class TemplateStore:
    def __init__(self, db: AsyncDatabase) -> None:
        self._c = db["templates"]

    @staticmethod
    def visible_to(user_id: str, company_id: str | None) -> dict:
        shared = [{"shared": True, "company_id": company_id}] if company_id else []
        return {"$or": [{"owner": user_id}, *shared]}

    async def create(self, owner: str, company_id: str | None, fields: dict) -> dict:
        doc = {"_id": uuid.uuid4().hex, "owner": owner, "company_id": company_id, **fields,
               "created_at": utcnow(), "updated_at": utcnow()}
        await self._c.insert_one(doc)
        return doc

    async def get(self, template_id: str, user_id: str, company_id: str | None) -> dict | None:
        return await self._c.find_one({"_id": template_id, **self.visible_to(user_id, company_id)})

    async def list(self, user_id: str, company_id: str | None) -> list[dict]:
        return await self._c.find(self.visible_to(user_id, company_id)).sort("name", 1).to_list(1000)

    async def update(self, template_id: str, owner: str, fields: dict) -> dict | None:
        # Only the owner changes or deletes a template, shared or not.
        await self._c.update_one({"_id": template_id, "owner": owner}, {"$set": {**fields, "updated_at": utcnow()}})
        return await self._c.find_one({"_id": template_id, "owner": owner})

    async def delete(self, template_id: str, owner: str) -> bool:
        return (await self._c.delete_one({"_id": template_id, "owner": owner})).deleted_count == 1


class SignatureStore:
    def __init__(self, db: AsyncDatabase) -> None:
        self._c = db["signatures"]

    async def create(self, account_id: str, owner: str, fields: dict) -> dict:
        doc = {"_id": uuid.uuid4().hex, "account_id": account_id, "owner": owner, **fields, "updated_at": utcnow()}
        if doc.get("default"):
            await self._c.update_many({"account_id": account_id}, {"$set": {"default": False}})
        await self._c.insert_one(doc)
        return doc

    async def list(self, account_id: str, owner: str) -> list[dict]:
        return await self._c.find({"account_id": account_id, "owner": owner}).to_list(100)

    async def get(self, signature_id: str, account_id: str) -> dict | None:
        return await self._c.find_one({"_id": signature_id, "account_id": account_id})

    async def default(self, account_id: str) -> dict | None:
        return await self._c.find_one({"account_id": account_id, "default": True})

    async def delete(self, signature_id: str, account_id: str, owner: str) -> bool:
        found = await self._c.delete_one({"_id": signature_id, "account_id": account_id, "owner": owner})
        return found.deleted_count == 1
