import asyncio
from datetime import datetime, timezone

from maillink_ingest.sync.manager import SyncManager
from maillink_schemas.accounts import AccountConfigured, ImapEndpoint


def config(version=1, enabled=True, account_id="a1") -> AccountConfigured:
    return AccountConfigured(event_id="e", occurred_at=datetime.now(timezone.utc), account_id=account_id, user_id="u",
                             email="a@example.com", imap=ImapEndpoint(host="imap.example.com", port=993),
                             username="a", secret_ciphertext="x", version=version, enabled=enabled)


class Runs:
    """A fake runner: records which configuration versions are running."""

    def __init__(self):
        self.running: dict[tuple[str, int], bool] = {}

    async def __call__(self, account, stop: asyncio.Event):
        self.running[(account.account_id, account.version)] = True
        await stop.wait()
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
