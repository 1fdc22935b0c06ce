"""Alternative sending addresses, owned by the gateway: pending until their link is followed."""
from datetime import datetime

from pymongo.asynchronous.database import AsyncDatabase

from maillink_schemas.base import deterministic_id

PENDING, VERIFIED, REMOVED = "pending", "verified", "removed"


def address_id(user_id: str, address: str) -> str:
    return deterministic_id("alt-address", user_id, address)


class AddressStore:
    def __init__(self, db: AsyncDatabase) -> None:
        self._addresses = db["alternative_addresses"]

    async def ensure_indexes(self) -> None:
        await self._addresses.create_index([("user_id", 1)])

    async def put_pending(self, user_id: str, company_id: str | None, address: str, nonce: str, expires: int,
                          now: datetime) -> str:
        """(Re)starts confirmation: a new nonce invalidates any link mailed before."""
        key = address_id(user_id, address)
        await self._addresses.update_one({"_id": key}, {"$set": {
            "user_id": user_id, "company_id": company_id, "address": address, "status": PENDING, "nonce": nonce,
            "expires": expires, "created_at": now, "updated_at": now, "verified_at": None}}, upsert=True)
        return key

    async def confirm(self, key: str, nonce: str, now: datetime) -> dict | None:
        """Verifies the address if `nonce` is still the current one; None if the link was used or replaced."""
        result = await self._addresses.update_one({"_id": key, "nonce": nonce, "status": PENDING}, {"$set": {
            "status": VERIFIED, "nonce": None, "verified_at": now, "updated_at": now}})
        return await self.get(key) if result.modified_count == 1 else None

    async def get(self, key: str) -> dict | None:
        return await self._addresses.find_one({"_id": key})

    async def remove(self, key: str, now: datetime) -> dict | None:
        doc = await self.get(key)
        if doc is None or doc["status"] == REMOVED:
            return None
        await self._addresses.update_one({"_id": key}, {"$set": {"status": REMOVED, "nonce": None, "updated_at": now}})
        return doc

    async def of_user(self, user_id: str) -> list[dict]:
        docs = await self._addresses.find({"user_id": user_id}).to_list(None)
        return sorted((d for d in docs if d["status"] != REMOVED), key=lambda d: d["address"])

    async def live(self) -> list[dict]:
        return await self._addresses.find({"status": {"$in": [PENDING, VERIFIED]}}).to_list(None)
