"""Group commit: messages accepted at the same time by different SMTP sessions are stored with one
blob-store write and published with one batch of broker acknowledgements.

No message waits for a timer: the first one is flushed at once, and those that arrive meanwhile go
together in the next batch. Two batches overlap: while one batch's events await the broker, the
next batch's blobs are written, so neither the disk sync nor the broker round trip waits for the
other. Each session still answers 250 only after its own blob is durable and its own event
acknowledged (451 if its batch failed). Measured in make bench-bcc: with one sync and one publish
per message, storing + publishing was the longest step of a session.
"""
import asyncio
import time
from collections.abc import Awaitable, Callable

from prometheus_client import Histogram

from maillink_schemas.mail import MessageReceived

from .adapters.blobs import BlobStore

BATCH = Histogram("maillink_bcc_commit_batch_size", "Messages per group commit",
                  buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256))
STEP = Histogram("maillink_bcc_commit_seconds", "Time of one group commit's steps", ["step"],
                 buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5))
PublishMany = Callable[[list[MessageReceived]], Awaitable[None]]
Pending = tuple[str, bytes, MessageReceived, asyncio.Future]


class GroupCommit:
    def __init__(self, blobs: BlobStore, publish_many: PublishMany, max_batch: int = 256) -> None:
        self._blobs, self._publish_many, self._max_batch = blobs, publish_many, max_batch
        self._pending: list[Pending] = []
        self._flushing = False

    async def commit(self, blob_id: str, raw: bytes, event: MessageReceived) -> None:
        done = asyncio.get_running_loop().create_future()
        self._pending.append((blob_id, raw, event, done))
        if not self._flushing:
            self._flushing = True
            asyncio.create_task(self._flush_all())
        await done

    async def _flush_all(self) -> None:
        publishing: asyncio.Task | None = None
        try:
            while self._pending:
                batch, self._pending = self._pending[:self._max_batch], self._pending[self._max_batch:]
                BATCH.observe(len(batch))
                try:
                    started = time.perf_counter()
                    await self._blobs.put_many({blob_id: raw for blob_id, raw, _, _ in batch})
                    STEP.labels("store").observe(time.perf_counter() - started)
                except Exception as exc:  # noqa: BLE001 - every session of the batch answers 451
                    _settle(batch, exc)
                    continue
                if publishing is not None:
                    await publishing  # one batch in flight at the broker: events keep their order
                publishing = asyncio.create_task(self._publish(batch))
            if publishing is not None:
                await publishing
        finally:
            self._flushing = False
            if self._pending:  # arrived after the loop ended, before the flag was cleared
                self._flushing = True
                asyncio.create_task(self._flush_all())

    async def _publish(self, batch: list[Pending]) -> None:
        started = time.perf_counter()
        try:
            await self._publish_many([event for _, _, event, _ in batch])
        except Exception as exc:  # noqa: BLE001
            _settle(batch, exc)
            return
        STEP.labels("publish").observe(time.perf_counter() - started)
        _settle(batch, None)


def _settle(batch: list[Pending], error: Exception | None) -> None:
    for *_, done in batch:
        if not done.done():
            done.set_exception(error) if error else done.set_result(None)
