"""Each account's sync status: stored (for the API), published on mail.account.status.v1 when it
changes, and counted in two gauges (accounts per state, accounts per problem)."""
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime

import structlog
from prometheus_client import Counter, Gauge

from maillink_schemas.accounts import AccountConfigured, AccountStatusChanged, FolderProblem, StatusReason, SyncState
from maillink_schemas.base import deterministic_id, utcnow

from ..adapters.accounts import AccountStore

ACCOUNTS = Gauge("maillink_ingest_accounts", "Accounts by sync state", ["state"])
PROBLEMS = Gauge("maillink_ingest_account_problems", "Accounts (or folders) by the problem they report", ["reason"])
ERRORS = Counter("maillink_ingest_sync_errors_total", "Sync failures, by what they were", ["kind"])
log = structlog.get_logger()


@dataclass(frozen=True)
class Health:
    state: SyncState
    reason: StatusReason | None = None
    words: str | None = None
    synced: int | None = None
    retry_at: datetime | None = None
    folder_problems: tuple[FolderProblem, ...] = field(default_factory=tuple)

    def reasons(self) -> list[StatusReason]:
        return ([self.reason] if self.reason else []) + [p.reason for p in self.folder_problems]


ReportStatus = Callable[[AccountConfigured, Health], Awaitable[None]]
Publish = Callable[[AccountStatusChanged], Awaitable[None]]


class StatusReporter:
    def __init__(self, accounts: AccountStore, publish: Publish) -> None:
        self._accounts, self._publish = accounts, publish
        self._last: dict[str, Health] = {}

    async def __call__(self, account: AccountConfigured, health: Health) -> None:
        # Reporting never takes the sync loop down: with the store or Kafka unreachable the status
        # is logged (and the other half still tried), and the loop goes on retrying its real work.
        try:
            await self._accounts.set_status(
                account.account_id, health.state, health.words, health.synced,
                reason=health.reason.value if health.reason else None, retry_at=health.retry_at,
                folder_problems=[p.model_dump(mode="json") for p in health.folder_problems])
        except Exception as exc:  # noqa: BLE001
            log.warning("status_store_failed", account_id=account.account_id, error=repr(exc))
        previous = self._last.get(account.account_id)
        if previous is not None and _same(previous, health):
            return
        self._count(previous, -1)
        self._count(health, +1)
        self._last[account.account_id] = health
        try:
            await self._publish(_event(account, health))
        except Exception as exc:  # noqa: BLE001
            log.warning("status_publish_failed", account_id=account.account_id, error=repr(exc))

    def forget(self, account_id: str) -> None:
        self._count(self._last.pop(account_id, None), -1)

    @staticmethod
    def _count(health: Health | None, delta: int) -> None:
        if health is None:
            return
        ACCOUNTS.labels(health.state.value).inc(delta)
        for reason in health.reasons():
            PROBLEMS.labels(reason.value).inc(delta)


def _same(a: Health, b: Health) -> bool:
    return (a.state, a.reason, a.folder_problems) == (b.state, b.reason, b.folder_problems)


def _event(account: AccountConfigured, health: Health) -> AccountStatusChanged:
    now = utcnow()
    return AccountStatusChanged(
        event_id=deterministic_id("status", account.account_id, health.state.value, now.isoformat()),
        occurred_at=now, account_id=account.account_id, state=health.state, error=health.words,
        messages_synced=health.synced or 0, updated_at=now, reason=health.reason, retry_at=health.retry_at,
        folder_problems=list(health.folder_problems))
