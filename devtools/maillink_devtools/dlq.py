"""Dead letters for operators: list what a topic's consumers parked, and re-publish it to its
source topic once the cause is fixed. Consumers are idempotent, so a replay of something that was
handled after all changes nothing.

  maillink dlq list mail.message.received.v1 [--reason failed] [--consumer G]
  maillink dlq replay mail.message.received.v1 [--reason failed] [--consumer G] [--offsets 3,9] [--dry-run]
"""
import base64
from dataclasses import dataclass

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from maillink_runtime.kafka_conn import client_options
from maillink_runtime.settings import KafkaSettings
from maillink_schemas.dead_letter import DeadLettered
from maillink_schemas.topics import dead_letter_topic


@dataclass(frozen=True)
class Filter:
    reason: str | None = None
    consumer: str | None = None
    offsets: frozenset[int] | None = None  # offsets in the source topic

    def matches(self, parked: DeadLettered) -> bool:
        return ((self.reason is None or parked.error_type == self.reason)
                and (self.consumer is None or parked.consumer == self.consumer)
                and (self.offsets is None or parked.offset in self.offsets))


async def parked(settings: KafkaSettings, topic: str) -> list[DeadLettered]:
    """Every record on `<topic>.dlq`, oldest first (read without a group: nothing is committed)."""
    consumer = AIOKafkaConsumer(dead_letter_topic(topic), group_id=None, auto_offset_reset="earliest",
                                enable_auto_commit=False, **client_options(settings))
    await consumer.start()
    found = []
    try:
        idle = 0
        while idle < 2:  # two quiet polls in a row: the end of the topic
            batch = await consumer.getmany(timeout_ms=700)
            idle = 0 if batch else idle + 1
            for records in batch.values():
                found.extend(DeadLettered.model_validate_json(r.value) for r in records)
    finally:
        await consumer.stop()
    return sorted(found, key=lambda p: (p.partition, p.offset))


async def replay(settings: KafkaSettings, items: list[DeadLettered]) -> int:
    """Re-publishes each parked record, key and bytes as they were, to its source topic."""
    producer = AIOKafkaProducer(acks="all", enable_idempotence=True, **client_options(settings))
    await producer.start()
    try:
        for item in items:
            await producer.send_and_wait(item.source_topic, base64.b64decode(item.payload),
                                         key=base64.b64decode(item.key) if item.key else None)
    finally:
        await producer.stop()
    return len(items)
