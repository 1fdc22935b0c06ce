"""Runs requests: a queue fed by the command consumer (new requests go at once) and a sweep that
finds what is due (scheduled times, retries after backoff, `sending` requests whose lease ran
out after a crash). Everything it does is decided by send.advance from the stored state, so a
request handled twice is handled once."""
import asyncio

import structlog

from maillink_schemas.base import utcnow

from .deps import SendDeps
from .send import advance

log = structlog.get_logger()


class Worker:
    def __init__(self, deps: SendDeps, concurrency: int, sweep_s: float) -> None:
        self.deps, self.concurrency, self.sweep_s = deps, concurrency, sweep_s
        self._queue: asyncio.Queue[tuple[str, dict | None]] = asyncio.Queue()
        self._queued: set[str] = set()
        self._tasks: list[asyncio.Task] = []

    def submit(self, request_id: str, doc: dict | None = None) -> None:
        """`doc`: the request as this process just stored it (saves reading it back)."""
        if request_id not in self._queued:
            self._queued.add(request_id)
            self._queue.put_nowait((request_id, doc))

    async def start(self) -> None:
        self._tasks = [asyncio.create_task(self._run()) for _ in range(self.concurrency)]
        self._tasks.append(asyncio.create_task(self._sweep()))

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _run(self) -> None:
        while True:
            request_id, doc = await self._queue.get()
            try:
                await advance(request_id, self.deps, doc)
            except Exception as exc:  # noqa: BLE001 - the stored state is untouched; the sweep retries
                log.warning("advance_failed", request_id=request_id, error=repr(exc))
            finally:
                self._queued.discard(request_id)

    async def _sweep(self) -> None:
        while True:
            try:
                for doc in await self.deps.requests.due(utcnow()):
                    self.submit(doc["_id"])
            except Exception as exc:  # noqa: BLE001 - the store may be down for a while
                log.warning("sweep_failed", error=repr(exc))
            await asyncio.sleep(self.sweep_s)
