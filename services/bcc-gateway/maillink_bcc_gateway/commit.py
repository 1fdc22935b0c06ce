"""Storing and publishing an accepted message: the blob written, then its flush and the event's
publish side by side, then the 250.

The flush and the publish are group commits across SMTP sessions, with no timer: the blobs of every
session that finished DATA while the previous flush was running are made durable together, and
the events are published together, one batch at the broker at a time (events keep their order).
Each session answers 250 only after its own blob is durable AND its own event is acknowledged
(451 if either failed; a failed group fails each of its sessions, and each sender retries).

Why the publish does not wait for the flush (the lead's decision, issue #11; measured in make
bench-bcc, docs/bcc-gateway.md): a flush of the shared disk took ~23 ms and the broker's
acknowledgement ~8 ms, one after the other on every session's path. The blob is *written* before
the event is published, so a process crash at any moment loses nothing (the bytes are in the page
cache and readable). Only a power cut between the publish and the end of the flush can leave an
event whose blob is gone; that sender got no 250 and retries, storing the same blob again (same
content, same id) and republishing the same event id and message key, which downstream deduplicates.

With a store per session, 16 sessions ran 16 concurrent flushes of the same filesystem, each slowed
by the others (15 ms mean per store with 16 connections, 62 ms with 64); one flush per group costs
one flush for all of them.
"""
import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

from prometheus_client import Histogram

from maillink_runtime.blobs import BlobStore

from .domain.received import Received

BATCH = Histogram("maillink_bcc_commit_batch_size", "Events per broker publish batch",
                  buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256))
STORE_BATCH = Histogram("maillink_bcc_store_batch_size", "Blobs per store (and flush) batch",
                        buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256))
STEP = Histogram("maillink_bcc_commit_seconds", "Time of the steps of storing and publishing", ["step"],
                 buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5))
PublishMany = Callable[[list[Received]], Awaitable[None]]
T = TypeVar("T")


class GroupRunner(Generic[T]):
    """Runs `flush` on everything submitted while the previous flush ran; one flush at a time."""

    def __init__(self, flush: Callable[[list[T]], Awaitable[None]], max_batch: int, step: str,
                 sizes: Histogram) -> None:
        self._flush, self._max_batch, self._sizes = flush, max_batch, sizes
        self._seconds = STEP.labels(step)
        self._queue: list[tuple[T, asyncio.Future]] = []
        self._running = False

    def enqueue(self, item: T) -> asyncio.Future:
        """The future is settled once the group holding `item` was flushed (or failed)."""
        done = asyncio.get_running_loop().create_future()
        self._queue.append((item, done))
        if not self._running:
            self._running = True
            asyncio.create_task(self._run())
        return done

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
                self._seconds.observe(time.perf_counter() - started)
                _settle(batch, None)
        finally:
            self._running = False


class GroupCommit:
    def __init__(self, blobs: BlobStore, publish_many: PublishMany, max_batch: int = 256) -> None:
        self._blobs = blobs
        self._flushes = GroupRunner(blobs.flush_many, max_batch, "flush", STORE_BATCH)
        self._publishes = GroupRunner(publish_many, max_batch, "publish", BATCH)

    async def commit(self, blob_id: str, raw: bytes, event: Received) -> None:
        # Written first: an event is never published for bytes that could not even be written
        # (a full disk refuses here, before anything reaches Kafka).
        await self._blobs.write_many({blob_id: raw})
        # Both are queued before either is awaited, so they run side by side; awaiting the two
        # futures in turn instead of gather() spares a task per future per message.
        flushed, published = self._flushes.enqueue(blob_id), self._publishes.enqueue(event)
        error: BaseException | None = None
        for done in (flushed, published):
            try:
                await done
            except asyncio.CancelledError:  # the session went away: nobody will read the other one
                flushed.cancel(), published.cancel()
                raise
            except Exception as exc:  # noqa: BLE001 - both are waited for, the first failure is raised
                error = error or exc
        if error is not None:
            raise error


def _settle(batch: list[tuple[object, asyncio.Future]], error: Exception | None) -> None:
    for _, done in batch:
        if not done.done():
            done.set_exception(error) if error else done.set_result(None)
