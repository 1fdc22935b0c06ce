"""The folder state machine's handlers and the table that dispatches them (nylas' `state_handlers`).

Each handler takes the pass and the folder's state, does one step, and returns the next state and
whether the pass is over. folder_sync.py saves the state after each step.
"""
from datetime import timedelta, timezone

import structlog
from prometheus_client import Gauge

from ..adapters.folder_state import INCREMENTAL, INITIAL, RECONCILE, UIDINVALID, FolderState
from ..domain import uid_ranges
from ..imap.connection import uid_search
from ..imap.fetch import fetch_message_ids
from . import changes
from .pipeline import deliver_uids
from .reconcile import reconcile

log = structlog.get_logger()
PROGRESS = Gauge("maillink_ingest_first_sync_progress_percent",
                 "First-sync window progress per folder (100 when done)", ["account_id", "folder"])
SPURIOUS_SAMPLE = 20  # the newest delivered UIDs whose Message-IDs must match for a change to be spurious


async def initial(p, state: FolderState) -> tuple[str, bool]:
    if not state.window_since:
        state.window_since = (p.now - timedelta(days=p.account.first_sync_days)).strftime("%d-%b-%Y")
        # Quirk: a server that omits UIDNEXT leaves initial_top at 0; nothing is lost, the whole folder
        # then comes in through the incremental step, without the first-sync window.
        state.initial_top = state.top_uid = max(p.selected.uidnext - 1, 0)
        state.window_started_at = p.now
    # SINCE compares INTERNALDATE (arrival at the server), which is what "recent" means here.
    window = [u for u in await uid_search(p.client, f"UID 1:{state.initial_top} SINCE {state.window_since}")
              if u <= state.initial_top] if state.initial_top else []
    wanted = set(window) | await _remapped(p, state)
    settled = set(uid_ranges.to_uids(state.delivered)) | {int(u) for u in state.failed}
    pending = sorted(wanted - settled, reverse=True)
    state.window_total, state.window_done = len(wanted), len(wanted) - len(pending)
    log.info("initial_sync", pending=len(pending), since=state.window_since, remap=bool(state.remap_from))

    def on_settled(group: list[int]) -> None:
        state.window_done += len(group)
        state.initial_cursor = min([*group, *([state.initial_cursor] if state.initial_cursor else [])])
        PROGRESS.labels(p.account.account_id, p.folder.name).set(state.progress_percent)

    await deliver_uids(p, state, pending, True, on_settled)
    if not settled and p.qresync and p.selected.highestmodseq:
        # The whole window was fetched in this pass, after its SELECT: every change since reported by
        # the next QRESYNC SELECT (CHANGEDSINCE this HIGHESTMODSEQ) is all the flag and expunge tracking
        # needs. Without it the incremental step that follows in this same pass fell back to the plain
        # audit: UID FETCH FLAGS of the whole window and every location read back, 7 of 15 s for
        # 20,000 messages (docs/ingest-sync.md). A window begun in an earlier pass keeps that audit:
        # its first messages were fetched before this SELECT.
        state.highestmodseq = p.selected.highestmodseq
    if state.remap_from:
        # Every message of the old UIDVALIDITY now has its new location: the old ones go (published
        # as expunges, after the new locations, see changes.py).
        old = await p.delivery.locations.other_generations(p.account.account_id, p.folder.name, state.uidvalidity)
        state.expunges_pending = True  # published once every other folder has begun a pass (changes.py)
        await p.delivery.locations.mark_gone(p.account.account_id, old, p.now)
        state.remap_from = 0
    state.window_done = state.window_total
    PROGRESS.labels(p.account.account_id, p.folder.name).set(100)
    return INCREMENTAL, False


async def _remapped(p, state: FolderState) -> set[int]:
    """After a real UIDVALIDITY change: the new UIDs of every message known before (by Message-ID)."""
    if not state.remap_from or not p.delivery.locations:
        return set()
    old = await p.delivery.locations.in_folder(p.account.account_id, p.folder.name, state.remap_from)
    known = {loc.message_id for loc in old.values() if loc.message_id}
    if not known or not state.top_uid:
        return set()
    ids = await fetch_message_ids(p.client, f"1:{state.top_uid}")
    return {uid for uid, mid in ids.items() if mid in known}


async def incremental(p, state: FolderState) -> tuple[str, bool]:
    if not state.window_since:
        _adopt(p, state)
    await changes.apply(p, state)
    if not (p.selected.uidnext and p.selected.uidnext - 1 <= state.top_uid):
        # "n:*" always matches the highest UID even when it is below n (RFC 3501 6.4.8): filter.
        uids = sorted(u for u in await uid_search(p.client, f"UID {state.top_uid + 1}:*") if u > state.top_uid)
        settled: set[int] = set()

        def on_settled(group: list[int]) -> None:
            # top_uid only moves over a prefix of settled UIDs: a group settled out of order never
            # lets it pass a UID that is still open.
            settled.update(group)
            for uid in uids:
                if uid <= state.top_uid:
                    continue
                if uid not in settled:
                    break
                state.top_uid = uid

        await deliver_uids(p, state, uids, False, on_settled)
    if p.qresync and p.selected.highestmodseq:
        state.highestmodseq = p.selected.highestmodseq
    await changes.publish_settled_expunges(p, state)
    if state.reconciled_at is None and not state.reconcile_requested:
        state.reconciled_at = p.now  # the audit clock starts with the first incremental pass
    due = state.reconcile_requested or (
        p.now - state.reconciled_at.replace(tzinfo=state.reconciled_at.tzinfo or timezone.utc)
    ).total_seconds() >= p.sync.reconcile_interval_s
    return (RECONCILE, False) if due else (INCREMENTAL, True)


def _adopt(p, state: FolderState) -> None:
    """A state stored before the state machine knew neither its window nor what it delivered. The
    first-sync window is taken as counting from now (the original began earlier, so this is a part
    of it) and the next pass audits it: reconciliation re-delivers it (same ids and keys), after
    which flag changes and expunges are tracked for it too."""
    state.window_since = (p.now - timedelta(days=p.account.first_sync_days)).strftime("%d-%b-%Y")
    state.initial_top = state.initial_top or state.top_uid
    state.reconcile_requested = True


async def uidinvalid(p, state: FolderState) -> tuple[str, bool]:
    new = p.selected.uidvalidity
    if await _spurious(p, state):
        # Quirk: some servers (and restored backups, and Dovecot after an index rebuild) announce a
        # new UIDVALIDITY while the same messages keep the same UIDs. Re-downloading would change
        # nothing but cost a full re-import, so the state is kept under the new number.
        log.warning("uidvalidity_spurious", old=state.uidvalidity, new=new)
        if p.delivery.locations:
            await p.delivery.locations.relabel(p.account.account_id, p.folder.name, state.uidvalidity, new)
        state.uidvalidity = new
        return state.resume_state, False
    log.warning("uidvalidity_changed", old=state.uidvalidity, new=new)
    remap_from = state.uidvalidity
    top = max(p.selected.uidnext - 1, 0)
    fresh = FolderState(state.account_id, state.folder, uidvalidity=new, window_since=state.window_since,
                        initial_top=top, top_uid=top, window_started_at=p.now, synced=state.synced, remap_from=remap_from, reconcile_gaps_total=state.reconcile_gaps_total)
    state.__dict__.update(fresh.__dict__)
    return INITIAL, False


async def _spurious(p, state: FolderState) -> bool:
    old = await p.delivery.locations.in_folder(p.account.account_id, p.folder.name, state.uidvalidity) \
        if p.delivery.locations else {}
    sample = sorted(uid for uid, loc in old.items() if loc.message_id)[-SPURIOUS_SAMPLE:]
    if sample:
        # The same Message-IDs at the same UIDs: the numbering did not really change.
        now_ids = await fetch_message_ids(p.client, sample)
        return all(now_ids.get(uid) == old[uid].message_id for uid in sample)
    # Nothing to compare: the same UIDNEXT and message count is the best evidence there is.
    return bool(state.uidnext) and (state.uidnext, state.exists) == (p.selected.uidnext, p.selected.exists)


STATE_HANDLERS = {
    INITIAL: initial,
    INCREMENTAL: incremental,
    UIDINVALID: uidinvalid,
    RECONCILE: reconcile,
}
