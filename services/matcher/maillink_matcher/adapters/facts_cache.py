"""The mail writer's in-memory copy of the facts it decides from: address -> persons, person ->
open deals/leads/projects, the CRM records, users' settings histories and connected accounts.

Why: on the embedded store each `_id` read is a round trip of about 1 ms and an `$in` is a full
scan, so reading these per batch bounded the writer (about 4 reads per message). A full scan of
a collection costs about 1/15 of a read per document, so the first batch after start or a
rebalance takes a snapshot of every table, and misses are then known absences.

Freshness: the facts consumer ticks the facts clock after every fact it changes, saying which
cached entries it changed (adapters/facts_clock.py). `sync()` reads the clock once per batch;
when it moved, just those entries are dropped and read through again (in a table read whole,
they are marked to be re-read, since a miss there is a known absence). When the clock cannot
tell what changed, everything is dropped and read through; a new snapshot is taken at most
every `resnapshot_s`, so a stream of such changes costs reads, not repeated scans.
Settings' `current` (deletes' sync-back) is always read from the store.
"""
import time

from pymongo.asynchronous.collection import AsyncCollection

from .facts_clock import Changed, FactsClock, token_of
from .projections import CrmProjections
from .settings import SettingsStore

_KINDS = ("person", "organization", "deal", "lead", "project", "user")
_OPEN = ("deal", "lead", "project")


class FactsCache:
    def __init__(self, crm: CrmProjections, settings: SettingsStore, clock: FactsClock,
                 max_snapshot: int = 1_000_000, resnapshot_s: float = 300.0) -> None:
        self._crm, self._settings, self._clock = crm, settings, clock
        self._max, self._resnapshot_s = max_snapshot, resnapshot_s
        self._state: dict[str, str] = {}
        self._synced = False
        self._snapshot_at = float("-inf")
        self.tables: dict[str, dict[str, object]] = {}
        self.complete: set[str] = set()
        self.stale: dict[str, set[str]] = {}   # entries of complete tables to read again
        self._generation = 0  # moves whenever entries are dropped (see _get)

    def clear(self) -> None:
        """Forget everything (a rebalance); the next sync takes a snapshot."""
        self.tables, self.complete, self.stale, self._synced = {}, set(), {}, False
        self._generation += 1
        self._snapshot_at = float("-inf")

    async def sync(self) -> str | None:
        state = await self._clock.state()
        if self._synced and state == self._state:
            return token_of(state)
        changed = await self._clock.changes(self._state, state) if self._synced else None
        self._state, self._synced = state, True
        if changed is not None:
            self._forget(changed)
            return token_of(state)
        self.tables, self.complete, self.stale = {}, set(), {}
        self._generation += 1
        if time.monotonic() - self._snapshot_at >= self._resnapshot_s:
            await self._snapshot()
        return token_of(state)

    def _forget(self, changed: Changed) -> None:
        self._generation += 1
        for table, keys in changed.items():
            cached = self.tables.get(table, {})
            for key in keys:
                cached.pop(key, None)
            if table in self.complete:
                self.stale.setdefault(table, set()).update(keys)

    async def _snapshot(self) -> None:
        self._snapshot_at = time.monotonic()
        sources = {"address": (self._crm.address_persons.collection, lambda d: tuple(sorted(d.get("ids", []))) or None),
                   "history": (self._settings.settings, lambda d: d.get("history", [])),
                   "accounts": (self._settings.accounts, lambda d: d)}
        sources.update({f"open_{k}": (self._crm.open_items[k].collection, lambda d: tuple(sorted(d.get("ids", []))) or None)
                        for k in _OPEN})
        sources.update({f"record_{k}": (self._crm.by_kind[k].collection, lambda d: d) for k in _KINDS})
        for table, (collection, value) in sources.items():
            loaded = await _scan(collection, value, self._max)
            if loaded is not None:
                self.tables[table] = loaded
                self.complete.add(table)

    async def _get(self, table: str, keys: list[str], read) -> dict[str, object]:
        cached = self.tables.setdefault(table, {})
        complete, stale = table in self.complete, self.stale.get(table, set())
        missing = [k for k in dict.fromkeys(keys) if k not in cached and (not complete or k in stale)]
        if not missing:
            return {k: v for k in keys if (v := cached.get(k)) is not None}
        generation = self._generation
        found = await read(missing)
        # A sync() that dropped entries while this read was on its way may have dropped what it
        # read (a change that landed after the read): then the answer serves this call only and
        # is not kept, or the cache would hold the old fact with nothing left to drop it.
        if generation == self._generation:
            cached.update({k: found.get(k) for k in missing})
            stale.difference_update(missing)
        fresh = set(missing)
        return {k: v for k in keys if (v := (found.get(k) if k in fresh else cached.get(k))) is not None}

    # --- CrmPort ---------------------------------------------------------------------------
    async def persons_by_address(self, addresses: list[str]) -> dict[str, tuple[str, ...]]:
        return await self._get("address", addresses, self._crm.persons_by_address)

    async def open_items_of(self, kind: str, person_ids: list[str]) -> dict[str, tuple[str, ...]]:
        return await self._get(f"open_{kind}", person_ids, lambda ids: self._crm.open_items_of(kind, ids))

    async def records(self, kind: str, ids: list[str]) -> dict[str, dict]:
        return await self._get(f"record_{kind}", ids, lambda missing: self._crm.records(kind, missing))

    # --- SettingsPort ----------------------------------------------------------------------
    async def histories(self, keys: list[str]) -> dict[str, list[dict]]:
        return await self._get("history", keys, self._settings.histories)

    async def user_accounts(self, user_ids: list[str]) -> dict[str, dict]:
        return await self._get("accounts", user_ids, self._settings.user_accounts)

    async def current(self, scope: str, owner_id: str) -> dict | None:
        return await self._settings.current(scope, owner_id)


async def _scan(collection: AsyncCollection, value, limit: int) -> dict[str, object] | None:
    """The whole collection, or None if it is larger than `limit` (then it is read through)."""
    if await collection.estimated_document_count() > limit:
        return None
    out: dict[str, object] = {}
    async for doc in collection.find({}):
        if (v := value(doc)) is not None:
            out[doc["_id"]] = v
    return out
