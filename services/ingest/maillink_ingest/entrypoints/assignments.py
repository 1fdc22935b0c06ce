"""Consumes the compacted account topic and keeps one sync loop per account of our partitions.

Scale-out uses Kafka's consumer group: each ingest instance syncs exactly the accounts on the
partitions it is assigned. On every assignment the partitions are replayed from the beginning
(the topic is compacted, so that is the current configuration of every account on them); on
revocation those accounts' loops stop here and start on the instance that received them.

aiokafka 0.14 (checked in its source: coordinator/assignors/ has range, roundrobin and sticky, and
the group coordinator always revokes every partition in `_on_join_prepare`) has no cooperative
protocol: cooperative-sticky is not available. What it has is the eager StickyPartitionAssignor,
which hands each member back the partitions it had. So a revocation only suspends its accounts'
loops (see sync/manager.py) and the assignment that follows stops those that moved: a rebalance
costs the accounts that stay no reconnect, and the callback returns at once, far inside
max.poll.interval.ms.

Offsets are never committed: the replay is the state. With no committed offset, every assignment
starts at auto_offset_reset=earliest by itself, so the listener does not seek (a seek inside the
rebalance callback was a suspect in a stall seen once in the e2e test).
"""
import asyncio
import json

import structlog
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRebalanceListener
from aiokafka.coordinator.assignors.sticky.sticky_assignor import StickyPartitionAssignor
from faststream.kafka import KafkaBroker
from pydantic import ValidationError

from maillink_runtime import lag
from maillink_runtime.bus import dead_letter
from maillink_schemas.accounts import AccountConfigured

from ..adapters.accounts import AccountStore
from ..sync.manager import SyncManager

log = structlog.get_logger()


class _Replay(ConsumerRebalanceListener):
    def __init__(self, assignments: "AccountAssignments") -> None:
        self._a = assignments

    async def on_partitions_revoked(self, revoked):
        self._a.manager.suspend({tp.partition for tp in revoked})

    async def on_partitions_assigned(self, assigned):
        partitions = sorted(tp.partition for tp in assigned)
        log.info("account_partitions_assigned", partitions=partitions)
        await self._a.manager.assigned(partitions)


class AccountAssignments:
    def __init__(self, kafka_options: dict, topic: str, group_id: str, manager: SyncManager, accounts: AccountStore,
                 broker: KafkaBroker, forget) -> None:
        self.topic, self.group_id = topic, group_id
        self.manager, self._accounts, self._broker = manager, accounts, broker
        self._forget = forget  # async (account_id) -> None: deletes credentials, status and folder state
        self._kafka_options = kafka_options  # kafka_conn.client_options(settings): servers, TLS, SASL
        self.consumer: AIOKafkaConsumer | None = None
        self._producer: AIOKafkaProducer | None = None
        self._task: asyncio.Task | None = None

    async def start(self) -> None:
        # aiokafka binds to the running loop, so the consumer is made here, not in __init__.
        # max_poll_interval_ms: a replay applies every account of the partitions (one store write
        # each) before polling again. 1,000 accounts on a busy store took more than aiokafka's
        # default 5 minutes: the consumer left its group, the rebalance stopped every loop, and the
        # replay began again (make bench-idle). 30 minutes covers that; heartbeats (session timeout)
        # still detect a dead member within seconds.
        self.consumer = AIOKafkaConsumer(**self._kafka_options, group_id=self.group_id,
                                         enable_auto_commit=False, auto_offset_reset="earliest",
                                         max_poll_interval_ms=30 * 60 * 1000,
                                         partition_assignment_strategy=(StickyPartitionAssignor,))
        self.consumer.subscribe([self.topic], listener=_Replay(self))
        await self.consumer.start()
        lag.watch(self.group_id, self.consumer)  # the account topic's backlog shows in maillink_consumer_lag
        self._task = asyncio.create_task(self._run(), name="account-assignments")
        # FastStream encodes a None body as b"", which compaction keeps: a real tombstone (null
        # value) needs the plain producer.
        self._producer = AIOKafkaProducer(**self._kafka_options, acks="all")
        await self._producer.start()

    async def publish_tombstone(self, account_id: str) -> None:
        await self._producer.send_and_wait(self.topic, value=None, key=account_id.encode())

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        if self.consumer:
            lag.unwatch(self.consumer)
            await self.consumer.stop()
        if self._producer:
            await self._producer.stop()

    async def _run(self) -> None:
        while True:
            batches = await self.consumer.getmany(timeout_ms=1000)
            for records in batches.values():
                # A replay holds every past version of an account; only the newest needs applying,
                # so an outdated configuration (old credentials) never starts a sync, even briefly.
                for record in _newest_per_key(records):
                    await self._apply_until_done(record)

    async def _apply_until_done(self, record) -> None:
        # An account must not be skipped (it would silently never sync), so a failure (the store
        # unreachable, say) is logged and retried; this loop never dies quietly.
        delay = 0.5
        while True:
            try:
                await self._apply(record)
                return
            except asyncio.CancelledError:
                raise
            except Exception:  # noqa: BLE001
                log.exception("account_apply_failed", partition=record.partition, offset=record.offset)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 30)

    async def _apply(self, record) -> None:
        if not record.value:  # None; b"" is what FastStream sends for None, so it counts too
            # Tombstone: the account was removed. This consumer is the one writer of the account's
            # documents (see adapters/accounts.py), so it stops the loop and forgets everything:
            # credentials, status and folder state. A replay meets the tombstone again: harmless.
            account_id = record.key.decode()
            await self.manager.remove(account_id)
            await self._forget(account_id)
            log.info("account_removed", account_id=account_id)
            return
        try:
            account = AccountConfigured.model_validate_json(record.value)
        except ValidationError as exc:
            await dead_letter(self._broker, self.topic, self.group_id, record.partition, record.offset, record.key,
                              record.value, "undecodable", str(exc)[:500], 0)
            return
        await self._accounts.save(account)
        await self.manager.apply(account, record.partition)


def _newest_per_key(records) -> list:
    """The record to apply per key. Among configurations, the highest `version` (concurrent API calls
    may land out of version order); a tombstone ends everything before it, and a configuration after
    a tombstone (a mailbox removed, then connected again) starts afresh. Undecodable records count as
    newest, so they are dead-lettered."""
    newest: dict = {}
    for record in records:  # in offset order
        kept = newest.get(record.key)
        if kept is None or not record.value or not kept.value or _version(record) >= _version(kept):
            newest[record.key] = record
    return list(newest.values())


def _version(record) -> float:
    try:
        return json.loads(record.value)["version"]
    except (TypeError, ValueError, KeyError):
        return float("inf")
