"""Runs one sync loop per assigned account; starts, restarts and stops them as assignments change.

Stopping is cancellation, and it is concurrent: a loop may be in the middle of an IMAP FETCH or an
IDLE, and a revocation must not wait for that to end. Waiting (the old way: 10 s per account, one
after another) blocked the rebalance callback far past max.poll.interval.ms with 100 accounts and
set off another rebalance, while the new owner already ran its own session of the same mailbox.

Rebalances (aiokafka 0.14 has only the eager protocol, see entrypoints/assignments.py): every
member gives up all its partitions before each rebalance and, with the sticky assignor, mostly gets
the same ones back. So a revocation only *suspends* its accounts; the next assignment stops those
whose partition went elsewhere, and the rest go on without losing their IMAP session. A suspension
that no assignment resolves within `suspend_grace_s` (this member fell out of the group) stops its
loops anyway, so another owner never shares the mailbox for longer than that.
"""
import asyncio
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field

import structlog

from maillink_schemas.accounts import AccountConfigured

Runner = Callable[[AccountConfigured, asyncio.Event], Awaitable[None]]
log = structlog.get_logger()


@dataclass
class _Running:
    account: AccountConfigured
    partition: int
    stop: asyncio.Event = field(default_factory=asyncio.Event)
    task: asyncio.Task | None = None


class SyncManager:
    def __init__(self, runner: Runner, *, stop_grace_s: float = 5.0, suspend_grace_s: float = 10.0,
                 on_stopped: Callable[[str], None] | None = None) -> None:
        self._runner = runner
        self._on_stopped = on_stopped  # e.g. the status gauges drop an account no longer synced here
        self._running: dict[str, _Running] = {}
        self._stop_grace_s = stop_grace_s
        self._suspend_grace_s = suspend_grace_s
        self._suspended: set[int] = set()
        self._expiry: asyncio.Task | None = None

    def running(self) -> list[str]:
        return sorted(a for a, r in self._running.items() if r.task and not r.task.done())

    async def apply(self, account: AccountConfigured, partition: int) -> None:
        current = self._running.get(account.account_id)
        if current and current.account.version == account.version \
                and current.account.secret_ciphertext == account.secret_ciphertext:
            # Same configuration (a replay after a rebalance): keep the loop, even a finished one.
            # A loop ends by itself only for needs_reauth, and only new credentials may retry that.
            current.partition = partition
            return
        if current and current.account.version > account.version:
            return  # a replayed, older configuration
        await self._stop([account.account_id])
        if account.enabled:
            running = _Running(account, partition)
            running.task = asyncio.create_task(self._runner(account, running.stop), name=f"sync:{account.account_id}")
            self._running[account.account_id] = running
            log.info("account_sync_started", account_id=account.account_id, partition=partition)

    async def remove(self, account_id: str) -> None:
        await self._stop([account_id])

    async def revoke(self, partitions: Iterable[int]) -> None:
        """Stops the accounts of `partitions` now (the partitions are gone for good)."""
        partitions = set(partitions)
        await self._stop([a for a, r in self._running.items() if r.partition in partitions])

    def suspend(self, partitions: Iterable[int]) -> None:
        """Eager rebalance begins: the loops keep running until `assigned` says whether they stay."""
        self._suspended |= set(partitions)
        if self._expiry is None or self._expiry.done():
            self._expiry = asyncio.create_task(self._expire_suspension(), name="sync-suspension-expiry")

    async def assigned(self, partitions: Iterable[int]) -> None:
        kept = set(partitions)
        gone, self._suspended = self._suspended - kept, set()
        if self._expiry is not None:
            self._expiry.cancel()
            self._expiry = None
        await self.revoke(gone)

    async def _expire_suspension(self) -> None:
        await asyncio.sleep(self._suspend_grace_s)
        gone, self._suspended = self._suspended, set()
        log.warning("rebalance_unresolved_stopping", partitions=sorted(gone))
        await self.revoke(gone)

    async def stop_all(self) -> None:
        if self._expiry is not None:
            self._expiry.cancel()
        await self._stop(list(self._running))

    async def _stop(self, account_ids: list[str]) -> None:
        stopping = [r for r in (self._running.pop(a, None) for a in account_ids) if r is not None and r.task]
        for running in stopping:
            running.stop.set()
            running.task.cancel()  # interrupts whatever IMAP command is in flight
        if not stopping:
            return
        tasks = [r.task for r in stopping]
        # Loops close their socket on cancellation (no polite LOGOUT), so this is short; a loop
        # stuck anyway is left to finish on its own rather than hold up the rebalance.
        _, pending = await asyncio.wait(tasks, timeout=self._stop_grace_s)
        for running in stopping:
            log.info("account_sync_stopped", account_id=running.account.account_id)
            if self._on_stopped is not None:
                self._on_stopped(running.account.account_id)
        if pending:
            log.warning("account_sync_stop_slow", accounts=len(pending))
