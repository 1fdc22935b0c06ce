"""One mailbox account's sync loop: connect, sync each folder, wait, repeat.

Transient failures (server unreachable, protocol hiccups) retry with exponential backoff. A
credentials failure moves the account to needs_reauth and ends the loop cleanly: no crash loop,
and the stored folder state lets it resume where it stopped once new credentials arrive.
"""
import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import structlog
from prometheus_client import Counter, Gauge

from maillink_runtime import redact
from maillink_schemas.accounts import AccountConfigured, SyncState
from maillink_schemas.providers import preset

from ..adapters.crypto import CredentialsCipher
from ..adapters.folder_state import FolderStateStore
from ..domain.folders import choose
from ..imap.connection import close_session, list_folders, open_session
from ..imap.errors import AuthenticationFailed, InsecureConnection, SyncError
from ..imap.idle import sleep_or_stop, wait_for_change
from .delivery import Delivery
from .folder_sync import FolderSync

ReportStatus = Callable[[AccountConfigured, SyncState, str | None, int | None], Awaitable[None]]

ACCOUNTS = Gauge("maillink_ingest_accounts", "Accounts by sync state", ["state"])
ERRORS = Counter("maillink_ingest_sync_errors_total", "Sync attempts that failed", ["kind"])


@dataclass(frozen=True)
class SyncDeps:
    states: FolderStateStore
    delivery: Delivery
    cipher: CredentialsCipher
    report: ReportStatus
    poll_interval_s: float = 15.0
    batch_size: int = 200
    ca_file: str | None = None
    max_backoff_s: float = 300.0


async def run_account(account: AccountConfigured, deps: SyncDeps, stop: asyncio.Event) -> None:
    structlog.contextvars.bind_contextvars(account_id=account.account_id)
    log = structlog.get_logger()
    backoff = 1.0
    while not stop.is_set():
        try:
            await deps.report(account, SyncState.CONNECTING, None, None)
            client = await open_session(account.imap, account.username, _secret(account, deps.cipher),
                                        ca_file=deps.ca_file, auth=account.auth, ca_pem=account.ca_pem,
                                        identify=preset(account.provider).imap_id_required)
            try:
                await _sync_until_stopped(client, account, deps, stop, log)
            finally:
                await close_session(client)
        except (AuthenticationFailed, InsecureConnection) as exc:
            ERRORS.labels(type(exc).__name__).inc()
            log.warning("sync_stopped", reason=str(exc))
            await deps.report(account, SyncState.NEEDS_REAUTH, str(exc), None)
            return
        except SyncError as exc:
            ERRORS.labels(type(exc).__name__).inc()
            log.warning("sync_failed", reason=str(exc), retry_in_s=backoff)
            await deps.report(account, SyncState.ERROR, str(exc), None)
        except (asyncio.CancelledError, GeneratorExit):
            raise
        except Exception as exc:  # noqa: BLE001 - the loop must survive anything and say what happened
            ERRORS.labels("unexpected").inc()
            log.exception("sync_crashed")
            await deps.report(account, SyncState.ERROR, f"Unexpected error while syncing ({type(exc).__name__}); "
                                                        "it will be retried automatically.", None)
        else:
            continue
        await sleep_or_stop(stop, backoff)
        backoff = min(backoff * 2, deps.max_backoff_s)


def _secret(account: AccountConfigured, cipher: CredentialsCipher) -> str:
    try:
        secret = cipher.decrypt(account.secret_ciphertext)
        redact.register_secret(secret)  # from here on, no log line of this process can show it
        return secret
    except ValueError as exc:
        # The deployment's key changed (or the record is corrupt): only new credentials can help.
        raise AuthenticationFailed("The stored credentials cannot be decrypted with this deployment's key. "
                                   "Please enter the credentials again.") from exc


async def _sync_until_stopped(client, account: AccountConfigured, deps: SyncDeps, stop: asyncio.Event, log) -> None:
    listed = await list_folders(client)
    plans, missing = choose([(f.name, f.flags) for f in listed], account.folders)
    if missing:
        log.warning("folders_missing", folders=missing)
    folder_sync = FolderSync(client, account, deps.states, deps.delivery, batch_size=deps.batch_size)
    # New mail lands in INBOX: that is the folder IDLE watches; the others are checked each pass.
    watched = next((p.name for p in plans if p.name.upper() == "INBOX"), plans[0].name if plans else "INBOX")
    initial_reported = False
    while not stop.is_set():
        for plan in plans:
            if not initial_reported:
                await deps.report(account, SyncState.INITIAL_SYNC, None, None)
                initial_reported = True
            structlog.contextvars.bind_contextvars(folder=plan.name)
            await folder_sync.run(plan)
        structlog.contextvars.unbind_contextvars("folder")
        synced = sum(s.synced for s in await deps.states.for_account(account.account_id))
        await deps.report(account, SyncState.SYNCED, None, synced)
        await wait_for_change(client, watched, stop, deps.poll_interval_s)

