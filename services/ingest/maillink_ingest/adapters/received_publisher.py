"""mail.message.received.v1 through aiokafka record batches (runtime kafka_batches.BatchProducer).

Why not FastStream's publish, as the rarer topics use: per record it built a message, ran its
middlewares and made a uuid4 correlation id, and aiokafka's send() added a future and its pure-Python
partitioner (~0.1-0.2 ms of CPU per event, measured in docs/ingest-sync.md). Its producer's default
16 KB batches also meant one acks=all round trip per ~10 events, one request in flight per broker.
Here a delivery group's events go out as one batch per partition and are awaited together; the
bytes are the ones Delivery serialised for its size check. acks=all and the idempotent producer, as
every producer of the project.
"""
from maillink_runtime.kafka_batches import BatchProducer

from ..sync.delivery import Outgoing


class ReceivedPublisher:
    def __init__(self, producer: BatchProducer, topic: str) -> None:
        self._producer, self._topic = producer, topic

    async def __call__(self, records: list[Outgoing]) -> None:
        await self._producer.publish_many(self._topic, [(r.key.encode(), r.payload) for r in records])
