"""One folder's sync, as a state machine whose state is stored after every batch.

  (no state) or UIDVALIDITY changed -> initial
  initial      newest first, within the first-sync window, UIDs <= top_uid; resumes at initial_cursor
  incremental  UIDs above top_uid, oldest first
A UIDVALIDITY reset restarts the folder: UIDs mean nothing any more, but message keys are derived
from content, so whatever is fetched again maps to the records that already exist.
"""
import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

import aioimaplib
import structlog

from maillink_schemas.accounts import AccountConfigured

from ..adapters.folder_state import FolderState, FolderStateStore
from ..domain.folders import FolderPlan
from ..imap.connection import Selected, select, uid_search
from ..imap.fetch import fetch_messages, fetch_sizes
from . import gmail
from .delivery import Delivery

log = structlog.get_logger()


@dataclass(frozen=True)
class FolderSync:
    client: aioimaplib.IMAP4
    account: AccountConfigured
    states: FolderStateStore
    delivery: Delivery
    batch_size: int = 200
    max_batch_bytes: int = 16 * 1024 * 1024

    async def run(self, folder: FolderPlan, now: datetime | None = None) -> FolderState:
        selected = await select(self.client, folder.name)
        state = await self.states.load(self.account.account_id, folder.name)
        if state is None or state.uidvalidity != selected.uidvalidity:
            if state is not None:
                log.warning("uidvalidity_changed", folder=folder.name, old=state.uidvalidity, new=selected.uidvalidity)
            # Quirk: a server that omits UIDNEXT leaves top_uid at 0; nothing is lost, the whole folder
            # then comes in through the incremental step, without the first-sync window.
            state = FolderState(self.account.account_id, folder.name, uidvalidity=selected.uidvalidity,
                                top_uid=max(selected.uidnext - 1, 0))
            await self.states.save(state)
        if not state.initial_done:
            await self._initial(folder, state, now or datetime.now(timezone.utc))
        await self._incremental(folder, state, selected)
        return state

    async def _initial(self, folder: FolderPlan, state: FolderState, now: datetime) -> None:
        since = (now - timedelta(days=self.account.first_sync_days)).strftime("%d-%b-%Y")
        # SINCE compares INTERNALDATE (arrival at the server), which is what "recent" means here.
        uids = await uid_search(self.client, f"UID 1:{state.top_uid} SINCE {since}") if state.top_uid else []
        uids = sorted((u for u in uids if u <= state.top_uid and (not state.initial_cursor or u < state.initial_cursor)),
                      reverse=True)
        state.initial_total = state.synced + len(uids)
        log.info("initial_sync", folder=folder.name, pending=len(uids), since=since)

        def advance(group: list[int]) -> None:
            state.initial_cursor = min(group)

        await self._pipeline(folder, state, uids, advance, newest_first=True)
        state.initial_done = True
        await self.states.save(state)

    async def _incremental(self, folder: FolderPlan, state: FolderState, selected: Selected) -> None:
        if selected.uidnext and selected.uidnext - 1 <= state.top_uid:
            return
        # "n:*" always matches the highest UID even when it is below n (RFC 3501 6.4.8): filter.
        uids = sorted(u for u in await uid_search(self.client, f"UID {state.top_uid + 1}:*") if u > state.top_uid)

        def advance(group: list[int]) -> None:
            state.top_uid = max(group)

        await self._pipeline(folder, state, uids, advance, newest_first=False)

    async def _pipeline(self, folder: FolderPlan, state: FolderState, uids: list[int],
                        advance: Callable[[list[int]], None], newest_first: bool) -> None:
        """Fetches group n+1 over IMAP while group n is parsed, stored and published.

        At most two size-bounded groups are in memory. The state advances strictly in order and
        only after a group's events were acknowledged, so a crash resumes at the first group that
        was not fully delivered.
        """
        in_flight: tuple[asyncio.Task, list[int]] | None = None
        labels = gmail.strategy_for(folder)  # Gmail All Mail: sizes and X-GM-* in one FETCH, by label
        try:
            for start in range(0, len(uids), self.batch_size):
                batch = uids[start:start + self.batch_size]
                sizes = await (labels.sizes if labels else fetch_sizes)(self.client, batch)
                for group in _by_size([u for u in batch if u in sizes], sizes, self.max_batch_bytes):
                    # Servers answer in UID order whatever the request order; re-sort for newest first.
                    fetched = sorted(await fetch_messages(self.client, group), key=lambda f: f.uid, reverse=newest_first)
                    if in_flight:
                        await self._settle(state, *in_flight, advance)
                    in_flight = (asyncio.create_task(self.delivery.deliver(
                        self.account, folder.name, state.uidvalidity, folder.is_sent, fetched,
                        labels.annotate if labels else None)), group)
            if in_flight:
                await self._settle(state, *in_flight, advance)
                in_flight = None
        finally:
            if in_flight:
                in_flight[0].cancel()
                await asyncio.gather(in_flight[0], return_exceptions=True)

    async def _settle(self, state: FolderState, task: asyncio.Task, group: list[int],
                      advance: Callable[[list[int]], None]) -> None:
        state.synced += await task
        advance(group)
        await self.states.save(state)


def _by_size(uids: list[int], sizes: dict[int, int], limit: int) -> list[list[int]]:
    """Splits a batch so one FETCH never holds much more than `limit` bytes (one big message goes alone)."""
    groups, current, total = [], [], 0
    for uid in uids:
        if current and total + sizes[uid] > limit:
            groups.append(current)
            current, total = [], 0
        current.append(uid)
        total += sizes[uid]
    if current:
        groups.append(current)
    return groups
