"""Storing and publishing an accepted message: the blob first, then the event, then the 250.

Both steps are group commits across SMTP sessions, with no timer: the blobs of every session that
finished DATA while the previous store was running are stored (and made durable) together, and the
events whose blobs are durable are published together, one batch at the broker at a time (events
keep their order). The store of one group overlaps the publish of the previous one. Each session
answers 250 only after its own blob is durable and its own event acknowledged (451 if either
failed; a failed group fails each of its sessions, and each sender retries).

Measured in make bench-bcc (docs/bcc-gateway.md): with a store per session, 16 sessions ran 16
concurrent flushes of the same filesystem, each slowed by the others (15 ms mean per store with 16
connections, 62 ms with 64); one flush per group costs one flush for all of them.
"""
import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

from prometheus_client import Histogram

from maillink_runtime.blobs import BlobStore
from maillink_schemas.mail import MessageReceived

BATCH = Histogram("maillink_bcc_commit_batch_size", "Events per broker publish batch",
                  buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256))
STORE_BATCH = Histogram("maillink_bcc_store_batch_size", "Blobs per store (and flush) batch",
                        buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256))
STEP = Histogram("maillink_bcc_commit_seconds", "Time of the steps of storing and publishing", ["step"],
                 buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5))
PublishMany = Callable[[list[MessageReceived]], Awaitable[None]]
T = TypeVar("T")


class GroupRunner(Generic[T]):
    """Runs `flush` on everything submitted while the previous flush ran; one flush at a time."""

    def __init__(self, flush: Callable[[list[T]], Awaitable[None]], max_batch: int, step: str,
                 sizes: Histogram) -> None:
        self._flush, self._max_batch, self._step, self._sizes = flush, max_batch, step, sizes
        self._queue: list[tuple[T, asyncio.Future]] = []
        self._running = False

    async def submit(self, item: T) -> None:
        done = asyncio.get_running_loop().create_future()
        self._queue.append((item, done))
        if not self._running:
            self._running = True
            asyncio.create_task(self._run())
        await done

    async def _run(self) -> None:
        try:
            while self._queue:
                batch, self._queue = self._queue[:self._max_batch], self._queue[self._max_batch:]
                self._sizes.observe(len(batch))
                started = time.perf_counter()
                try:
                    await self._flush([item for item, _ in batch])
                except Exception as exc:  # noqa: BLE001 - every session of the batch answers 451
                    _settle(batch, exc)
                    continue
                STEP.labels(self._step).observe(time.perf_counter() - started)
                _settle(batch, None)
        finally:
            self._running = False


class GroupCommit:
    def __init__(self, blobs: BlobStore, publish_many: PublishMany, max_batch: int = 256) -> None:
        async def store(items: list[tuple[str, bytes]]) -> None:
            await blobs.put_many(dict(items))

        self._stores = GroupRunner(store, max_batch, "store", STORE_BATCH)
        self._publishes = GroupRunner(publish_many, max_batch, "publish", BATCH)

    async def commit(self, blob_id: str, raw: bytes, event: MessageReceived) -> None:
        await self._stores.submit((blob_id, raw))
        await self._publishes.submit(event)


def _settle(batch: list[tuple[object, asyncio.Future]], error: Exception | None) -> None:
    for _, done in batch:
        if not done.done():
            done.set_exception(error) if error else done.set_result(None)
