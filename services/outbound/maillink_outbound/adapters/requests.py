"""Send requests and their stored state (domain/states.py). Every state change is a conditional
update on the state it leaves, so two workers (or a worker and a recovery) never both win."""
from datetime import datetime

from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from maillink_schemas.base import utcnow
from maillink_schemas.outbound import SendState

from ..domain.states import sources


class RequestStore:
    def __init__(self, db: AsyncDatabase) -> None:
        self._c = db["send_requests"]

    async def ensure_indexes(self) -> None:
        await self._c.create_index([("state", 1), ("due_at", 1)])

    async def create(self, doc: dict) -> tuple[dict, bool]:
        """Stores a new request; a request id seen before returns the stored one (the idempotency key)."""
        try:
            await self._c.insert_one({**doc, "created_at": utcnow(), "updated_at": utcnow()})
            return doc, True
        except DuplicateKeyError:
            return await self._c.find_one({"_id": doc["_id"]}), False

    async def get(self, request_id: str) -> dict | None:
        return await self._c.find_one({"_id": request_id})

    async def move(self, request_id: str, target: SendState, expect: list[SendState] | None = None,
                   unset: tuple[str, ...] = (), **fields) -> bool:
        update: dict = {"$set": {"state": target.value, "updated_at": utcnow(), **fields}}
        if unset:
            update["$unset"] = {f: "" for f in unset}
        states = [s.value for s in (expect or sources(target))]
        result = await self._c.update_one({"_id": request_id, "state": {"$in": states}}, update)
        return result.matched_count == 1

    async def note(self, request_id: str, state: SendState, **fields) -> bool:
        """Records facts without changing state (e.g. the server's 250), only while still in `state`."""
        result = await self._c.update_one({"_id": request_id, "state": state.value},
                                          {"$set": {**fields, "updated_at": utcnow()}})
        return result.matched_count == 1

    async def due(self, now: datetime, limit: int = 100) -> list[dict]:
        """Scheduled or retrying requests whose time has come, and `sending` ones whose lease ran out
        (their sender died: they need recovery, never a blind resend)."""
        query = {"$or": [
            {"state": {"$in": [SendState.SCHEDULED.value, SendState.PENDING.value]}, "due_at": {"$lte": now}},
            {"state": SendState.SENDING.value, "lease_until": {"$lte": now}},
        ]}
        return await self._c.find(query).sort("due_at", 1).limit(limit).to_list(limit)

    async def count_by_state(self, account_id: str | None = None) -> dict[str, int]:
        match = {"account_id": account_id} if account_id else {}
        rows = await self._c.aggregate([{"$match": match}, {"$group": {"_id": "$state", "n": {"$sum": 1}}}]).to_list(None)
        return {r["_id"]: r["n"] for r in rows}
