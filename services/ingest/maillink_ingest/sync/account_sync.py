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
  `relist_interval_s` if set (for many idle accounts: a pass then only re-lists folders). The connected session itself is sync/session.py.
"""
import asyncio
from datetime import datetime, timedelta, timezone

import structlog

from maillink_runtime import redact
from maillink_schemas.accounts import AccountConfigured, StatusReason, SyncState

from ..adapters.crypto import CredentialsCipher
from ..imap.errors import CredentialsUnreadable
from ..imap.idle import sleep_or_stop
from .backoff import retry_delay
from .diagnosis import diagnose
from .deps import SyncDeps
from .session import AccountSession
from .status import ERRORS, Health




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
            await AccountSession(account, deps, stop, log, healthy, _secret(account, deps.cipher)).run()
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
