"""Publishing whole record batches with aiokafka directly: what the tracker and the Smart Bcc gateway share.

Why not FastStream's publish, or aiokafka's send() per record (measured in docs/tracker.md and
docs/bcc-gateway.md): each costs Python per record, a future, the partitioner in pure Python and the
accumulator for send() (tens of microseconds), FastStream's message building and middlewares on top
(0.1-0.2 ms). Here the caller appends records to the batch of one partition and hands the batch over
with one send_batch(): one future per batch, not per record.

The partition is the one aiokafka's default partitioner picks for the key (murmur2), so a key's
records stay on one partition, in order, as with every other producer of the project. acks=all and
the idempotent producer: a batch counts only once Kafka holds it, and the producer's own retries
never duplicate it.
"""
import asyncio

from aiokafka import AIOKafkaProducer
from aiokafka.partitioner import DefaultPartitioner

from .kafka_conn import client_options
from .settings import KafkaSettings

JSON_HEADERS = [("content-type", b"application/json")]
_PARTITIONER = DefaultPartitioner()
_KEY_CACHE = 100_000


class BatchProducer:
    def __init__(self, settings: KafkaSettings, client_id: str, max_batch_bytes: int = 512 * 1024,
                 compression_type: str | None = None) -> None:
        # linger_ms=0 in the producer: batches are complete when handed over. compression_type is
        # aiokafka's (None, gzip, snappy, lz4, zstd; the last three need cramjam); batches made by
        # new_batch() are compressed with it.
        self._options = dict(**client_options(settings), client_id=client_id, acks="all", enable_idempotence=True,
                             linger_ms=0, max_batch_size=max_batch_bytes, compression_type=compression_type)
        self._producer: AIOKafkaProducer | None = None  # made in start(): aiokafka needs the running loop
        self._partitions: dict[str, list[int]] = {}
        self._partition_of: dict[tuple[str, bytes], int] = {}

    async def start(self) -> None:
        self._producer = AIOKafkaProducer(**self._options)
        await self._producer.start()

    async def stop(self) -> None:
        if self._producer is not None:
            await self._producer.stop()

    async def partition(self, topic: str, key: bytes) -> int:
        partition = self.partition_now(topic, key)
        if partition is not None:
            return partition
        self._partitions[topic] = sorted(await self._producer.partitions_for(topic))
        return self.partition_now(topic, key)

    def partition_now(self, topic: str, key: bytes) -> int | None:
        """The key's partition without awaiting, or None while the topic's partitions are not known
        (`partition` learns them): for callers that decide inside a protocol callback (the tracker's pixel)."""
        partition = self._partition_of.get((topic, key))
        if partition is not None:
            return partition
        partitions = self._partitions.get(topic)
        if partitions is None:
            return None
        if len(self._partition_of) > _KEY_CACHE:
            self._partition_of.clear()
        partition = self._partition_of[(topic, key)] = _PARTITIONER(key, partitions, partitions)
        return partition

    def batch_with(self, key: bytes, value: bytes):
        """A new batch holding this record (a batch is filled with `append` from then on)."""
        batch = self._producer.create_batch()
        if not append(batch, key, value):
            raise ValueError(f"a record of {len(value)} bytes is larger than a batch")
        return batch

    async def send(self, batch, topic: str, partition: int) -> None:
        """Hands one batch over and returns once Kafka acknowledged it (raises if the producer gave up)."""
        delivered = await self._producer.send_batch(batch, topic, partition=partition)
        await delivered

    async def publish_many(self, topic: str, records: list[tuple[bytes, bytes]]) -> None:
        """Publishes (key, value) records, in their order per key, and returns once all are acknowledged."""
        batches: dict[int, list] = {}
        for key, value in records:
            partition = await self.partition(topic, key)
            open_ = batches.setdefault(partition, [])
            if not open_ or not append(open_[-1], key, value):
                open_.append(self.batch_with(key, value))  # first, or the last one is full
        # Handed over in order (a partition's batches leave in that order), then all acknowledgements awaited.
        delivered = []
        try:
            for partition, group in batches.items():
                for batch in group:
                    delivered.append(await self._producer.send_batch(batch, topic, partition=partition))
        except BaseException:
            for future in delivered:  # the caller learns the first failure; these outcomes are not needed
                future.add_done_callback(_retrieve)
            raise
        await asyncio.gather(*delivered)


def append(batch, key: bytes, value: bytes) -> bool:
    """Adds the record to the batch; False when the batch is full (the record is not in it)."""
    return batch.append(timestamp=None, key=key, value=value, headers=JSON_HEADERS) is not None


def _retrieve(future: asyncio.Future) -> None:
    if not future.cancelled():
        future.exception()
