"""What tells the mail writer that a fact it decides from changed, and which.

The mail writer keeps the facts in memory (adapters/facts_cache.py) and reads the clock once per
batch instead of re-reading every fact: the same state before and after a batch means no fact
changed in between. Order on the facts side: change the fact, then tick, then look for the
affected messages.

One document per process (`facts_clock/<process id>`), written only by that process's facts
consumer, so no two writers race on one document (FerretDB v1 does not make a read-modify-write
atomic; a lost update would hide a change). Each tick appends to the process's `recent` list
(`facts_clock_recent/<process id>`) which cached entries it changed (table -> keys, the tables of
FactsCache), or None for "anything", and then writes a fresh random token. The writer reads the
tokens (a scan of small documents, twice a batch); for a process whose token moved, it reads its
`recent` list (by `_id`) and drops just the keys of the ticks after the token it saw last.
It drops everything when it cannot tell: the token it saw is no longer listed (more than
RECENT_KEYS keys changed since), a document it never saw has lost its first entries, or an
entry says "anything". Deleting a document is always safe (a document seen again is read from
its first listed entry), so documents not ticked for a day are deleted: processes come and go.
"""
import time
import uuid
from datetime import timedelta

from pymongo.asynchronous.database import AsyncDatabase

from maillink_schemas.base import utcnow

RECENT_KEYS = 5_000            # keys listed over a document's recent ticks, at most (rewritten per tick)
_PRUNE_AFTER = timedelta(days=1)
_PRUNE_EVERY_S = 3600.0
Changed = dict[str, set[str]]  # table -> keys; None where used: anything may have changed


class Changes:
    """The facts side's notes of what it changed since the last tick."""

    def __init__(self) -> None:
        self._tables: Changed = {}
        self._anything = False

    def note(self, table: str, keys) -> None:
        self._tables.setdefault(table, set()).update(keys)

    def note_anything(self) -> None:
        self._anything = True

    def drain(self) -> Changed | None:
        out = None if self._anything else self._tables
        self._tables, self._anything = {}, False
        return out


class FactsClock:
    def __init__(self, db: AsyncDatabase, process_id: str | None = None) -> None:
        self.collection = db["facts_clock"]
        self.recent = db["facts_clock_recent"]   # apart: the tokens, read twice a batch, stay small
        self._id = process_id or uuid.uuid4().hex
        self._recent: list[dict] = []
        self._trimmed = False
        self._pruned_at = float("-inf")

    # --- the facts side --------------------------------------------------------------------
    async def tick(self, changed: Changed | None = None) -> None:
        """`changed`: what changed since the last tick (None: anything)."""
        entry = {"token": uuid.uuid4().hex,
                 "changed": None if changed is None else {t: sorted(k) for t, k in changed.items() if k}}
        self._recent.append(entry)
        while len(self._recent) > 1 and _size(self._recent) > RECENT_KEYS:
            self._recent.pop(0)
            self._trimmed = True
        if _size(self._recent) > RECENT_KEYS:   # one tick listing more: it says "anything"
            self._recent[-1] = {"token": entry["token"], "changed": None}
        # The list before the token: a writer that sees the token finds its tick listed.
        await self.recent.replace_one({"_id": self._id}, {"_id": self._id, "recent": self._recent,
                                                          "trimmed": self._trimmed}, upsert=True)
        await self.collection.replace_one({"_id": self._id}, {"_id": self._id, "token": entry["token"],
                                                              "at": utcnow()}, upsert=True)
        if time.monotonic() - self._pruned_at >= _PRUNE_EVERY_S:
            self._pruned_at = time.monotonic()
            old = {"at": {"$lt": utcnow() - _PRUNE_AFTER}, "_id": {"$ne": self._id}}
            for doc in [d async for d in self.collection.find(old, {"_id": 1})]:
                await self.collection.delete_one({"_id": doc["_id"]})   # the token first: then unseen
                await self.recent.delete_one({"_id": doc["_id"]})

    # --- the mail writer's side ------------------------------------------------------------
    async def state(self) -> dict[str, str]:
        """Every document's current token."""
        return {d["_id"]: d.get("token", "") async for d in self.collection.find({}, {"token": 1})}

    async def changes(self, before: dict[str, str], now: dict[str, str]) -> Changed | None:
        """What changed from state `before` to `now` (a superset), or None: anything may have."""
        out: Changed = {}
        for doc_id, token in now.items():
            if before.get(doc_id) == token:
                continue
            doc = await self.recent.find_one({"_id": doc_id})
            if doc is None:
                return None
            tokens = [e["token"] for e in doc["recent"]]
            if doc_id in before:
                if before[doc_id] not in tokens:
                    return None
                entries = doc["recent"][tokens.index(before[doc_id]) + 1:]
            elif doc.get("trimmed"):
                return None
            else:
                entries = doc["recent"]
            for entry in entries:
                if entry.get("changed") is None:
                    return None
                for table, keys in entry["changed"].items():
                    out.setdefault(table, set()).update(keys)
        return out


def _size(recent: list[dict]) -> int:
    return sum(len(k) for e in recent if e["changed"] for k in e["changed"].values())


def token_of(state: dict[str, str]) -> str:
    return ",".join(f"{k}:{v}" for k, v in sorted(state.items()))
