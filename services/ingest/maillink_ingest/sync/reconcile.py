"""Reconciliation: the proof that nothing was silently lost, as a step of the folder state machine.

It compares three records and repairs each difference:
- the server's UIDs in the synced range (the first-sync window plus everything above it) with
  the UIDs ingest delivered: a UID on the server that was never delivered is a gap, re-delivered
  (poison messages recorded earlier are retried the same way);
- the delivered UIDs with the server: a delivered UID the server no longer has is an expunge
  nobody noticed, reported like any other;
- the delivered locations with the blob store: a delivered message whose raw MIME is missing is
  fetched again, its blob stored again and its event published again (idempotent: same ids).
What it found is counted (a metric, the folder state, and mail.folder.reconciled.v1).
"""
import asyncio

import structlog
from prometheus_client import Counter

from maillink_schemas.base import deterministic_id
from maillink_schemas.mail import FolderReconciled
from maillink_schemas.topics import Topic

from ..adapters.folder_state import INCREMENTAL, FolderState
from ..domain import uid_ranges
from ..imap.connection import uid_search
from .changes import note_gone, ranges_arg
from .pipeline import deliver_uids

GAPS = Counter("maillink_ingest_reconcile_gaps_total", "Differences reconciliation found and repaired", ["kind"])
log = structlog.get_logger()
BLOB_CHECKS_AT_ONCE = 64


async def reconcile(p, state: FolderState) -> tuple[str, bool]:
    expected = set(await _synced_range(p, state))
    delivered = set(uid_ranges.to_uids(state.delivered))
    present = set(await uid_search(p.client, f"UID {ranges_arg(state.delivered)}")) if delivered else set()
    for uid in [u for u in state.failed if int(u) not in expected]:
        state.failed.pop(uid)  # a poison message that left the server is nothing to retry
    gaps = sorted(expected - delivered)
    vanished = sorted(delivered - present)
    locations = await p.delivery.locations.in_folder(p.account.account_id, p.folder.name, state.uidvalidity) \
        if p.delivery.locations else {}
    missing_blobs = await _missing_blobs(p, {uid: loc for uid, loc in locations.items() if uid in present})
    if vanished:
        await note_gone(p, state, [locations[u] for u in vanished if u in locations], vanished)
    repair = sorted(set(gaps) | set(missing_blobs))
    synced_before = state.synced
    await deliver_uids(p, state, repair, newest_first=False)
    repaired = state.synced - synced_before
    for kind, n in (("missing", len(gaps)), ("missing_blob", len(missing_blobs)), ("vanished", len(vanished))):
        GAPS.labels(kind).inc(n)
    found = len(gaps) + len(missing_blobs) + len(vanished)
    state.reconcile_gaps, state.reconcile_gaps_total = found, state.reconcile_gaps_total + found
    if found:
        state.last_problem = (f"Reconciliation found {len(gaps)} undelivered message(s), {len(missing_blobs)} "
                              f"missing raw message(s) and {len(vanished)} unnoticed removal(s); "
                              f"{repaired} message(s) delivered again.")
    log.info("reconciled", gaps=len(gaps), missing_blobs=len(missing_blobs), vanished=len(vanished),
             repaired=repaired, failed=len(state.failed))
    await p.delivery.emit(Topic.FOLDER_RECONCILED, [(p.account.account_id, FolderReconciled(
        event_id=deterministic_id("reconciled", p.account.account_id, p.folder.name, p.now.isoformat()),
        occurred_at=p.now, account_id=p.account.account_id, folder=p.folder.name, uidvalidity=state.uidvalidity,
        server_messages=len(expected), delivered=len(delivered - set(vanished)), missing=len(gaps),
        missing_blobs=len(missing_blobs), repaired=repaired, vanished=len(vanished), failed=len(state.failed)))])
    state.reconciled_at, state.reconcile_requested = p.now, False
    return INCREMENTAL, True


async def _missing_blobs(p, locations: dict) -> list[int]:
    # HEADs in parallel, a bounded number at a time: on S3 each one is a round trip.
    uids, missing = sorted(locations), []
    for start in range(0, len(uids), BLOB_CHECKS_AT_ONCE):
        chunk = uids[start:start + BLOB_CHECKS_AT_ONCE]
        found = await asyncio.gather(*(p.delivery.blob_exists(locations[u].blob_id) for u in chunk))
        missing += [u for u, ok in zip(chunk, found) if not ok]
    return missing


async def _synced_range(p, state: FolderState) -> list[int]:
    """The UIDs sync is responsible for: the window below initial_top, everything up to top_uid above it."""
    window = [u for u in await uid_search(p.client, f"UID 1:{state.initial_top} SINCE {state.window_since}")
              if u <= state.initial_top] if state.initial_top and state.window_since else []
    above = [u for u in await uid_search(p.client, f"UID {state.initial_top + 1}:{state.top_uid}")
             if state.initial_top < u <= state.top_uid] if state.top_uid > state.initial_top else []
    return window + above
