"""One mailbox account's sync loop: connect, sync every folder, then react to pushes; repeat.

- Each folder fails on its own: a vanished folder or a refused command is reported in words for
  that folder, and the others go on (sync/diagnosis.py decides what is folder-local).
- Failures that end the session (server unreachable, a provider's limit, our store or broker
  down) retry with jittered backoff (sync/backoff.py); the first retry after a working session is
  immediate, and a provider that names its wait gets at least that.
- Refused credentials move the account to needs_reauth and end the loop. The refusal is stored
  with the credentials it applies to, so no rebalance or restart, here or on another instance,
  tries them again; only new credentials do (adapters/accounts.py `refusal`).
- New mail: every synced folder that supports it has an IDLE watcher of its own (imap/idle.py, up
  to `idle_folders_max` connections); a push syncs only that folder, from its cursor. Every
  `poll_interval_s` a full pass re-lists the folders (so a folder created on the server, or one
  that vanished, is noticed) and checks the unwatched ones; when every folder is watched, every
  `relist_interval_s`.
"""
import asyncio
import functools
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Protocol

import structlog
from prometheus_client import Counter

from maillink_runtime import redact
from maillink_schemas.accounts import AccountConfigured, FolderProblem, StatusReason, SyncState

from ..adapters.crypto import CredentialsCipher
from ..adapters.folder_state import FolderStateStore
from ..domain.folders import FolderPlan, choose
from ..imap.connection import abort_session, list_folders, open_session
from ..imap.errors import CredentialsUnreadable, ServerUnreachable
from ..imap.idle import RENEW_S, sleep_or_stop, watch_folder
from .backoff import retry_delay
from .delivery import Delivery
from .diagnosis import diagnose
from .folder_sync import FolderSync
from .status import Health, ReportStatus

ERRORS = Counter("maillink_ingest_sync_errors_total", "Sync failures, by what they were", ["kind"])


class Refusals(Protocol):
    async def refusal(self, account: AccountConfigured) -> dict | None: ...
    async def refused(self, account: AccountConfigured, reason: str, words: str) -> None: ...
    async def accepted(self, account_id: str) -> None: ...


@dataclass(frozen=True)
class SyncDeps:
    states: FolderStateStore
    delivery: Delivery
    cipher: CredentialsCipher
    report: ReportStatus
    refusals: Refusals
    poll_interval_s: float = 15.0
    batch_size: int = 200
    ca_file: str | None = None
    max_backoff_s: float = 300.0
    idle_folders_max: int = 5
    idle_renew_s: float = RENEW_S
    relist_interval_s: float = 300.0  # between full passes when IDLE watches every folder


async def run_account(account: AccountConfigured, deps: SyncDeps, stop: asyncio.Event) -> None:
    with structlog.contextvars.bound_contextvars(account_id=account.account_id):
        await _run(account, deps, stop, structlog.get_logger())


async def _run(account: AccountConfigured, deps: SyncDeps, stop: asyncio.Event, log) -> None:
    attempt, checked = 0, False

    def healthy() -> None:
        nonlocal attempt
        attempt = 0

    while not stop.is_set():
        try:
            if not checked:
                if refusal := await deps.refusals.refusal(account):
                    log.info("sync_waits_for_new_credentials", reason=refusal["reason"])
                    await deps.report(account, Health(SyncState.NEEDS_REAUTH, StatusReason(refusal["reason"]),
                                                      refusal["words"]))
                    return
                checked = True
            await deps.report(account, Health(SyncState.CONNECTING))
            await _Session(account, deps, stop, log, healthy).run()
        except (asyncio.CancelledError, GeneratorExit):
            raise
        except Exception as exc:  # noqa: BLE001 - the loop survives anything and says what happened
            found = diagnose(exc)
            ERRORS.labels(found.reason.value).inc()
            log.warning("sync_failed", reason=found.reason.value, error=repr(exc),
                        server=getattr(exc, "server_text", None), attempt=attempt)
            if found.needs_new_credentials:
                await _quietly(deps.refusals.refused(account, found.reason.value, found.words), log)
                await deps.report(account, Health(found.state, found.reason, found.words))
                return
            delay = retry_delay(attempt, floor_s=found.retry_after_s, cap_s=deps.max_backoff_s)
            await deps.report(account, Health(found.state, found.reason, found.words,
                                              retry_at=datetime.now(timezone.utc) + timedelta(seconds=delay)))
            attempt += 1
            await sleep_or_stop(stop, delay)


async def _quietly(awaitable, log) -> None:
    try:
        await awaitable
    except Exception as exc:  # noqa: BLE001 - a store outage must not hide the real state
        log.warning("refusal_not_stored", error=repr(exc))


def _secret(account: AccountConfigured, cipher: CredentialsCipher) -> str:
    try:
        secret = cipher.decrypt(account.secret_ciphertext)
    except ValueError as exc:
        raise CredentialsUnreadable("The stored credentials cannot be decrypted with this deployment's keys.") from exc
    redact.register_secret(secret)  # from here on, no log line of this process can show it
    return secret


def _at_connection_limit(exc: Exception) -> bool:
    # The provider's per-mailbox connection limit (other mail apps count too): this watcher's
    # folder falls back to polling rather than fight the user's own clients for a connection.
    return diagnose(exc).reason == StatusReason.TOO_MANY_CONNECTIONS


class _Changes:
    """Folders reported by the watchers since the last look."""

    def __init__(self) -> None:
        self.folders: set[str] = set()
        self.event = asyncio.Event()

    def add(self, folder: str) -> None:
        self.folders.add(folder)
        self.event.set()

    def take(self) -> set[str]:
        taken, self.folders = self.folders, set()
        self.event.clear()
        return taken


class _Session:
    def __init__(self, account: AccountConfigured, deps: SyncDeps, stop: asyncio.Event, log, healthy) -> None:
        self.account, self.deps, self.stop, self.log, self.healthy = account, deps, stop, log, healthy
        self.lost = asyncio.Event()
        self.changes = _Changes()
        self.watchers: dict[str, asyncio.Task] = {}
        self.problems: dict[str, FolderProblem] = {}
        self.initial_reported = False

    async def run(self) -> None:
        connect = functools.partial(open_session, self.account.imap, self.account.username,
                                    _secret(self.account, self.deps.cipher), ca_file=self.deps.ca_file)
        client = await connect(on_lost=self.lost.set)
        try:
            await self.deps.refusals.accepted(self.account.account_id)
            sync = FolderSync(client, self.account, self.deps.states, self.deps.delivery,
                              batch_size=self.deps.batch_size)
            while not self.stop.is_set():
                plans = await self._full_pass(client, sync)
                self._watch([p.name for p in plans] if client.has_capability("IDLE") else [], connect)
                # With every folder watched, a full pass only re-lists the folders (new or vanished
                # ones): an idle account then costs sockets, not polling.
                everything_watched = all(p.name in self.watchers for p in plans)
                interval = max(self.deps.poll_interval_s, self.deps.relist_interval_s) if everything_watched \
                    else self.deps.poll_interval_s
                await self._follow_pushes(sync, {p.name: p for p in plans}, interval)
        finally:
            for task in self.watchers.values():
                task.cancel()
            await asyncio.gather(*self.watchers.values(), return_exceptions=True)
            abort_session(client)  # no LOGOUT round trip: a stop must not wait for the server

    async def _full_pass(self, client, sync: FolderSync) -> list[FolderPlan]:
        listed = await list_folders(client)
        plans, missing = choose([(f.name, f.flags) for f in listed], self.account.folders)
        self.problems = {name: FolderProblem(folder=name, reason=StatusReason.FOLDER_VANISHED,
                                             error=f"The folder “{name}” does not exist on the server (any more); "
                                                   "the other folders go on syncing.") for name in missing}
        if missing:
            self.log.warning("folders_missing", folders=missing)
        self.changes.take()  # this pass covers whatever was reported before it
        for plan in plans:
            await self._folder(sync, plan)
        await self._report_synced()
        return plans

    async def _folder(self, sync: FolderSync, plan: FolderPlan) -> None:
        if not self.initial_reported:
            await self.deps.report(self.account, Health(SyncState.INITIAL_SYNC))
            self.initial_reported = True
        with structlog.contextvars.bound_contextvars(folder=plan.name):
            try:
                await sync.run(plan)
                self.problems.pop(plan.name, None)
            except (asyncio.CancelledError, GeneratorExit):
                raise
            except Exception as exc:  # noqa: BLE001 - one folder must not block the others
                found = diagnose(exc)
                if self.lost.is_set():
                    raise ServerUnreachable("The connection to the mail server was closed.") from exc
                if not found.folder_only:
                    raise
                ERRORS.labels(found.reason.value).inc()
                self.log.warning("folder_sync_failed", reason=found.reason.value, error=repr(exc),
                                 server=getattr(exc, "server_text", None))
                self.problems[plan.name] = FolderProblem(folder=plan.name, reason=found.reason, error=found.words)
        if self.lost.is_set():
            raise ServerUnreachable("The connection to the mail server was closed.")

    async def _report_synced(self) -> None:
        synced = sum(s.synced for s in await self.deps.states.for_account(self.account.account_id))
        await self.deps.report(self.account, Health(SyncState.SYNCED, synced=synced,
                                                    folder_problems=tuple(self.problems.values())))
        self.healthy()

    def _watch(self, folders: list[str], connect) -> None:
        wanted = set(folders[:self.deps.idle_folders_max])
        for name in set(self.watchers) - wanted:  # removed from the selection, or vanished
            self.watchers.pop(name).cancel()
        for name in wanted - set(self.watchers):
            delay = functools.partial(retry_delay, cap_s=self.deps.max_backoff_s)
            self.watchers[name] = asyncio.create_task(
                watch_folder(connect, name, self.changes.add, renew_s=self.deps.idle_renew_s, retry_delay=delay,
                             gives_up=_at_connection_limit),
                name=f"idle:{self.account.account_id}:{name}")

    async def _follow_pushes(self, sync: FolderSync, plans: dict[str, FolderPlan], interval: float) -> None:
        """Until the next full pass: sync each folder a watcher reports, and only that one."""
        deadline = asyncio.get_running_loop().time() + interval
        while not self.stop.is_set():
            remaining = deadline - asyncio.get_running_loop().time()
            if remaining <= 0:
                return
            waits = [asyncio.ensure_future(e.wait()) for e in (self.stop, self.lost, self.changes.event)]
            try:
                await asyncio.wait(waits, timeout=remaining, return_when=asyncio.FIRST_COMPLETED)
            finally:
                for task in waits:
                    task.cancel()
            if self.lost.is_set():
                raise ServerUnreachable("The connection to the mail server was closed.")
            changed = [plans[name] for name in sorted(self.changes.take()) if name in plans]
            for plan in changed:
                await self._folder(sync, plan)
            if changed:
                await self._report_synced()
