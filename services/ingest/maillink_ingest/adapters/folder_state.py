"""Each folder's stored sync state, so a restart resumes where it stopped.

`state` names the step of the folder's state machine (sync/folder_states.py). Documents written
before the state machine existed carry `initial_done` instead; they are migrated when read.
"""
from dataclasses import asdict, dataclass, field, fields
from datetime import datetime, timezone

from pymongo.asynchronous.database import AsyncDatabase

from ..domain import uid_ranges

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

    async def load(self, account_id: str, folder: str) -> FolderState | None:
        doc = await self._col.find_one({"_id": f"{account_id}\x1f{folder}"})
        return from_document(doc) if doc else None

    async def save(self, state: FolderState) -> None:
        await self._col.replace_one({"_id": state.key}, to_document(state), upsert=True)

    async def for_account(self, account_id: str) -> list[FolderState]:
        return [from_document(d) async for d in self._col.find({"account_id": account_id})]

    async def request_reconcile(self, account_id: str, folder: str | None = None) -> int:
        """On-demand reconciliation: the next pass of each folder runs it."""
        query = {"account_id": account_id, **({"folder": folder} if folder else {})}
        return (await self._col.update_many(query, {"$set": {"reconcile_requested": True}})).modified_count

    async def delete(self, account_id: str, folder: str) -> None:
        await self._col.delete_one({"_id": f"{account_id}\x1f{folder}"})

    async def delete_account(self, account_id: str) -> None:
        await self._col.delete_many({"account_id": account_id})

    async def ensure_indexes(self) -> None:
        await self._col.create_index("account_id")


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=timezone.utc)
