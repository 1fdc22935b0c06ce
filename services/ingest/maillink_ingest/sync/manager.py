"""Runs one sync loop per assigned account; starts, restarts and stops them as assignments change."""
import asyncio
from collections.abc import Awaitable, Callable
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
    def __init__(self, runner: Runner) -> None:
        self._runner = runner
        self._running: dict[str, _Running] = {}

    async def apply(self, account: AccountConfigured, partition: int) -> None:
        current = self._running.get(account.account_id)
        if current and current.account.version == account.version \
                and current.account.secret_ciphertext == account.secret_ciphertext and not current.task.done():
            current.partition = partition
            return
        if current and current.account.version > account.version:
            return  # a replayed, older configuration
        await self._stop(account.account_id)
        if account.enabled:
            running = _Running(account, partition)
            running.task = asyncio.create_task(self._runner(account, running.stop), name=f"sync:{account.account_id}")
            self._running[account.account_id] = running
            log.info("account_sync_started", account_id=account.account_id, partition=partition)

    async def revoke(self, partitions: set[int]) -> None:
        for account_id in [a for a, r in self._running.items() if r.partition in partitions]:
            await self._stop(account_id)

    async def stop_all(self) -> None:
        for account_id in list(self._running):
            await self._stop(account_id)

    async def _stop(self, account_id: str) -> None:
        running = self._running.pop(account_id, None)
        if running is None or running.task is None:
            return
        running.stop.set()
        try:
            await asyncio.wait_for(asyncio.shield(running.task), 10)
        except asyncio.TimeoutError:
            running.task.cancel()
        except Exception:  # noqa: BLE001 - the loop already reported its own failure
            pass
        log.info("account_sync_stopped", account_id=account_id)
