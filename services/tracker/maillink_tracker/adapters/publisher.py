"""Publishing the tracker's events: batched, and every request waits for its own event's ack.

Why this shape (measured in docs/tracker.md): a request is counted only once Kafka holds its event
(acks=all, idempotent producer), so a crash or restart can lose no counted request, and no local
journal is needed. Batching comes from the producer's accumulator: every request in flight adds its
record to the partition's open batch, which leaves after `linger_ms` or when full, so at load one
produce request carries hundreds of events and the cost per request is a few microseconds.

If the broker does not answer within `wait_s`, the request is answered anyway (a mail client
must not hang on a pixel, nor a reader on a link); its event stays queued in the producer and is
sent when the broker is back, and counted then. On shutdown, `stop()` flushes what is queued.
"""
import asyncio

import structlog
from aiokafka import AIOKafkaProducer
from prometheus_client import Counter

from maillink_runtime.kafka_conn import client_options
from maillink_runtime.settings import KafkaSettings

log = structlog.get_logger()

PUBLISHED = Counter("tracker_events_published_total", "Tracker events Kafka acknowledged", ["topic"])
LATE = Counter("tracker_events_acked_late_total", "Events answered before Kafka's ack (still delivered)", ["topic"])
FAILED = Counter("tracker_events_failed_total", "Events the producer gave up on", ["topic"])
_HEADERS = [("content-type", b"application/json")]


class EventPublisher:
    def __init__(self, settings: KafkaSettings, client_id: str, linger_ms: int, wait_s: float) -> None:
        self._options = dict(**client_options(settings), client_id=client_id, acks="all", enable_idempotence=True,
                             linger_ms=linger_ms, max_batch_size=256 * 1024)
        self._producer: AIOKafkaProducer | None = None  # made in start(): aiokafka needs the running loop
        self._wait_s = wait_s
        self.acked = 0  # also exported as a metric; the benchmark compares it with the topic

    async def start(self) -> None:
        self._producer = AIOKafkaProducer(**self._options)
        await self._producer.start()

    async def stop(self) -> None:
        if self._producer is not None:
            await self._producer.stop()  # flushes every queued event first

    async def publish(self, topic: str, key: bytes, value: bytes) -> bool:
        """True once Kafka holds the event; False if it is still queued after `wait_s`."""
        future = await self._producer.send(topic, value, key=key, headers=_HEADERS)
        try:
            await asyncio.wait_for(asyncio.shield(future), self._wait_s)
        except TimeoutError:
            LATE.labels(topic).inc()
            future.add_done_callback(lambda f: self._settled(topic, f))
            return False
        self._count(topic)
        return True

    def _count(self, topic: str) -> None:
        self.acked += 1
        PUBLISHED.labels(topic).inc()

    def _settled(self, topic: str, future: asyncio.Future) -> None:
        if future.cancelled() or future.exception() is not None:
            FAILED.labels(topic).inc()
            log.error("tracking_event_failed", topic=topic,
                      error=repr(future.exception()) if not future.cancelled() else "cancelled")
        else:
            self._count(topic)
