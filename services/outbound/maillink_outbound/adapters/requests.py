"""Send requests and their stored state (domain/states.py).

Exclusive steps (entering `sending`, taking over a crashed send, cancelling) are won by inserting
a claim: `<request id>#<generation>`, unique by _id. Quirk (FerretDB v1): a conditional
update_one is not atomic under concurrency (three concurrent `state: pending -> sending` updates
all matched in our test), and the store has no transactions, but a unique-key insert is atomic on
every MongoDB-compatible store. Claims are never deleted, so there is no delete race; a claim
whose holder died before recording its step expires, and the next generation is tried.

Group commit (service_layer/batch.py): many requests are created, claimed and moved per store
command. Measured on FerretDB v1/SQLite: insert_many costs ~0.1 ms a document against ~1 ms for
insert_one; an update costs ~1 ms a statement however it is sent, and bulk updates sent
concurrently deadlock the store (so this process sends one at a time, in chunks of at most 40
statements: one of ~100 deadlocks too).
"""
import asyncio
from datetime import datetime, timedelta

from pymongo import InsertOne, UpdateOne
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import BulkWriteError, DuplicateKeyError

from maillink_runtime.mongo import bulk_write_chunked
from maillink_schemas.base import utcnow
from maillink_schemas.outbound import SendState

from ..domain.states import sources


DUPLICATE_KEY = 11000


class RequestStore:
    def __init__(self, db: AsyncDatabase) -> None:
        self._c, self._claims = db["send_requests"], db["send_claims"]
        self._bulk_updates = asyncio.Lock()   # see the module docstring: concurrent bulk updates deadlock FerretDB v1

    async def create_many(self, docs: list[dict]) -> list[tuple[dict, bool]]:
        """`create` for many requests in one insert: (stored document, created) in the given order."""
        if not docs:
            return []
        now = utcnow()
        taken = await _insert_many(self._c, [{**d, "created_at": now, "updated_at": now} for d in docs])
        out = []
        for i, doc in enumerate(docs):
            if i in taken:
                stored = await self._c.find_one({"_id": doc["_id"]})
                out.append((stored, False) if stored is not None else await self.create(doc))
            else:
                out.append((doc, True))
        return out

    async def claim_many(self, docs: list[dict], hold_s: float) -> set[str]:
        """The first try of `claim` for many requests in one insert: the ids won at generation
        `gen + 1`. The documents given are then current (as in `claim` for a first generation): nobody
        took an exclusive step since they were read. The others go through `claim` one by one."""
        if not docs:
            return set()
        expires = utcnow() + timedelta(seconds=hold_s)
        taken = await _insert_many(self._claims, [{"_id": f"{d['_id']}#{d.get('gen', 0) + 1}", "expires": expires}
                                                  for d in docs])
        return {d["_id"] for i, d in enumerate(docs) if i not in taken}

    async def set_many(self, changes: list[tuple[str, SendState, dict]]) -> None:
        """`set` for many claimed steps: (request id, target state, fields)."""
        now = utcnow()
        ops = [UpdateOne({"_id": rid}, {"$set": {"state": target.value, "updated_at": now, **fields}})
               for rid, target, fields in changes]
        async with self._bulk_updates:
            await bulk_write_chunked(self._c, ops)

    async def claim(self, doc: dict, hold_s: float) -> tuple[int, dict] | None:
        """Wins the next exclusive step of a request: (generation, the request as it is now), or None
        when another worker holds it. The winner records the generation (`gen`) with its step."""
        gen = doc.get("gen", 0) + 1
        while True:
            try:
                await self._claims.insert_one({"_id": f"{doc['_id']}#{gen}",
                                               "expires": utcnow() + timedelta(seconds=hold_s)})
                break
            except DuplicateKeyError:
                held = await self._claims.find_one({"_id": f"{doc['_id']}#{gen}"})
                if held is not None and _aware(held["expires"]) > utcnow():
                    return None
                gen += 1  # its holder died before recording its step
        if gen == 1:
            return gen, doc  # the first claim ever: nobody has taken an exclusive step, doc is current
        # Read after winning: anyone who acted before holds an older generation and recorded it
        # long before its claim could expire, so this read sees their step.
        return gen, await self._c.find_one({"_id": doc["_id"]})

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

    async def set(self, request_id: str, target: SendState, unset: tuple[str, ...] = (), **fields) -> None:
        """The state change of a claimed step (the claim made it exclusive)."""
        update: dict = {"$set": {"state": target.value, "updated_at": utcnow(), **fields}}
        if unset:
            update["$unset"] = {f: "" for f in unset}
        await self._c.update_one({"_id": request_id}, update)

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
        cursor = await self._c.aggregate([{"$match": match}, {"$group": {"_id": "$state", "n": {"$sum": 1}}}])
        rows = await cursor.to_list(None)
        return {r["_id"]: r["n"] for r in rows}


async def _insert_many(collection, docs: list[dict]) -> set[int]:
    """Inserts what it can; the indexes of the documents whose _id was taken."""
    try:
        await collection.bulk_write([InsertOne(d) for d in docs], ordered=False)
        return set()
    except BulkWriteError as exc:
        errors = exc.details.get("writeErrors", [])
        if any(e.get("code") != DUPLICATE_KEY for e in errors):
            raise
        return {e["index"] for e in errors}


def _aware(value: datetime) -> datetime:
    from datetime import timezone
    return value if value.tzinfo else value.replace(tzinfo=timezone.utc)
