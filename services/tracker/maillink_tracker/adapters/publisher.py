"""Publishing the tracker's events: batched, and every request waits for its own event's ack.

Why this shape (measured in docs/tracker.md): a request is counted only once Kafka holds its event
(acks=all, idempotent producer), so a crash or restart can lose no counted request, and no local
journal is needed.

Batching is ours, not the producer's per-record path: aiokafka's `send()` costs tens of
microseconds per record in Python (a future, the partitioner in pure Python, the accumulator),
which was more than the rest of a pixel request. Here a request appends its record to the open
batch of its partition and waits on that batch's one future; the batch leaves after `linger_ms`
(or when full) as one `send_batch()`. The producer, the key's partition (aiokafka's default,
murmur2, so a message's events stay on one partition in order) and the sending are
`maillink_runtime.kafka_batches.BatchProducer`, shared with the Smart Bcc gateway.

If the broker does not answer within `wait_s` of a batch leaving, its requests are answered anyway
(a mail client must not hang on a pixel, nor a reader on a link); the batch stays in the producer
and is counted when Kafka acknowledges it. `stop()` flushes the open batches and waits for them.
"""
import asyncio
from dataclasses import dataclass, field

import structlog
from prometheus_client import Counter

from maillink_runtime.kafka_batches import BatchProducer, append
from maillink_runtime.settings import KafkaSettings

log = structlog.get_logger()

PUBLISHED = Counter("tracker_events_published_total", "Tracker events Kafka acknowledged", ["topic"])
LATE = Counter("tracker_events_acked_late_total", "Events whose request was answered before Kafka's ack", ["topic"])
FAILED = Counter("tracker_events_failed_total", "Events the producer gave up on", ["topic"])
BATCHES = Counter("tracker_event_batches_total", "Batches of tracker events sent", ["topic"])


@dataclass
class _Batch:
    builder: object
    answered: asyncio.Future  # True: acked; False: answered on time-out; exception: failed
    count: int = 0
    timer: asyncio.TimerHandle | None = field(default=None, repr=False)


class EventPublisher:
    def __init__(self, settings: KafkaSettings, client_id: str, linger_ms: int, wait_s: float) -> None:
        self._producer = BatchProducer(settings, client_id)
        self._started = False
        self._linger_s, self._wait_s = linger_ms / 1000, wait_s
        self._open: dict[tuple[str, int], _Batch] = {}
        self._sending: set[asyncio.Task] = set()
        self.acked = 0

    async def start(self) -> None:
        await self._producer.start()
        self._started = True

    async def stop(self) -> None:
        if not self._started:
            return
        for tp in list(self._open):
            self._flush(tp)
        if self._sending:
            await asyncio.gather(*self._sending, return_exceptions=True)
        await self._producer.stop()

    async def publish(self, topic: str, key: bytes, value: bytes) -> bool:
        """True once Kafka holds the event; False if its batch is still unacknowledged after `wait_s`
        (it stays queued and is counted when acknowledged). Raises if the producer gave up."""
        answered = self.enqueue(topic, key, value)
        if answered is None:
            await self._producer.partition(topic, key)  # learns the topic's partitions
            answered = self.enqueue(topic, key, value)
        # shield: a request that is cancelled (its client went away at shutdown) must not cancel
        # the future the rest of its batch is waiting on.
        return await asyncio.shield(answered)

    def enqueue(self, topic: str, key: bytes, value: bytes) -> asyncio.Future | None:
        """Appends the event to its partition's open batch, without awaiting: the batch's future
        (True: acknowledged; False: unacknowledged after `wait_s`, still queued; an exception: the
        producer gave up). None when the topic's partitions are not known yet (`publish` learns them).
        Callers never cancel the future: the rest of its batch waits on it too."""
        partition = self._producer.partition_now(topic, key)
        if partition is None:
            return None
        tp = (topic, partition)
        batch = self._open.get(tp)
        if batch is None or not append(batch.builder, key, value):
            if batch is not None:  # full: send it, start the next one
                self._flush(tp)
            batch = self._new_batch(tp, key, value)
        batch.count += 1
        return batch.answered

    def _new_batch(self, tp: tuple[str, int], key: bytes, value: bytes) -> _Batch:
        """Opened with its first record in it (which raises if the record is larger than a batch)."""
        loop = asyncio.get_running_loop()
        batch = _Batch(self._producer.batch_with(key, value), loop.create_future())
        self._open[tp] = batch
        batch.timer = loop.call_later(self._linger_s, self._flush, tp)
        return batch

    def _flush(self, tp: tuple[str, int]) -> None:
        batch = self._open.pop(tp, None)
        if batch is None:
            return
        if batch.timer is not None:
            batch.timer.cancel()
        task = asyncio.create_task(self._send(tp, batch))
        self._sending.add(task)
        task.add_done_callback(self._sending.discard)

    async def _send(self, tp: tuple[str, int], batch: _Batch) -> None:
        topic, partition = tp
        # The clock starts when the batch leaves, before send_batch(): with the broker down, even
        # handing the batch over can wait (metadata, a full accumulator).
        late = asyncio.get_running_loop().call_later(self._wait_s, self._answer_late, topic, batch)
        try:
            await self._producer.send(batch.builder, topic, partition)
            BATCHES.labels(topic).inc()
        except Exception as exc:  # noqa: BLE001 - the requests learn it; nothing was counted
            FAILED.labels(topic).inc(batch.count)
            log.error("tracking_events_failed", topic=topic, events=batch.count, error=repr(exc))
            if not batch.answered.done():
                batch.answered.set_exception(exc)
            return
        finally:
            late.cancel()
        self.acked += batch.count
        PUBLISHED.labels(topic).inc(batch.count)
        if not batch.answered.done():
            batch.answered.set_result(True)

    @staticmethod
    def _answer_late(topic: str, batch: _Batch) -> None:
        if not batch.answered.done():
            LATE.labels(topic).inc(batch.count)
            batch.answered.set_result(False)
