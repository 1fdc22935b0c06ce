import asyncio
from datetime import datetime, timezone

from maillink_ingest.sync.manager import SyncManager
from maillink_schemas.accounts import AccountConfigured, ImapEndpoint


def config(version=1, enabled=True, account_id="a1", secret="x") -> AccountConfigured:
    return AccountConfigured(event_id="e", occurred_at=datetime.now(timezone.utc), account_id=account_id, user_id="u",
                             email="a@example.com", imap=ImapEndpoint(host="imap.example.com", port=993),
                             username="a", secret_ciphertext=secret, version=version, enabled=enabled)


class Runs:
    """A fake runner: records which configuration versions are running, and how often each started."""

    def __init__(self):
        self.running: dict[tuple[str, int], bool] = {}
        self.starts: dict[str, int] = {}

    async def __call__(self, account, stop: asyncio.Event):
        self.running[(account.account_id, account.version)] = True
        self.starts[account.account_id] = self.starts.get(account.account_id, 0) + 1
        try:
            await stop.wait()
        finally:
            self.running[(account.account_id, account.version)] = False

    def live(self):
        return sorted(k for k, v in self.running.items() if v)


async def settle():
    await asyncio.sleep(0.01)


async def test_new_version_replaces_the_running_loop_and_older_ones_are_ignored():
    runs = Runs()
    manager = SyncManager(runs)
    await manager.apply(config(1), partition=0)
    await settle()
    await manager.apply(config(2), partition=0)
    await settle()
    await manager.apply(config(1), partition=0)  # a replayed, older record
    await settle()
    assert runs.live() == [("a1", 2)]
    await manager.stop_all()


async def test_disabled_accounts_stop_and_revoked_partitions_stop_their_accounts():
    runs = Runs()
    manager = SyncManager(runs)
    await manager.apply(config(1, account_id="a1"), partition=0)
    await manager.apply(config(1, account_id="a2"), partition=1)
    await settle()
    await manager.revoke({1})
    await settle()
    assert runs.live() == [("a1", 1)]
    await manager.apply(config(2, enabled=False, account_id="a1"), partition=0)
    await settle()
    assert runs.live() == []


async def test_revocation_cancels_every_loop_at_once_mid_command():
    """Loops stuck in an IMAP command (a FETCH that never ends) are all interrupted together: every
    loop sees its cancellation before any of them has finished cleaning up."""
    log: list[str] = []
    never = asyncio.get_running_loop().create_future()

    async def in_a_long_fetch(account, stop):
        try:
            await asyncio.shield(never)  # ignores `stop`: only a cancellation gets it out
        except asyncio.CancelledError:
            log.append("cancelled")
            await asyncio.sleep(0.01)  # closing its socket
            log.append("closed")
            raise

    manager = SyncManager(in_a_long_fetch)
    for n in range(50):
        await manager.apply(config(1, account_id=f"a{n}"), partition=n % 3)
    await settle()
    await manager.revoke({0, 1, 2})
    assert manager.running() == []
    assert log.count("cancelled") == 50 and log.count("closed") == 50
    assert log.index("closed") == 50  # all 50 cancellations came before the first loop finished closing


async def test_a_loop_that_ended_for_new_credentials_is_not_restarted_by_a_replay():
    ended = []

    async def refused(account, stop):
        ended.append(account.version)  # needs_reauth: the loop returns by itself

    manager = SyncManager(refused)
    await manager.apply(config(1, secret="old"), partition=0)
    await settle()
    await manager.apply(config(1, secret="old"), partition=0)  # replay after a rebalance
    await settle()
    assert ended == [1]
    await manager.apply(config(2, secret="new"), partition=0)  # new credentials
    await settle()
    assert ended == [1, 2]


async def test_an_eager_rebalance_keeps_the_loops_whose_partitions_come_back():
    runs = Runs()
    manager = SyncManager(runs)
    await manager.apply(config(1, account_id="stays"), partition=0)
    await manager.apply(config(1, account_id="moves"), partition=1)
    await settle()
    manager.suspend({0, 1})  # eager protocol: everything is revoked before the rebalance
    await settle()
    assert runs.live() == [("moves", 1), ("stays", 1)]  # still running meanwhile
    await manager.assigned({0})
    await settle()
    assert runs.live() == [("stays", 1)] and runs.starts == {"stays": 1, "moves": 1}


async def test_a_suspension_no_assignment_resolves_stops_the_loops():
    runs = Runs()
    manager = SyncManager(runs, suspend_grace_s=0.05)
    await manager.apply(config(1), partition=0)
    await settle()
    manager.suspend({0})  # ... and this member drops out of the group: no assignment follows
    await asyncio.sleep(0.2)
    assert runs.live() == []
