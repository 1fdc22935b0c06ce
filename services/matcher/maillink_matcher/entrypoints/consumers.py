"""Batch consumption with the project's at-least-once rule, per record (runtime/bus.py explains the
rule; this is its batch form, built on FastStream 0.7's batch subscriber).

One subscriber reads several topics in batches (`max_records`). Each record is decoded with its
topic's contract; one that cannot be decoded goes to `<topic>.dlq` at once. The decoded records
are handled together (a few queries for the whole batch). If that fails, the whole batch is
retried a bounded number of times; if it still fails, the records are handled one at a time with
the same bounded retries, so only the record that fails goes to its dead-letter topic and the
others are applied. Only then does the subscriber return and FastStream commit the batch.

An outage is not a poison message: when the store or the broker is unreachable, every record
would fail alike, so instead of parking them all the handler raises; NACK_ON_ERROR then seeks
back to the batch's first offsets (per partition) and the batch is read again later.

The subscriber uses the range assignor: the account-keyed topics have the same partition count
(runtime/topics_admin.py), so partition N of each lands on the same consumer, which makes that
consumer the single writer of those mailboxes.
"""
import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import structlog
from aiokafka.coordinator.assignors.range import RangePartitionAssignor
from aiokafka.errors import KafkaConnectionError, KafkaTimeoutError
from faststream import AckPolicy
from faststream.kafka import KafkaBroker
from faststream.kafka.annotations import KafkaMessage
from prometheus_client import Counter
from pydantic import BaseModel, ValidationError
from pymongo.errors import AutoReconnect, ConnectionFailure, ServerSelectionTimeoutError

from maillink_runtime import bus
from maillink_runtime.bus import PermanentError

log = structlog.get_logger()
OUTAGE = (ConnectionFailure, AutoReconnect, ServerSelectionTimeoutError, KafkaConnectionError, KafkaTimeoutError)
BATCHES = Counter("maillink_matcher_batches_total", "Batches handled", ["consumer", "mode"])


class Outage(Exception):
    """The store or the broker is unreachable: keep the offsets, read the batch again."""


@dataclass(frozen=True)
class Decoded:
    record: object          # aiokafka ConsumerRecord
    event: BaseModel


BatchHandler = Callable[[list[BaseModel]], Awaitable[None]]


def _assignment(message: KafkaMessage) -> tuple:
    """What identifies this consumer's current assignment: aiokafka makes a new Assignment object
    at every rebalance (the same partitions handed back after another consumer held them included);
    the partition set is the public fallback."""
    consumer = getattr(message, "consumer", None)
    if consumer is None:
        return ()
    current = getattr(getattr(getattr(consumer, "_subscription", None), "subscription", None), "assignment", None)
    return id(current), frozenset(consumer.assignment())


def subscribe_batch(broker: KafkaBroker, topics: dict[str, type[BaseModel]], group_id: str, name: str,
                    handler: BatchHandler, retries: int = 3, max_records: int = 500, backoff_s: float = 0.2,
                    on_rebalance: Callable[[], None] | None = None) -> None:
    # Rebalances are noticed at the next batch, not with a ConsumerRebalanceListener: passing one
    # through FastStream 0.7's batch subscriber changed its delivery (an e2e rule test then failed).
    last_assignment: list[tuple] = [()]

    async def on_batch(message: KafkaMessage) -> None:
        if on_rebalance is not None and (now := _assignment(message)) != last_assignment[0]:
            last_assignment[0] = now
            on_rebalance()
        records = message.raw_message if isinstance(message.raw_message, tuple) else (message.raw_message,)
        decoded = []
        for record in records:
            try:
                decoded.append(Decoded(record, topics[record.topic].model_validate_json(record.value or b"")))
            except ValidationError as exc:
                await _park(broker, group_id, record, "undecodable", bus._summary(exc), 0)
        if decoded:
            await _handle(decoded)

    async def _handle(decoded: list[Decoded]) -> None:
        try:
            await _attempts(lambda: handler([d.event for d in decoded]), retries)
            BATCHES.labels(name, "batch").inc()
            return
        except Outage:
            raise
        except Exception as exc:  # noqa: BLE001 - isolate the failing record(s)
            log.warning("batch_failed_isolating", consumer=name, size=len(decoded), error=repr(exc))
        BATCHES.labels(name, "one_by_one").inc()
        for item in decoded:
            try:
                await _attempts(lambda item=item: handler([item.event]), retries)
            except Outage:
                raise
            except PermanentError as exc:
                await _park(broker, group_id, item.record, "rejected", str(exc), 1)
            except Exception as exc:  # noqa: BLE001 - parked with its reason, never dropped
                await _park(broker, group_id, item.record, "failed", repr(exc), retries)

    async def _attempts(call: Callable[[], Awaitable[None]], attempts: int) -> None:
        for attempt in range(1, attempts + 1):
            try:
                await call()
                return
            except PermanentError:
                raise
            except OUTAGE as exc:
                if attempt == attempts:
                    raise Outage(repr(exc)) from exc
            except Exception:
                if attempt == attempts:
                    raise
            bus.RETRIED.labels(name).inc()
            await asyncio.sleep(backoff_s * 2 ** (attempt - 1))

    on_batch.__name__ = f"on_{name}_batch"
    broker.subscriber(*topics, group_id=group_id, batch=True, max_records=max_records, auto_offset_reset="earliest",
                      ack_policy=AckPolicy.NACK_ON_ERROR, partition_assignment_strategy=(RangePartitionAssignor,),
                      batch_timeout_ms=100)(on_batch)


async def _park(broker: KafkaBroker, group_id: str, record, reason: str, error: str, attempts: int) -> None:
    await bus.dead_letter(broker, record.topic, group_id, record.partition, record.offset, record.key, record.value,
                          reason, error, attempts)
