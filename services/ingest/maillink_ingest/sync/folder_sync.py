"""One folder's sync: load its stored state, SELECT, and run the state machine's handlers.

The states and their handlers are in folder_states.py (a table, as nylas' `state_handlers`):
  initial      newest first, within the first-sync window (UIDs <= initial_top)      -> incremental
  incremental  flag changes and expunges (QRESYNC, or the plain fallback), then new UIDs
               above top_uid, oldest first; when an audit is due                       -> reconcile
  uidinvalid   UIDVALIDITY changed: spurious (state kept) -> incremental; real -> initial (re-map)
  reconcile    server UIDs vs delivered, delivered vs blobs; gaps re-delivered        -> incremental
The state is saved after every step and every delivered batch. Handlers are idempotent, so it is
okay to be killed between the end of a step and the save: the step runs again.
"""
from dataclasses import dataclass, field
from datetime import datetime, timezone

import aioimaplib
import structlog

from maillink_schemas.accounts import AccountConfigured

from ..adapters.folder_state import INCREMENTAL, INITIAL, UIDINVALID, FolderState, FolderStateStore, to_document
from ..domain.folders import FolderPlan
from ..imap.connection import Selected, select
from ..imap.fetch import FlagsSeen
from ..imap.qresync import enable_qresync, select_qresync, supports_qresync
from .delivery import Delivery

log = structlog.get_logger()
MAX_STEPS = 5  # uidinvalid -> initial -> incremental -> reconcile -> incremental, at most, per pass


@dataclass(frozen=True)
class FolderSync:
    client: aioimaplib.IMAP4
    account: AccountConfigured
    states: FolderStateStore
    delivery: Delivery
    batch_size: int = 1000  # UIDs per RFC822.SIZE query
    max_batch_bytes: int = 4 * 1024 * 1024  # per UID FETCH group
    reconcile_interval_s: float = 6 * 3600
    use_qresync: bool = True  # False forces the plain fallback (servers without CONDSTORE/QRESYNC)

    async def run(self, folder: FolderPlan, now: datetime | None = None) -> FolderState:
        from .folder_states import STATE_HANDLERS
        now = now or datetime.now(timezone.utc)
        state = await self.states.load(self.account.account_id, folder.name)
        if state is None:
            await self.states.remember(self.account.account_id, folder.name)
            # A new state has no gone locations to look for. (Quirk: a state document deleted by
            # hand leaves its pending expunges unpublished; retiring the folder reports them.)
            state = FolderState(self.account.account_id, folder.name, expunges_pending=False)
        p = await self._open(folder, state, now)
        with structlog.contextvars.bound_contextvars(folder=folder.name):
            if state.uidvalidity and state.uidvalidity != p.selected.uidvalidity and state.state != UIDINVALID:
                state.resume_state, state.state = state.state, UIDINVALID
            elif not state.uidvalidity:
                state.state, state.uidvalidity = INITIAL, p.selected.uidvalidity
            state.pass_started_at = now
            saved: dict | None = None

            async def save() -> None:
                # An unchanged document is not written again: a pass over a quiet folder then costs
                # one write, not one per step (1,000 accounts share one store).
                nonlocal saved
                document = to_document(state)
                if document != saved:
                    await self.states.save(state)
                    saved = document

            for _ in range(MAX_STEPS):
                step = state.state
                state.state, pass_done = await STATE_HANDLERS[step](p, state)
                if pass_done:
                    break
                await save()
            # The step that ends the pass is saved together with what SELECT said: one write, not two.
            state.uidnext, state.exists = p.selected.uidnext, p.selected.exists
            await save()
        return state

    async def _open(self, folder: FolderPlan, state: FolderState, now: datetime) -> "Pass":
        if self.use_qresync and supports_qresync(self.client) and await enable_qresync(self.client):
            q = await select_qresync(self.client, folder.name, state.uidvalidity, state.highestmodseq)
            return Pass(self, folder, q.selected, now, True, q.vanished, q.changed)
        return Pass(self, folder, await select(self.client, folder.name), now, False)


@dataclass
class Pass:
    """One pass over one folder: what SELECT said, and how changes are learnt."""
    sync: FolderSync
    folder: FolderPlan
    selected: Selected
    now: datetime
    qresync: bool
    vanished: list[tuple[int, int]] = field(default_factory=list)
    changed: list[FlagsSeen] = field(default_factory=list)

    @property
    def client(self) -> aioimaplib.IMAP4:
        return self.sync.client

    @property
    def account(self) -> AccountConfigured:
        return self.sync.account

    @property
    def delivery(self) -> Delivery:
        return self.sync.delivery


__all__ = ["FolderSync", "Pass", "INCREMENTAL"]
