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

The batch's `sent` is an insert too: an outcome record `send_outcomes/<request id>#sent` (carrying
the step and `sent_copy`), folded in last, and final. The request's document takes it over later
(`settle`, in bulk, when the worker is idle or the backlog is large): until then it still says `pending`
with a past due_at, so `due` leaves out what this process knows to be leased or recorded, and a reader
that meets an unsettled outcome queues it for settling. The outcome, not the settling, is the commit: a
crash before settling loses nothing.

Group commit (service_layer/batch.py): many requests are created, claimed and moved per store
command. Measured on FerretDB v1/SQLite: insert_many costs ~0.1 ms a document against ~1 ms for
insert_one; an update costs 1.4-5 ms a document however it is sent (100 `UpdateOne`s or one
`update_many` over 100 ids alike), and bulk updates sent
concurrently deadlock the store (so this process sends one at a time, in chunks of at most 40
statements: one of ~100 deadlocks too).
"""
import asyncio
from collections.abc import Container
from datetime import datetime, timedelta

from pymongo import UpdateOne
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from maillink_runtime.mongo import BULK_CHUNK, bulk_write_chunked, insert_new
from maillink_schemas.base import utcnow
from maillink_schemas.outbound import SendState

from ..domain.states import sources


TERMINAL = frozenset({SendState.SENT.value, SendState.FAILED.value, SendState.CANCELLED.value, SendState.UNKNOWN.value})


class RequestStore:
    def __init__(self, db: AsyncDatabase) -> None:
        self._c, self._claims, self._outcomes = db["send_requests"], db["send_claims"], db["send_outcomes"]
        self._bulk_updates = asyncio.Lock()   # see the module docstring: concurrent bulk updates deadlock FerretDB v1
        # Requests seen `sending` (by a step claim) with a live lease, and until when: the document
        # still says `pending` with a past due_at, so `due` would offer them to every sweep.
        self._leased: dict[str, datetime] = {}
        # Outcomes recorded (or met) whose request document does not show them yet: what it takes over.
        self._unsettled: dict[str, dict] = {}

    async def create_many(self, docs: list[dict]) -> list[tuple[dict, bool]]:
        """`create` for many requests in one insert: (stored document, created) in the given order."""
        if not docs:
            return []
        now = utcnow()
        taken = await _insert_many(self._c, [{**d, "created_at": now, "updated_at": now} for d in docs])
        out = []
        for i, doc in enumerate(docs):
            if i in taken:
                stored = await self.get(doc["_id"])
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

    async def record_many(self, done: list[tuple[str, dict]]) -> None:
        """Final states of claimed requests in one insert: (request id, fields with `state`, which the
        document takes over when settled). An outcome already recorded stands (nothing changes a
        final state)."""
        if not done:
            return
        # `from_outcome` marks the document that takes the record over (count_by_state counts by it).
        await _insert_many(self._outcomes, [{"_id": _outcome_id(rid), **fields, "from_outcome": True}
                                            for rid, fields in done])
        for rid, fields in done:
            self._unsettled[rid] = {**fields, "from_outcome": True}
            self._leased.pop(rid, None)

    def unsettled(self) -> int:
        return len(self._unsettled)

    async def settle(self, limit: int = BULK_CHUNK) -> int:
        """Writes up to `limit` recorded outcomes into their requests' documents (chunked bulk update),
        so the documents alone are current again and `due` need not skip them. Returns how many."""
        take = list(self._unsettled.items())[:limit]
        if not take:
            return 0
        now = utcnow()
        async with self._bulk_updates:
            await bulk_write_chunked(self._c, [UpdateOne({"_id": rid}, {"$set": {**fields, "updated_at": now}})
                                               for rid, fields in take])
        for rid, _ in take:
            self._unsettled.pop(rid, None)
        return len(take)

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
        await self._outcomes.create_index("sent.message_key")

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
        from the document's `gen` + 1 (only a first try carries a step); a bare claim or a gap ends them.
        Then the outcome, which is final. A final state in the document is final too."""
        rid = stored["_id"]
        doc, newer, gen = dict(stored), {}, stored.get("gen", 0)
        if stored.get("state") in TERMINAL:
            return doc, newer
        while True:
            claim = await self._claims.find_one({"_id": f"{rid}#{gen + 1}"})
            if claim is None or "step" not in claim:
                break
            newer.update(claim["step"])
            gen += 1
        outcome = await self._outcomes.find_one({"_id": _outcome_id(rid)})
        if outcome is not None:
            outcome.pop("_id")
            newer.update(outcome)
            self._unsettled[rid] = outcome
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
        self._current(request_id)

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
        self._current(request_id)
        return result.matched_count == 1

    async def note(self, request_id: str, state: SendState, **fields) -> bool:
        """Records facts without changing state (e.g. the server's 250), only while still in `state`."""
        doc, newer = await self._catch_up(request_id)
        if doc is None or doc["state"] != state.value:
            return False
        result = await self._c.update_one({"_id": request_id, "state": doc["_stored_state"]},
                                          {"$set": {**newer, **fields, "updated_at": utcnow()}})
        self._current(request_id)
        return result.matched_count == 1

    def _current(self, request_id: str) -> None:
        """The document was just written with everything folded in: `due` decides by it again."""
        self._leased.pop(request_id, None)
        self._unsettled.pop(request_id, None)

    async def due(self, now: datetime, limit: int = 100, skip: Container[str] = ()) -> list[dict]:
        """Scheduled or retrying requests whose time has come, and `sending` ones whose lease ran out
        (their sender died: they need recovery, never a blind resend). `skip`: ids the caller has in
        hand already. Only `_id`, `state` and `due_at` are read: callers read the request itself."""
        query: dict = {"$or": [
            {"state": {"$in": [SendState.SCHEDULED.value, SendState.PENDING.value]}, "due_at": {"$lte": now}},
            {"state": SendState.SENDING.value, "lease_until": {"$lte": now}},
        ]}
        # A step claim made it `sending`, or an outcome final, while the document says `pending`: not due
        # (those this process knows of; the rest are read once by whoever advances them, and so become known).
        self._leased = {rid: until for rid, until in self._leased.items() if until > now}
        out = []
        # At most `limit` plus what may be skipped, and never thousands: the rest waits for the next sweep.
        window = min(limit + len(self._leased) + len(self._unsettled) + len(skip), limit * 10)
        cursor = self._c.find(query, {"state": 1, "due_at": 1}).sort("due_at", 1).limit(window)
        async for doc in cursor:
            rid = doc["_id"]
            if rid in self._leased or rid in self._unsettled or rid in skip:
                continue
            out.append(doc)
            if len(out) == limit:
                break
        await cursor.close()
        return out

    async def states(self, account_id: str | None = None) -> dict[str, str]:
        """Every request's state (request id -> state), outcomes included: for tests and benchmarks,
        it reads every document."""
        match = {"account_id": account_id} if account_id else {}
        out = {d["_id"]: d["state"] async for d in self._c.find(match, {"state": 1})}
        async for o in self._outcomes.find({}, {"state": 1, "request": 1}):
            rid = o["_id"].rsplit("#", 1)[0]
            if rid in out and out[rid] not in TERMINAL:
                out[rid] = o["state"]
        return out

    async def count_by_state(self, account_id: str | None = None) -> dict[str, int]:
        """Requests per state, outcomes included, counted by the store. An outcome not yet taken over
        belongs to a document that still says `pending` (a batch claims only those)."""
        match = {"account_id": account_id} if account_id else {}
        counts = {r["_id"]: r["n"] for r in await _group_by_state(self._c, match)}
        unsettled = await self._outcomes.count_documents(match) - await self._c.count_documents(
            {**match, "from_outcome": True})
        if unsettled:
            counts[SendState.PENDING.value] = counts.get(SendState.PENDING.value, 0) - unsettled
            counts[SendState.SENT.value] = counts.get(SendState.SENT.value, 0) + unsettled   # the only outcome recorded
        return {state: n for state, n in counts.items() if n}


async def _insert_many(collection, docs: list[dict]) -> set[int]:
    """Inserts what it can; the indexes of the documents whose _id was taken."""
    return set(await insert_new(collection, docs))


async def _group_by_state(collection, match: dict) -> list[dict]:
    cursor = await collection.aggregate([{"$match": match}, {"$group": {"_id": "$state", "n": {"$sum": 1}}}])
    return await cursor.to_list(None)


def _outcome_id(request_id: str) -> str:
    return f"{request_id}#sent"   # keyed by request and step: the only step recorded this way is `sent`


def _step_claim(doc: dict, step: dict) -> dict:
    if step["gen"] != doc.get("gen", 0) + 1:
        raise ValueError("only the first try of a claim carries a step")
    return {"_id": f"{doc['_id']}#{step['gen']}", "expires": step["lease_until"], "step": step}


def _aware(value: datetime) -> datetime:
    from datetime import timezone
    return value if value.tzinfo else value.replace(tzinfo=timezone.utc)
