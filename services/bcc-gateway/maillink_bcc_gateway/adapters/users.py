"""The gateway's own projection of crm.users.v1: who each user is, their company and login address."""
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from maillink_schemas.crm import UserUpserted


class UserStore:
    def __init__(self, db: AsyncDatabase) -> None:
        self._users = db["users"]

    async def upsert(self, user: UserUpserted) -> dict | None:
        """Stores the record unless a newer version is there (then None); replaying the same version is
        harmless. Returns the stored document."""
        emails = [e.strip().lower() for e in user.emails if "@" in e]
        login = (user.login_email or (emails[0] if emails else "")).strip().lower()
        doc = {"company_id": user.company_id, "login_email": login or None, "emails": emails,
               "version": user.version, "deleted": user.deleted}
        try:
            await self._users.update_one({"_id": user.user_id, "version": {"$lte": user.version}}, {"$set": doc},
                                         upsert=True)
        except DuplicateKeyError:
            return None  # the stored version is newer: the filter missed, and the upsert hit the _id
        return {"_id": user.user_id, **doc}

    async def get(self, user_id: str) -> dict | None:
        return await self._users.find_one({"_id": user_id, "deleted": False})

    async def all(self) -> list[dict]:
        return await self._users.find({"deleted": False}).to_list(None)
