"""Rebalance storm on the real broker: 100 accounts whose loops sit in an IMAP command that never ends
(they ignore their stop flag), shared by two instances of the account consumer in one group.

A second instance joining, and then one leaving, must stop the moved loops at once (by
cancellation, not by waiting for a pass), keep the others running without a restart (eager sticky
assignment), end with every account running on exactly one instance, and keep the group stable.
"""
import asyncio
import time
from datetime import datetime, timezone

import pytest
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from maillink_devtools.kafka_tools import produce
from maillink_ingest.adapters.accounts import AccountStore
from maillink_ingest.entrypoints.assignments import AccountAssignments
from maillink_ingest.sync.manager import SyncManager
from maillink_runtime import bus
from maillink_schemas.accounts import AccountConfigured, ImapEndpoint
from tests.conftest import KAFKA

pytestmark = pytest.mark.integration
N = 100


class Instance:
    def __init__(self, name: str, running: dict[str, set[str]], starts: dict[str, int]) -> None:
        self.name, self.running, self.starts = name, running, starts

    async def __call__(self, account: AccountConfigured, stop: asyncio.Event) -> None:
        self.running.setdefault(account.account_id, set()).add(self.name)
        self.starts[account.account_id] = self.starts.get(account.account_id, 0) + 1
        try:
            await asyncio.get_running_loop().create_future()  # a FETCH that never ends; `stop` is ignored
        finally:
            self.running[account.account_id].discard(self.name)


def record(n: int) -> tuple[bytes, bytes]:
    account = AccountConfigured(event_id=f"e{n}", occurred_at=datetime.now(timezone.utc), account_id=f"acc-{n}",
                                user_id="u", email=f"a{n}@example.com", imap=ImapEndpoint(host="imap.example.com",
                                                                                           port=993),
                                username="a", secret_ciphertext="x", version=1)
    return account.account_id.encode(), account.model_dump_json().encode()


async def settled(running: dict[str, set[str]], managers: list[SyncManager], timeout: float = 60) -> None:
    """Until every account runs on exactly one instance (and the managers agree)."""
    async def check():
        while True:
            owners = [len(running.get(f"acc-{n}", ())) for n in range(N)]
            listed = sum(len(m.running()) for m in managers)
            if owners == [1] * N and listed == N:
                return
            await asyncio.sleep(0.2)
    await asyncio.wait_for(check(), timeout)


async def test_a_rebalance_moves_loops_at_once_keeps_the_rest_and_never_leaves_two_owners(namespace, ingest_db):
    topic, group = f"{namespace}mail.account.v1", f"{namespace}maillink-ingest"
    admin = AIOKafkaAdminClient(bootstrap_servers=KAFKA)
    await admin.start()
    await admin.create_topics([NewTopic(topic, 6, 1)])
    await admin.close()
    await produce(KAFKA, topic, [record(n) for n in range(N)])
    broker = bus.make_broker(KAFKA, "test")
    await broker.start()
    running, starts, instances = {}, {}, []

    async def start(name: str) -> AccountAssignments:
        async def forget(account_id):
            pass
        manager = SyncManager(Instance(name, running, starts), stop_grace_s=2)
        assignments = AccountAssignments({"bootstrap_servers": KAFKA}, topic, group, manager, AccountStore(ingest_db),
                                         broker, forget)
        await assignments.start()
        instances.append(assignments)
        return assignments

    try:
        first = await start("a")
        await settled(running, [first.manager])
        assert set(starts.values()) == {1}

        joined = time.monotonic()
        second = await start("b")
        await settled(running, [first.manager, second.manager])
        print(f"\nrebalance with {N} accounts mid-command: settled {time.monotonic() - joined:.1f} s after B joined")
        moved = {a for a, owners in running.items() if "b" in owners}
        assert 0 < len(moved) < N
        # Sticky: what stayed on A was never restarted; what moved started once more, on B.
        assert all(starts[f"acc-{n}"] == (2 if f"acc-{n}" in moved else 1) for n in range(N))

        left = time.monotonic()
        await second.stop()  # B leaves; its loops are cancelled mid-command, A takes them back
        await second.manager.stop_all()
        instances.remove(second)
        await settled(running, [first.manager])
        print(f"B left: A owns all {N} again {time.monotonic() - left:.1f} s later")
        assert all(running[f"acc-{n}"] == {"a"} for n in range(N))
    finally:
        for assignments in instances:
            await assignments.stop()
            await assignments.manager.stop_all()
        await broker.stop()
