"""Send requests and their stored state (domain/states.py).

Exclusive steps (entering `sending`, taking over a crashed send, cancelling) are won by inserting
a claim: `<request id>#<generation>`, unique by _id. Quirk (FerretDB v1): a conditional
update_one is not atomic under concurrency (three concurrent `state: pending -> sending` updates
all matched in our test), and the store has no transactions, but a unique-key insert is atomic on
every MongoDB-compatible store. Claims are never deleted, so there is no delete race; a claim
whose holder died before recording its step expires, and the next generation is tried.

A first claim carries its step. Entering `sending` (Message-ID fixed, summary, lease) is recorded in
the claim that wins it (`step`), not by an update of the request: the request's state is the stored
document folded with the step claims newer than its `gen` (`get`). Every later write of the document
first takes those steps over (`_catch_up`), so the document alone is current again once written, and a
terminal state in the document is final. Only the first try of a claim carries a step; a contested
one (a claim left by a dead process) goes on as before: bare claims, then the step written to the
document.

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
TERMINAL = frozenset({SendState.SENT.value, SendState.FAILED.value, SendState.CANCELLED.value, SendState.UNKNOWN.value})


class RequestStore:
    def __init__(self, db: AsyncDatabase) -> None:
        self._c, self._claims = db["send_requests"], db["send_claims"]
        self._bulk_updates = asyncio.Lock()   # see the module docstring: concurrent bulk updates deadlock FerretDB v1
        # Requests seen `sending` (by a step claim) with a live lease, and until when: the document
        # still says `pending` with a past due_at, so `due` would offer them to every sweep.
        self._leased: dict[str, datetime] = {}

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

    async def claim_many(self, steps: list[tuple[dict, dict]]) -> set[str]:
        """The first try of `claim` for many requests in one insert, each claim carrying the step it
        enters: (request as read, step fields with `state`, `gen` = the request's `gen` + 1 and
        `lease_until`, which is also the claim's expiry). Returns the ids won: their step is recorded.
        A won first try means nobody took an exclusive step since the request was read (any step needs
        this claim). The others go through `claim` one by one."""
        if not steps:
            return set()
        taken = await _insert_many(self._claims, [_step_claim(d, step) for d, step in steps])
        won = {d["_id"] for i, (d, _) in enumerate(steps) if i not in taken}
        self._leased.update((d["_id"], step["lease_until"]) for d, step in steps if d["_id"] in won)
        return won

    async def claim_step(self, doc: dict, step: dict) -> bool:
        """`claim_many` for one request."""
        return doc["_id"] in await self.claim_many([(doc, step)])

    async def set_many(self, changes: list[tuple[str, SendState, dict]]) -> None:
        """`set` for many claimed steps: (request id, target state, fields). The caller passes what the
        document must take over from the step claims (the batch knows the step it claimed)."""
        now = utcnow()
        ops = [UpdateOne({"_id": rid}, {"$set": {"state": target.value, "updated_at": now, **fields}})
               for rid, target, fields in changes]
        async with self._bulk_updates:
            await bulk_write_chunked(self._c, ops)
        for rid, _, _ in changes:
            self._leased.pop(rid, None)

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
        return gen, await self.get(doc["_id"])

    async def ensure_indexes(self) -> None:
        await self._c.create_index([("state", 1), ("due_at", 1)])

    async def create(self, doc: dict) -> tuple[dict, bool]:
        """Stores a new request; a request id seen before returns the stored one (the idempotency key)."""
        try:
            await self._c.insert_one({**doc, "created_at": utcnow(), "updated_at": utcnow()})
            return doc, True
        except DuplicateKeyError:
            return await self.get(doc["_id"]), False

    async def get(self, request_id: str) -> dict | None:
        """The request as it is now: the document folded with its newer step claims."""
        stored = await self._c.find_one({"_id": request_id})
        return None if stored is None else (await self._fold(stored))[0]

    async def _fold(self, stored: dict) -> tuple[dict, dict]:
        """(the request now, the fields the document lacks for that). Step claims follow one another
        from the document's `gen` + 1 (only a first try carries a step); a bare claim or a gap ends them."""
        doc, newer, gen = dict(stored), {}, stored.get("gen", 0)
        while True:
            claim = await self._claims.find_one({"_id": f"{stored['_id']}#{gen + 1}"})
            if claim is None or "step" not in claim:
                break
            newer.update(claim["step"])
            gen += 1
        if stored.get("state") in TERMINAL:
            newer.pop("state", None)   # a terminal state in the document is final
        doc.update(newer)
        if doc.get("state") == SendState.SENDING.value and _aware(doc.get("lease_until") or utcnow()) > utcnow():
            self._leased[doc["_id"]] = _aware(doc["lease_until"])
        else:
            self._leased.pop(doc["_id"], None)
        return doc, newer

    async def _catch_up(self, request_id: str) -> tuple[dict | None, dict]:
        stored = await self._c.find_one({"_id": request_id})
        if stored is None:
            return None, {}
        doc, newer = await self._fold(stored)
        return {**doc, "_stored_state": stored.get("state")}, newer

    async def set(self, request_id: str, target: SendState, unset: tuple[str, ...] = (), **fields) -> None:
        """The state change of a claimed step (the claim made it exclusive)."""
        _, newer = await self._catch_up(request_id)
        update: dict = {"$set": {**newer, "state": target.value, "updated_at": utcnow(), **fields}}
        if unset:
            update["$unset"] = {f: "" for f in unset}
        await self._c.update_one({"_id": request_id}, update)
        self._leased.pop(request_id, None)

    async def move(self, request_id: str, target: SendState, expect: list[SendState] | None = None,
                   unset: tuple[str, ...] = (), **fields) -> bool:
        """A state change while the request is in one of `expect` (by default, the states `target`
        may follow)."""
        doc, newer = await self._catch_up(request_id)
        states = [s.value for s in (expect or sources(target))]
        if doc is None or doc["state"] not in states:
            return False
        update: dict = {"$set": {**newer, "state": target.value, "updated_at": utcnow(), **fields}}
        if unset:
            update["$unset"] = {f: "" for f in unset}
        result = await self._c.update_one({"_id": request_id, "state": doc["_stored_state"]}, update)
        self._leased.pop(request_id, None)
        return result.matched_count == 1

    async def note(self, request_id: str, state: SendState, **fields) -> bool:
        """Records facts without changing state (e.g. the server's 250), only while still in `state`."""
        doc, newer = await self._catch_up(request_id)
        if doc is None or doc["state"] != state.value:
            return False
        result = await self._c.update_one({"_id": request_id, "state": doc["_stored_state"]},
                                          {"$set": {**newer, **fields, "updated_at": utcnow()}})
        self._leased.pop(request_id, None)   # the document is current again: `due` decides by it
        return result.matched_count == 1

    async def due(self, now: datetime, limit: int = 100) -> list[dict]:
        """Scheduled or retrying requests whose time has come, and `sending` ones whose lease ran out
        (their sender died: they need recovery, never a blind resend)."""
        query: dict = {"$or": [
            {"state": {"$in": [SendState.SCHEDULED.value, SendState.PENDING.value]}, "due_at": {"$lte": now}},
            {"state": SendState.SENDING.value, "lease_until": {"$lte": now}},
        ]}
        # A step claim made it `sending` while the document says `pending`: not due before its lease
        # ends (those this process knows of; the rest are read once by whoever advances them).
        self._leased = {rid: until for rid, until in self._leased.items() if until > now}
        if self._leased:
            query["_id"] = {"$nin": list(self._leased)}
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


def _step_claim(doc: dict, step: dict) -> dict:
    if step["gen"] != doc.get("gen", 0) + 1:
        raise ValueError("only the first try of a claim carries a step")
    return {"_id": f"{doc['_id']}#{step['gen']}", "expires": step["lease_until"], "step": step}


def _aware(value: datetime) -> datetime:
    from datetime import timezone
    return value if value.tzinfo else value.replace(tzinfo=timezone.utc)
