"""Delivering a list of UIDs: fetch, recover what the server left out, deliver, settle.

A UID is *settled* when it was delivered, proven gone (a UID SEARCH no longer lists it), or
recorded as poison (failed, with its reason; reconciliation retries it). The folder state only
moves over settled UIDs, so a server that omits a message from a FETCH answer can no longer make
us skip it silently.

Group n+2 is fetched over IMAP while group n+1 is parsed and its blobs stored, and group n is
published, its locations recorded and the state saved; group n+1 publishes as soon as group n's
events were acknowledged (while n records its locations and saves the state). At most three size-bounded groups are in
memory. Events are published and the state advances strictly in group order, and only after a
group's events were acknowledged, so a crash resumes at the first group that was not fully delivered.
"""
import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field

import structlog

from ..adapters.folder_state import FolderState
from ..domain import uid_ranges
from ..imap.connection import uid_search
from ..imap.fetch import Fetched, FetchRefused, fetch_messages, fetch_sizes, uid_set
from . import gmail

log = structlog.get_logger()
# Groups being delivered while the next is fetched: one parsing and storing its blobs, one publishing
# and saving the state (measured: docs/ingest-sync.md, "Initial-sync throughput").
IN_FLIGHT_GROUPS = 2
NO_CONTENT = "the server answered the FETCH without the message's content, twice"


@dataclass
class GroupFetch:
    messages: list[Fetched] = field(default_factory=list)
    poison: dict[int, str] = field(default_factory=dict)
    gone: list[int] = field(default_factory=list)

    def merge(self, other: "GroupFetch") -> "GroupFetch":
        return GroupFetch(self.messages + other.messages, {**self.poison, **other.poison}, self.gone + other.gone)


async def fetch_group(client, group: list[int], retry: bool = True) -> GroupFetch:
    try:
        answer = await fetch_messages(client, group)
    except FetchRefused as exc:
        # Quirk (Gmail): one unfetchable message makes the whole FETCH answer NO. Halve until the
        # refusing message stands alone; the others are fetched normally.
        if len(group) == 1:
            return GroupFetch(poison={group[0]: str(exc)})
        half = len(group) // 2
        return (await fetch_group(client, group[:half], retry)).merge(await fetch_group(client, group[half:], retry))
    result = GroupFetch(answer.messages)
    got = {m.uid for m in answer.messages}
    missing = [u for u in group if u not in got]
    if not missing:
        return result
    if retry:
        log.warning("fetch_items_missing", uids=uid_set(missing), bodiless=uid_set(answer.bodiless))
        return result.merge(await fetch_group(client, missing, retry=False))
    still_there = set(await uid_search(client, f"UID {uid_set(missing)}"))
    return result.merge(GroupFetch(poison={u: NO_CONTENT for u in missing if u in still_there},
                                   gone=[u for u in missing if u not in still_there]))


async def deliver_uids(p, state: FolderState, uids: list[int], newest_first: bool,
                       on_settled: Callable[[list[int]], None] = lambda group: None) -> None:
    in_flight: list[_InFlight] = []  # delivering groups, oldest first; each waits for the one before
    labels = gmail.strategy_for(p.folder)  # Gmail All Mail (ingest-providers): X-GM-* with the sizes, by label
    try:
        for start in range(0, len(uids), p.sync.batch_size):
            batch = uids[start:start + p.sync.batch_size]
            sizes = await (labels.sizes if labels else fetch_sizes)(p.client, batch)
            if labels and labels.skipped:
                # Without a selected label (or a draft): settled like delivered, so neither the cursor nor
                # reconciliation asks for them again. A label selected later applies to new mail.
                state.delivered = uid_ranges.add(state.delivered, sorted(labels.skipped & set(batch)))
                batch = [u for u in batch if u not in labels.skipped]
            # A UID without a size answer is fetched anyway: the recovery proves it gone or poison.
            groups = _by_size([u for u in batch if u in sizes], sizes, p.sync.max_batch_bytes)
            groups += [[u for u in batch if u not in sizes]] if len(sizes) < len(batch) else []
            for group in groups:
                got = await fetch_group(p.client, group)
                # Servers answer in UID order whatever the request order; re-sort for newest first.
                got.messages.sort(key=lambda f: f.uid, reverse=newest_first)
                while len(in_flight) >= IN_FLIGHT_GROUPS:
                    await in_flight.pop(0).task
                previous = in_flight[-1] if in_flight else None
                published = asyncio.get_running_loop().create_future()
                task = asyncio.create_task(_deliver_group(p, state, group, got, previous, published,
                                                          labels.annotate if labels else None, on_settled))
                in_flight.append(_InFlight(task, published))
        while in_flight:
            await in_flight.pop(0).task
    finally:
        for group in in_flight:
            group.task.cancel()
        await asyncio.gather(*(group.task for group in in_flight), return_exceptions=True)


@dataclass
class _InFlight:
    task: asyncio.Task
    published: asyncio.Future  # True once the group's events were acknowledged; False if it ended without


async def _deliver_group(p, state: FolderState, group: list[int], got: GroupFetch, previous: _InFlight | None,
                         published: asyncio.Future, annotate, on_settled: Callable[[list[int]], None]) -> None:
    async def turn() -> None:
        # Parsing and storing blobs overlap the previous group's publishing; publishing waits until the
        # previous group's events were acknowledged, so events go out in group order. A previous group
        # that failed before publishing fails this one before it publishes anything.
        if previous is not None and not await previous.published:
            await previous.task

    def mark_published() -> None:
        published.set_result(True)

    try:
        delivered = await p.delivery.deliver(p.account, p.folder.name, state.uidvalidity, p.folder.is_sent,
                                             got.messages, annotate, turn, mark_published)
        if previous is not None:
            await previous.task  # the state saves stay in group order (and a failed one stops this one)
        await _settle(p, state, delivered, group, got, on_settled)
    finally:
        if not published.done():
            published.set_result(False)


async def _settle(p, state: FolderState, delivered, group: list[int], got: GroupFetch,
                  on_settled: Callable[[list[int]], None]) -> None:
    poison = {**got.poison, **delivered.poison}
    for uid, reason in got.poison.items():
        await p.delivery.poisoned(p.account, p.folder.name, state.uidvalidity, uid, reason)
    state.delivered = uid_ranges.add(state.delivered, delivered.uids)
    state.synced += len(delivered.uids)
    for uid in delivered.uids + got.gone:
        state.failed.pop(str(uid), None)
    for uid, reason in poison.items():
        state.failed[str(uid)] = reason
    if poison:
        state.last_problem = (f"{len(poison)} message(s) could not be fetched or published "
                              f"(UID {uid_set(list(poison))}: {next(iter(poison.values()))}); "
                              "they are on the dead-letter topic and will be retried by reconciliation.")
    on_settled(group)
    await p.sync.states.save(state)


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
