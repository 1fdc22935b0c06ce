"""Each folder's stored sync state, so a restart resumes where it stopped.

`state` names the step of the folder's state machine (sync/folder_states.py). Documents written
before the state machine existed carry `initial_done` instead; they are migrated when read.
"""
import asyncio
from dataclasses import asdict, dataclass, field, fields
from datetime import datetime, timezone

from pymongo import UpdateOne
from pymongo.asynchronous.database import AsyncDatabase

from maillink_runtime.mongo import bulk_write_chunked

from ..domain import uid_ranges
from .batched_writes import BatchedWrites

INITIAL, INCREMENTAL, UIDINVALID, RECONCILE = "initial", "incremental", "uidinvalid", "reconcile"


@dataclass
class FolderState:
    account_id: str
    folder: str
    state: str = INITIAL
    uidvalidity: int = 0
    # What SELECT said last time; a UIDVALIDITY change with the same figures is suspect (uidinvalid).
    uidnext: int = 0
    exists: int = 0
    highestmodseq: int = 0  # 0: the server has no CONDSTORE, or nothing is known yet
    # UIDs <= initial_top form the first-sync window (INTERNALDATE >= window_since); above it, everything.
    initial_top: int = 0
    window_since: str = ""  # IMAP date, e.g. 24-Nov-2026
    # Highest UID covered: the incremental step looks above it.
    top_uid: int = 0
    # Initial sync goes newest first; `initial_cursor` is the lowest UID settled so far (0 = not begun).
    initial_cursor: int = 0
    # UIDs delivered (published with their blob) as merged [low, high] ranges (domain/uid_ranges.py).
    delivered: list[list[int]] = field(default_factory=list)
    # Poison messages: UID (as text; document keys are strings) -> reason. Reconciliation retries them.
    failed: dict[str, str] = field(default_factory=dict)
    synced: int = 0
    # First-sync progress, for the status API and the gauge: see progress_percent / eta_seconds.
    window_total: int = 0
    window_done: int = 0
    window_started_at: datetime | None = None
    # Reconciliation: when it last ran, what it found, and whether someone asked for one.
    reconciled_at: datetime | None = None
    reconcile_gaps: int = 0
    reconcile_gaps_total: int = 0
    reconcile_requested: bool = False
    # The step to return to when a UIDVALIDITY change turns out to be spurious.
    resume_state: str = INITIAL
    # A real UIDVALIDITY change: the initial step re-maps every message known before, not only the window.
    remap_from: int = 0  # the UIDVALIDITY being re-mapped (0 = none)
    # When this folder's latest pass began: an expunge waits until every other folder passed after it.
    pass_started_at: datetime | None = None
    # Locations of this folder may be marked gone with their expunge not yet published. Finding
    # them scans every location (FerretDB v1), so a pass looks only while this is set. A new
    # state (the folder's first, or one rebuilt after its document was deleted) and one stored
    # before this field existed look once.
    expunges_pending: bool = True
    # The latest problem in words (a poison message, a repaired gap), for the status API.
    last_problem: str | None = None

    @property
    def key(self) -> str:
        return f"{self.account_id}\x1f{self.folder}"

    @property
    def initial_done(self) -> bool:
        return self.state != INITIAL

    @property
    def initial_total(self) -> int:  # the name the status API used before the state machine
        return self.window_total

    @property
    def progress_percent(self) -> float:
        if self.window_total <= 0:
            return 100.0 if self.initial_done else 0.0
        return round(min(self.window_done / self.window_total, 1.0) * 100, 1)

    def eta_seconds(self, now: datetime | None = None) -> float | None:
        """Estimated time left in the first-sync window, from the rate so far; None until known."""
        if self.initial_done:
            return 0.0
        if not self.window_started_at or self.window_done <= 0:
            return None
        elapsed = ((now or datetime.now(timezone.utc)) - _aware(self.window_started_at)).total_seconds()
        return round(elapsed / self.window_done * max(self.window_total - self.window_done, 0), 1)


_FIELDS = {f.name for f in fields(FolderState)}
_INDEX_BUILT = "\x00built"  # the folder index's marker: states stored before it exist are indexed


def from_document(doc: dict) -> FolderState:
    doc = {k: v for k, v in doc.items() if k != "_id"}
    if "state" not in doc:
        # Written before the state machine: the flags said it. What was delivered is unknown, so
        # `delivered` starts empty; the incremental step adopts such a state (folder_states._adopt)
        # and its first reconciliation re-delivers the window (idempotent: same keys, same ids).
        doc["state"] = INCREMENTAL if doc.get("initial_done") else INITIAL
        doc.setdefault("initial_top", doc.get("top_uid", 0))
    doc["delivered"] = uid_ranges.parse(doc.get("delivered") or "")
    return FolderState(**{k: v for k, v in doc.items() if k in _FIELDS})


def to_document(state: FolderState) -> dict:
    # The computed progress is stored too, so readers of the document alone see it.
    # Quirk (FerretDB v1): no nested arrays in documents, so the UID ranges are stored as an IMAP
    # sequence set ("1:500,502:900"), which is also the most compact text for them.
    return {"_id": state.key, **asdict(state), "delivered": uid_ranges.format(state.delivered),
            "initial_done": state.initial_done,
            "progress_percent": state.progress_percent, "eta_seconds": state.eta_seconds(),
            "failed_count": len(state.failed)}


class FolderStateStore:
    def __init__(self, db: AsyncDatabase) -> None:
        self._col = db["folder_state"]
        # Per account, the names of its folders with a stored state (`_id` = account id): a full
        # pass learns which stored folders left the sync with one read by `_id`, not a scan of
        # every state (FerretDB v1: 250 ms per scan of 2,000 states, every pass of every account).
        self._index = db["folder_index"]
        self._writes = BatchedWrites(self._col)  # saves of many folders share bulk commands
        # for_account callers waiting for the next scan, and the task that runs the scans.
        self._waiting: dict[str, list[asyncio.Future]] = {}
        self._scans: asyncio.Task | None = None

    async def load(self, account_id: str, folder: str) -> FolderState | None:
        doc = await self._col.find_one({"_id": f"{account_id}\x1f{folder}"})
        return from_document(doc) if doc else None

    async def save(self, state: FolderState) -> None:
        document = to_document(state)
        await self._writes.replace(document.pop("_id"), document)

    async def for_account(self, account_id: str) -> list[FolderState]:
        """Every stored folder state of the account.

        FerretDB v1 pushes down only `_id` equality: a filter on `account_id` scans the whole
        collection, so 1,000 accounts each asking at start-up cost a million documents read
        (make bench-idle). Concurrent callers therefore share scans: a caller waits for the next
        scan that *starts* after it asked (so it sees its own earlier writes), and that one scan
        answers everyone waiting by then."""
        future = asyncio.get_running_loop().create_future()
        self._waiting.setdefault(account_id, []).append(future)
        if self._scans is None or self._scans.done():
            self._scans = asyncio.create_task(self._scan_while_waited(), name="folder-state-scans")
        return await future

    async def _scan_while_waited(self) -> None:
        waiting: dict[str, list[asyncio.Future]] = {}
        try:
            while self._waiting:
                waiting, self._waiting = self._waiting, {}
                ids = list(waiting)
                query = {"account_id": ids[0]} if len(ids) == 1 else {"account_id": {"$in": ids}}
                try:
                    found: dict[str, list[dict]] = {a: [] for a in ids}
                    async for doc in self._col.find(query):
                        found[doc["account_id"]].append(doc)
                except Exception as exc:  # noqa: BLE001 - each waiting caller gets the store's error
                    _settle(waiting, exc=exc)
                    continue
                _settle(waiting, found=found)
        except BaseException:  # cancelled (shutdown): nobody may wait for a scan that never comes
            stopped = RuntimeError("the folder state scan was stopped")
            _settle(waiting, exc=stopped)
            _settle(self._waiting, exc=stopped)
            self._waiting = {}
            raise

    async def remember(self, account_id: str, folder: str) -> None:
        """Before a folder's first state is saved: the index may name a folder without a state
        (harmless), never the other way round."""
        await self._index.update_one({"_id": account_id}, {"$addToSet": {"folders": folder}}, upsert=True)

    async def folders(self, account_id: str) -> list[str]:
        """The folders of the account with a stored state (from the index)."""
        doc = await self._index.find_one({"_id": account_id})
        return sorted((doc or {}).get("folders", []))

    async def build_index(self) -> None:
        """Once per database: index the states stored before the index existed (one scan)."""
        if await self._index.find_one({"_id": _INDEX_BUILT}):
            return
        names: dict[str, set[str]] = {}
        async for doc in self._col.find({}, {"account_id": 1, "folder": 1}):
            names.setdefault(doc["account_id"], set()).add(doc["folder"])
        await bulk_write_chunked(self._index, [UpdateOne({"_id": a}, {"$addToSet": {"folders": {"$each": sorted(f)}}},
                                                         upsert=True) for a, f in names.items()])
        await self._index.update_one({"_id": _INDEX_BUILT}, {"$set": {"states": sum(map(len, names.values()))}},
                                     upsert=True)

    async def request_reconcile(self, account_id: str, folder: str | None = None) -> int:
        """On-demand reconciliation: the next pass of each folder runs it."""
        query = {"account_id": account_id, **({"folder": folder} if folder else {})}
        return (await self._col.update_many(query, {"$set": {"reconcile_requested": True}})).modified_count

    async def delete(self, account_id: str, folder: str) -> None:
        await self._col.delete_one({"_id": f"{account_id}\x1f{folder}"})
        await self._index.update_one({"_id": account_id}, {"$pull": {"folders": folder}})

    async def delete_account(self, account_id: str) -> None:
        await self._col.delete_many({"account_id": account_id})
        await self._index.delete_one({"_id": account_id})

    async def ensure_indexes(self) -> None:
        await self._col.create_index("account_id")


def _settle(waiting: dict[str, list[asyncio.Future]], *, found: dict[str, list[dict]] | None = None,
            exc: Exception | None = None) -> None:
    for account_id, futures in waiting.items():
        for future in futures:
            if future.done():  # its caller was cancelled
                continue
            if exc is not None:
                future.set_exception(exc)
            else:  # each caller its own objects: the sync mutates states
                future.set_result([from_document(d) for d in found[account_id]])


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=timezone.utc)
