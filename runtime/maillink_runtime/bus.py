"""Kafka broker factory and the consume-then-dead-letter pattern every consumer uses.

At-least-once without loss or blocking (see ARCHITECTURE.md, "Rules of the bus"): when the store
or the broker is unavailable (failures.is_outage) the handler waits for it and retries, however
long, with the offset kept; any other failure is retried a bounded number of times, and if it
still fails, or the message cannot even be decoded, the message goes to `<topic>.dlq` with the
reason, and only then is the offset committed. The subscriber runs with NACK_ON_ERROR, so the
offset stays put (and the message is re-read) if the dead-letter publish itself fails.
"""
import asyncio
import base64
from collections.abc import Awaitable, Callable
from typing import TypeVar

import structlog
from faststream import AckPolicy
from faststream.kafka import KafkaBroker
from faststream.kafka.annotations import KafkaMessage
from faststream.kafka.message import KafkaMessage as RawKafkaMessage
from faststream.security import BaseSecurity
from prometheus_client import Counter, Gauge
from pydantic import BaseModel, ValidationError

from maillink_schemas.base import deterministic_id, utcnow
from maillink_schemas.dead_letter import DeadLettered
from maillink_schemas.topics import dead_letter_topic

from .failures import is_outage

M = TypeVar("M", bound=BaseModel)
log = structlog.get_logger()

CONSUMED = Counter("maillink_messages_consumed_total", "Messages handled successfully", ["topic"])
DEAD_LETTERED = Counter("maillink_messages_dead_lettered_total", "Messages sent to a dead-letter topic", ["topic", "reason"])
RETRIED = Counter("maillink_handler_retries_total", "Handler attempts that failed and were retried", ["topic"])
OUTAGE_RETRIES = Counter("maillink_consumer_outage_retries_total",
                         "Handler attempts that found the store or broker unavailable (the message is kept)", ["topic"])
PAUSED = Gauge("maillink_consumer_paused", "1 while a consumer waits for its store or broker to come back", ["topic"])


class PermanentError(Exception):
    """Raised by a handler when retrying cannot help (the message itself is wrong)."""


def make_broker(bootstrap_servers: str, client_id: str, security: BaseSecurity | None = None) -> KafkaBroker:
    """`security` comes from `kafka_conn.kafka_security(settings)`; None is PLAINTEXT."""
    # acks=all + idempotence: a publish counts only once the broker has it, and producer
    # retries never duplicate it.
    return KafkaBroker(bootstrap_servers, client_id=client_id, acks="all", enable_idempotence=True,
                       security=security, logger=None)


def subscribe(broker: KafkaBroker, topic: str, group_id: str, model: type[M],
              handler: Callable[[M, RawKafkaMessage], Awaitable[None]], retries: int = 3,
              backoff_s: float = 0.2, max_outage_backoff_s: float = 15.0) -> None:
    """Register `handler` for `topic`: an outage (failures.is_outage) is waited out with the offset
    kept; any other failure is retried `retries` times, then dead-lettered, then committed."""

    # No functools.wraps: FastStream reads the signature, and it must see only the message.
    async def on_message(message: KafkaMessage) -> None:
        raw = message.raw_message
        bound = log.bind(topic=topic, partition=raw.partition, offset=raw.offset)
        try:
            event = model.model_validate_json(message.body)
        except ValidationError as exc:
            await _dead_letter(broker, topic, group_id, message, "undecodable", _summary(exc), 0)
            return
        attempt, outage_wait = 0, backoff_s
        while True:
            try:
                await handler(event, message)
                CONSUMED.labels(topic).inc()
                PAUSED.labels(topic).set(0)
                return
            except PermanentError as exc:
                await _dead_letter(broker, topic, group_id, message, "rejected", str(exc), attempt + 1)
                return
            except Exception as exc:  # noqa: BLE001 - every failure is retried; only the message's own are parked
                if is_outage(exc):
                    # The store or broker is away: wait for it with the offset kept (this handler not
                    # returning is what holds the partition), however long it takes; no attempt is used up.
                    PAUSED.labels(topic).set(1)
                    OUTAGE_RETRIES.labels(topic).inc()
                    bound.warning("dependency_unavailable", error=repr(exc), retry_in_s=round(outage_wait, 2))
                    await asyncio.sleep(outage_wait)
                    outage_wait = min(outage_wait * 2, max_outage_backoff_s)
                    continue
                attempt += 1
                bound.warning("handler_failed", attempt=attempt, error=repr(exc))
                if attempt >= retries:
                    await _dead_letter(broker, topic, group_id, message, "failed", repr(exc), attempt)
                    return
                RETRIED.labels(topic).inc()
                await asyncio.sleep(backoff_s * 2 ** (attempt - 1))

    on_message.__name__ = f"on_{handler.__name__}"
    broker.subscriber(topic, group_id=group_id, auto_offset_reset="earliest",
                      ack_policy=AckPolicy.NACK_ON_ERROR)(on_message)


def subscribe_batch(broker: KafkaBroker, topic: str, group_id: str, model: type[M],
                    handler: Callable[[list[M]], Awaitable[None]], retries: int = 3, backoff_s: float = 0.2,
                    max_outage_backoff_s: float = 15.0, max_records: int = 100, batch_timeout_ms: int = 20) -> None:
    """`subscribe` for a handler that takes the records of one poll together (up to `max_records`),
    so it can write them in one store command. The rule per record is `subscribe`'s: one that cannot
    be decoded is dead-lettered at once; an outage is waited out with the offsets kept; any other
    failure retries the batch `retries` times, then the records are handled one at a time with the
    same retries, so only a record that still fails is dead-lettered. Then the batch is committed.
    (The matcher has its own multi-topic form in its entrypoints.)"""

    async def until_done(call: Callable[[], Awaitable[None]]) -> None:
        attempt, outage_wait = 0, backoff_s
        while True:
            try:
                await call()
                PAUSED.labels(topic).set(0)
                return
            except PermanentError:
                raise
            except Exception as exc:  # noqa: BLE001 - outages are waited out, the rest retried a bounded number of times
                if is_outage(exc):
                    PAUSED.labels(topic).set(1)
                    OUTAGE_RETRIES.labels(topic).inc()
                    log.warning("dependency_unavailable", topic=topic, error=repr(exc), retry_in_s=round(outage_wait, 2))
                    await asyncio.sleep(outage_wait)
                    outage_wait = min(outage_wait * 2, max_outage_backoff_s)
                    continue
                attempt += 1
                if attempt >= retries:
                    raise
                RETRIED.labels(topic).inc()
                await asyncio.sleep(backoff_s * 2 ** (attempt - 1))

    async def on_batch(message: KafkaMessage) -> None:
        records = message.raw_message if isinstance(message.raw_message, tuple) else (message.raw_message,)
        decoded = []
        for r in records:
            try:
                decoded.append((r, model.model_validate_json(r.value or b"")))
            except ValidationError as exc:
                await dead_letter(broker, topic, group_id, r.partition, r.offset, r.key, r.value, "undecodable",
                                  _summary(exc), 0)
        if not decoded:
            return
        try:
            await until_done(lambda: handler([e for _, e in decoded]))
            CONSUMED.labels(topic).inc(len(decoded))
            return
        except Exception as exc:  # noqa: BLE001 - find the record(s) that fail
            log.warning("batch_failed_one_by_one", topic=topic, size=len(decoded), error=repr(exc))
        for r, event in decoded:
            try:
                await until_done(lambda event=event: handler([event]))
                CONSUMED.labels(topic).inc()
            except PermanentError as exc:
                await dead_letter(broker, topic, group_id, r.partition, r.offset, r.key, r.value, "rejected", str(exc), 1)
            except Exception as exc:  # noqa: BLE001 - parked with its reason, never dropped
                await dead_letter(broker, topic, group_id, r.partition, r.offset, r.key, r.value, "failed", repr(exc),
                                  retries)

    on_batch.__name__ = f"on_{handler.__name__}"
    broker.subscriber(topic, group_id=group_id, batch=True, max_records=max_records, batch_timeout_ms=batch_timeout_ms,
                      auto_offset_reset="earliest", ack_policy=AckPolicy.NACK_ON_ERROR)(on_batch)


def _summary(exc: ValidationError) -> str:
    return "; ".join(f"{'.'.join(map(str, e['loc'])) or 'message'}: {e['msg']}" for e in exc.errors()[:5])


async def _dead_letter(broker: KafkaBroker, topic: str, consumer: str, message: RawKafkaMessage,
                       reason: str, error: str, attempts: int) -> None:
    raw = message.raw_message
    await dead_letter(broker, topic, consumer, raw.partition, raw.offset, raw.key, raw.value, reason, error, attempts)


async def dead_letter(broker: KafkaBroker, topic: str, consumer: str, partition: int, offset: int,
                      key: bytes | None, value: bytes | None, reason: str, error: str, attempts: int) -> None:
    """Park one record on `<topic>.dlq` with the reason; waits for the broker's ack."""
    record = DeadLettered(
        event_id=deterministic_id("dlq", consumer, topic, str(partition), str(offset)),
        occurred_at=utcnow(), source_topic=topic, partition=partition, offset=offset, consumer=consumer,
        key=base64.b64encode(key).decode() if key else None, payload=base64.b64encode(value or b"").decode(),
        error_type=reason, error=error, attempts=attempts,
    )
    await broker.publish(record.model_dump_json().encode(), dead_letter_topic(topic), key=key,
                         headers={"content-type": "application/json"})
    DEAD_LETTERED.labels(topic, reason).inc()
    log.error("dead_lettered", topic=topic, partition=partition, offset=offset, reason=reason, error=error)


async def publish(broker: KafkaBroker, topic: str, event: BaseModel, key: str) -> None:
    """Publish one event and wait until the broker has it."""
    await broker.publish(event.model_dump_json().encode(), topic, key=key.encode(),
                         headers={"content-type": "application/json"})


async def publish_many(broker: KafkaBroker, topic: str, events: list[tuple[str, BaseModel]]) -> None:
    """Publish several events concurrently (they still keep per-key order) and wait for all acks."""
    futures = [await broker.publish(e.model_dump_json().encode(), topic, key=k.encode(), no_confirm=True,
                                    headers={"content-type": "application/json"}) for k, e in events]
    await asyncio.gather(*futures)
