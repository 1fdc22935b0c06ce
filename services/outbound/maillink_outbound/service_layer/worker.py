"""Runs requests: a queue fed by the command consumer (new requests go at once) and a sweep that
finds what is due (scheduled times, retries after backoff, `sending` requests whose lease ran
out after a crash). Everything it does is decided from the stored state (send.advance, or
batch.send_batch for pending requests the consumer just stored), so a request handled twice is
handled once.

Group commit: each of `batches` runners takes what is queued, up to `batch_size`, and sends the
pending requests it was handed together; while one batch waits on SMTP the next is being claimed,
so the store and the SMTP connections stay busy at once.

Settling: a batch records its `sent` as outcome inserts; the documents take them over (one update
each, the store's dear operation) when no batch is running, or while more than `settle_backlog` wait,
so a burst of sends does not pay for them (adapters/requests.py)."""
import asyncio
import time

import structlog

from maillink_schemas.base import utcnow
from maillink_schemas.outbound import SendState as S

from .batch import send_batch
from .deps import SendDeps
from .send import advance

log = structlog.get_logger()


class Worker:
    def __init__(self, deps: SendDeps, batches: int, sweep_s: float, batch_size: int = 100,
                 settle_backlog: int = 20000) -> None:
        self.deps, self.batches, self.sweep_s, self.batch_size = deps, batches, sweep_s, batch_size
        self.settle_backlog = settle_backlog
        self._running = 0
        self._queue: asyncio.Queue[tuple[str, dict | None]] = asyncio.Queue()
        self._queued: set[str] = set()
        self._tasks: list[asyncio.Task] = []

    def submit(self, request_id: str, doc: dict | None = None) -> None:
        """`doc`: the request as this process just stored it (saves reading it back)."""
        if request_id not in self._queued:
            self._queued.add(request_id)
            self._queue.put_nowait((request_id, doc))

    async def start(self) -> None:
        self._tasks = [asyncio.create_task(self._run()) for _ in range(self.batches)]
        self._tasks.append(asyncio.create_task(self._sweep()))

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _run(self) -> None:
        while True:
            taken = [await self._queue.get()]
            while len(taken) < self.batch_size and not self._queue.empty():
                taken.append(self._queue.get_nowait())
            self._running += 1
            fresh = [doc for _, doc in taken if doc is not None and doc["state"] == S.PENDING]
            alone = [(rid, doc) for rid, doc in taken if doc is None or doc["state"] != S.PENDING]
            try:
                if fresh:
                    alone += [(doc["_id"], None) for doc in await send_batch(fresh, self.deps)]
                await asyncio.gather(*(self._advance(rid, doc) for rid, doc in alone))
            except Exception as exc:  # noqa: BLE001 - the stored states are untouched or recoverable; the sweep retries
                log.warning("batch_failed", requests=len(taken), error=repr(exc))
            finally:
                self._running -= 1
                for rid, _ in taken:
                    self._queued.discard(rid)

    async def _advance(self, request_id: str, doc: dict | None) -> None:
        try:
            await advance(request_id, self.deps, doc)
        except Exception as exc:  # noqa: BLE001 - the stored state is untouched; the sweep retries
            log.warning("advance_failed", request_id=request_id, error=repr(exc))

    async def settle(self) -> None:
        """One chunk of updates at a time, then as long a pause: the store serves everyone else in
        between (a run of bulk updates held back its other readers for seconds)."""
        requests = self.deps.requests
        while requests.unsettled() and (self._idle() or requests.unsettled() > self.settle_backlog):
            started = time.monotonic()
            await requests.settle()
            await asyncio.sleep(time.monotonic() - started)

    def _idle(self) -> bool:
        return self._running == 0 and self._queue.empty()

    async def _sweep(self) -> None:
        while True:
            try:
                await self.settle()
                for doc in await self.deps.requests.due(utcnow(), skip=self._queued):
                    self.submit(doc["_id"])
            except Exception as exc:  # noqa: BLE001 - the store may be down for a while
                log.warning("sweep_failed", error=repr(exc))
            await asyncio.sleep(self.sweep_s)
