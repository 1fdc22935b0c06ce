"""One connected session of an account: full passes over its folders, an IDLE watcher per folder
(up to the cap), and, between full passes, syncing exactly the folders the watchers report.

A folder's failure is diagnosed and, when it is the folder's own (vanished, a refused command, a
message that breaks parsing), reported for that folder while the others go on; anything else ends
the session, and sync/account_sync.py decides how long to wait before the next one.
"""
import asyncio
import contextlib
import functools
from collections.abc import Callable

import structlog

from maillink_schemas.accounts import AccountConfigured, FolderProblem, StatusReason, SyncState
from maillink_schemas.providers import preset

from ..domain.folders import FolderPlan, retired
from ..imap.connection import abort_session, list_folders, open_session
from ..imap.errors import ServerUnreachable
from ..imap.idle import watch_folder
from . import gmail
from .backoff import retry_delay
from .deps import SyncDeps
from .diagnosis import diagnose
from .folder_sync import FolderSync
from .retire import retire
from .status import ERRORS, Health


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


class AccountSession:
    def __init__(self, account: AccountConfigured, deps: SyncDeps, stop: asyncio.Event, log,
                 healthy: Callable[[], None], secret: str) -> None:
        self.account, self.deps, self.stop, self.log, self.healthy = account, deps, stop, log, healthy
        self.secret = secret
        self.lost = asyncio.Event()
        self.changes = _Changes()
        self.watchers: dict[str, asyncio.Task] = {}
        self.problems: dict[str, FolderProblem] = {}
        self.initial_reported = False
        # Messages delivered per folder, as of each folder's last pass: the status after a push
        # sums these instead of reading every folder state of the account again.
        self.synced: dict[str, int] = {}

    async def run(self) -> None:
        login = functools.partial(open_session, self.account.imap, self.account.username,
                                  self.secret, ca_file=self.deps.ca_file,
                                  auth=self.account.auth, ca_pem=self.account.ca_pem,  # ingest-providers
                                  identify=preset(self.account.provider).imap_id_required)

        async def connect(**kw):
            # Connections (TLS + LOGIN) are opened a few at a time process-wide: 1,000 accounts
            # assigned together otherwise open 3,000 at once and time out against each other.
            async with self.deps.connects or contextlib.nullcontext():
                return await login(**kw)

        client = await connect(on_lost=self.lost.set)
        try:
            await self.deps.refusals.accepted(self.account.account_id)
            sync = self.folder_sync(client)
            while not self.stop.is_set():
                async with self.deps.full_passes or contextlib.nullcontext():
                    plans = await self._full_pass(client, sync)
                self._watch([p.name for p in plans] if client.has_capability("IDLE") else [], connect)
                # With every folder watched, a full pass only re-lists the folders (new or vanished
                # ones): an idle account then costs sockets, not polling.
                everything_watched = all(p.name in self.watchers for p in plans)
                relist = self.deps.relist_interval_s
                interval = relist if everything_watched and relist is not None else self.deps.poll_interval_s
                await self._follow_pushes(sync, {p.name: p for p in plans}, interval)
        finally:
            for task in self.watchers.values():
                task.cancel()
            await asyncio.gather(*self.watchers.values(), return_exceptions=True)
            abort_session(client)  # no LOGOUT round trip: a stop must not wait for the server

    def folder_sync(self, client) -> FolderSync:
        return FolderSync(client, self.account, self.deps.states, self.deps.delivery,
                          batch_size=self.deps.batch_size, max_batch_bytes=self.deps.fetch_group_bytes,
                          reconcile_interval_s=self.deps.reconcile_interval_s,
                          use_qresync=self.deps.use_qresync)

    async def _full_pass(self, client, sync: FolderSync) -> list[FolderPlan]:
        listed = await list_folders(client)
        plans, missing = gmail.choose(client.protocol.capabilities, [(f.name, f.flags) for f in listed],
                                      self.account.folders)  # All Mail by label on Gmail (ingest-providers)
        self.problems = {name: FolderProblem(folder=name, reason=StatusReason.FOLDER_VANISHED,
                                             error=f"The folder “{name}” does not exist on the server (any more); "
                                                   "the other folders go on syncing.") for name in missing}
        if missing:
            self.log.warning("folders_missing", folders=missing)
        self.changes.take()  # this pass covers whatever was reported before it
        for plan in plans:
            await self._folder(sync, plan)
        planned = [p.name for p in plans]
        await self._retire(planned, [f.name for f in listed])
        self.synced = {name: count for name, count in self.synced.items() if name in planned}
        await self._report_synced()
        return plans

    async def _retire(self, planned: list[str], listed: list[str]) -> None:
        # After the synced folders' passes: a message moved out of a folder that is then unselected
        # has its new location delivered before the old one is reported gone. The stored folders
        # come from the folder index (one read); only a folder to retire costs reading every state.
        account_id = self.account.account_id
        if gone := retired(await self.deps.states.folders(account_id), planned, listed):
            states = await self.deps.states.for_account(account_id)
            await retire(account_id, gone, states, self.deps.states, self.deps.delivery)

    async def _folder(self, sync: FolderSync, plan: FolderPlan) -> None:
        if not self.initial_reported:
            await self.deps.report(self.account, Health(SyncState.INITIAL_SYNC))
            self.initial_reported = True
        with structlog.contextvars.bound_contextvars(folder=plan.name):
            try:
                self.synced[plan.name] = (await sync.run(plan)).synced
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
        synced = sum(self.synced.values())
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
