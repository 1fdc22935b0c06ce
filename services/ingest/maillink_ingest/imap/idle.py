"""Push: one IDLE connection (RFC 2177) per watched folder, telling the sync loop which folder changed.

A watcher opens its own session, SELECTs its folder and stays in IDLE, re-issued before the
server's 30-minute inactivity limit (RFC 2177 asks clients to re-issue at least every 29 minutes).
Right after each (re)connection it reports its folder once: whatever arrived while it was not yet
idling is then found by the check that follows, so no arrival waits for the next poll. After that
only untagged EXISTS / EXPUNGE / FETCH / VANISHED lines count as a change; Dovecot's
"* OK Still here" keep-alives and the "+ idling" continuation do not.

Quirk (aioimaplib 2.0.3): a socket closed by the server does not wake a pending IDLE, so the
watcher also waits on the connection's `connection_lost` (see connection.open_session `on_lost`)
and reconnects at once the first time, with backoff after that.
"""
import asyncio
import re
from collections.abc import Awaitable, Callable

import aioimaplib
import structlog

from .connection import abort_session, select
from .errors import AuthenticationFailed, FolderMissing, ServerUnreachable

OpenSession = Callable[..., Awaitable[aioimaplib.IMAP4]]  # (on_lost=...) -> an authenticated session
_CHANGE = re.compile(rb"^\d+ (EXISTS|EXPUNGE|FETCH)|^VANISHED", re.I)
RENEW_S = 25 * 60
log = structlog.get_logger()


def is_change(lines) -> bool:
    return any(_CHANGE.match(bytes(line)) for line in lines if isinstance(line, (bytes, bytearray)))


async def watch_folder(open_conn: OpenSession, folder: str, changed: Callable[[str], None], *,
                       renew_s: float = RENEW_S, retry_delay: Callable[[int], float],
                       gives_up: Callable[[Exception], bool] = lambda exc: False) -> None:
    """Runs until cancelled (or the folder or the login is gone, or `gives_up` says so, e.g. at a
    provider's connection limit); calls `changed(folder)` on pushes."""
    attempt = 0
    while True:
        lost = asyncio.Event()
        client = None
        try:
            client = await open_conn(on_lost=lost.set)
            await select(client, folder)
            first = True
            while True:
                await _idle_once(client, lost, renew_s, folder, changed, first)
                first, attempt = False, 0
        except (FolderMissing, AuthenticationFailed) as exc:
            # The main loop reports both in words; this folder falls back to its polling.
            log.info("idle_watcher_ended", folder=folder, reason=type(exc).__name__)
            return
        except (asyncio.CancelledError, GeneratorExit):
            raise
        except Exception as exc:  # noqa: BLE001 - a watcher must come back, whatever broke it
            changed(folder)  # something may have arrived while the connection was down
            if gives_up(exc):
                log.warning("idle_watcher_gave_up", folder=folder, error=repr(exc))
                return
            log.info("idle_watcher_reconnecting", folder=folder, error=repr(exc), attempt=attempt)
        finally:
            if client is not None:
                abort_session(client)
        await asyncio.sleep(retry_delay(attempt))
        attempt += 1


async def _idle_once(client: aioimaplib.IMAP4, lost: asyncio.Event, renew_s: float, folder: str,
                     changed: Callable[[str], None], first: bool) -> None:
    idle = await client.idle_start(timeout=renew_s)  # aioimaplib ends the push wait after `renew_s`
    if first:
        changed(folder)
    try:
        while True:
            push = asyncio.ensure_future(client.wait_server_push(timeout=renew_s + 60))
            gone = asyncio.ensure_future(lost.wait())
            try:
                done, _ = await asyncio.wait({push, gone}, return_when=asyncio.FIRST_COMPLETED)
            finally:
                for task in (push, gone):
                    task.cancel()
            if gone in done:
                raise ServerUnreachable("The IDLE connection was closed by the server.")
            lines = push.result()
            if lines == aioimaplib.STOP_WAIT_SERVER_PUSH:
                return  # time to re-issue IDLE
            if is_change(lines):
                changed(folder)
    finally:
        # Cancelled (a stop or a revocation): the socket is closed next, no DONE round trip to wait for.
        if not lost.is_set() and client.has_pending_idle() and not asyncio.current_task().cancelling():
            client.idle_done()
            # The server answers DONE with the IDLE command's tagged OK; the next command must wait for it.
            await asyncio.wait_for(idle, 10)


async def sleep_or_stop(stop: asyncio.Event, seconds: float) -> None:
    """Sleeps `seconds`, or less if `stop` is set meanwhile."""
    try:
        await asyncio.wait_for(stop.wait(), seconds)
    except asyncio.TimeoutError:
        pass
