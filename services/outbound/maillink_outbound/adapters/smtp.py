"""SMTP submission with aiosmtplib: one connection pool per account, within the provider's limits
(connections, messages per connection, messages per minute). Implicit TLS or STARTTLS as the
preset says; certificates are always verified (a private CA can be added, never skipped).

`send` runs MAIL and RCPT while `before_data` stores the `sending` state with the fixed Message-ID,
and starts DATA only once that is recorded. A failure before DATA is always safe to retry (the
request may already be `sending`; the caller moves it back), and `SmtpFailure.after_data` says
when it is not.
"""
import asyncio
import ssl
import time
from collections import deque
from collections.abc import Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass

import aiosmtplib

from maillink_schemas.accounts import Security
from maillink_schemas.providers import AuthMethod, Endpoint, SendLimits


class SmtpFailure(Exception):
    def __init__(self, reason: str, *, permanent: bool, code: int | None = None, after_data: bool = False,
                 auth: bool = False) -> None:
        super().__init__(reason)
        self.reason, self.permanent, self.code, self.after_data, self.auth = reason, permanent, code, after_data, auth


def _loopback(host: str) -> bool:
    return host in ("localhost", "::1") or host.startswith("127.")


def tls_context(ca_file: str | None) -> ssl.SSLContext:
    ctx = ssl.create_default_context(ssl.Purpose.SERVER_AUTH)
    if ca_file:
        ctx.load_verify_locations(ca_file)
    return ctx


def _reply(exc: aiosmtplib.SMTPResponseException) -> str:
    return f"{exc.code} {exc.message}".strip()


@dataclass
class _Conn:
    smtp: aiosmtplib.SMTP
    sent: int = 0


class AccountPool:
    def __init__(self, endpoint: Endpoint, username: str, secret: str, auth: AuthMethod, limits: SendLimits,
                 ca_file: str | None, timeout: float) -> None:
        if endpoint.security == Security.PLAIN and not _loopback(endpoint.host):
            raise SmtpFailure(f"Refusing to send the password unencrypted to {endpoint.host}; use TLS.",
                              permanent=True)
        self.endpoint, self.username, self.secret, self.auth = endpoint, username, secret, auth
        self.limits, self.timeout, self._ctx = limits, timeout, tls_context(ca_file)
        self._slots = asyncio.Semaphore(limits.connections)
        self._idle: list[_Conn] = []
        self._recent: deque[float] = deque()
        self._rate = asyncio.Lock()

    async def _connect(self) -> _Conn:
        e = self.endpoint
        smtp = aiosmtplib.SMTP(hostname=e.host, port=e.port, use_tls=e.security == Security.SSL,
                               start_tls=e.security == Security.STARTTLS, tls_context=self._ctx, timeout=self.timeout)
        try:
            await smtp.connect()
            await self._login(smtp)
        except aiosmtplib.SMTPAuthenticationError as exc:
            smtp.close()
            raise SmtpFailure(f"The mail server refused the login: {_reply(exc)}", permanent=True,
                              code=exc.code, auth=True) from None
        except aiosmtplib.SMTPResponseException as exc:
            smtp.close()
            raise SmtpFailure(f"The mail server refused the connection: {_reply(exc)}",
                              permanent=exc.code >= 500, code=exc.code) from None
        except (aiosmtplib.SMTPException, OSError, asyncio.TimeoutError) as exc:
            smtp.close()
            raise SmtpFailure(f"Cannot reach the mail server {e.host}:{e.port} ({type(exc).__name__}).",
                              permanent=False) from None
        return _Conn(smtp)

    async def _login(self, smtp: aiosmtplib.SMTP) -> None:
        # Quirk (aiosmtplib 5.1): after STARTTLS the EHLO state is reset and auth_plain/auth_login do not
        # send a new EHLO themselves (auth_xoauth2 does); the server answers "503 send EHLO first".
        await smtp.ehlo()
        if not self.username:
            return  # a relay that takes mail without AUTH (the system sender may be configured so)
        if self.auth == AuthMethod.XOAUTH2:
            await smtp.auth_xoauth2(self.username, self.secret)
        # aiosmtplib lower-cases the mechanisms the server announces.
        elif "plain" in smtp.server_auth_methods or not smtp.server_auth_methods:
            await smtp.auth_plain(self.username, self.secret)
        else:
            await smtp.auth_login(self.username, self.secret)

    async def _pace(self) -> None:
        # Per-minute limit: a sliding window over the last 60 s of sends on this account.
        async with self._rate:
            while True:
                now = time.monotonic()
                while self._recent and now - self._recent[0] >= 60:
                    self._recent.popleft()
                if len(self._recent) < self.limits.messages_per_minute:
                    self._recent.append(now)
                    return
                await asyncio.sleep(60 - (now - self._recent[0]) + 0.01)

    @asynccontextmanager
    async def _connection(self):
        async with self._slots:
            conn = self._idle.pop() if self._idle else await self._connect()
            healthy = False
            try:
                yield conn
                healthy = True
            finally:
                conn.sent += 1
                if healthy and conn.smtp.is_connected and conn.sent < self.limits.messages_per_connection:
                    self._idle.append(conn)
                else:
                    await _quit(conn.smtp)

    async def send(self, mail_from: str, recipients: list[str], raw: bytes,
                   before_data: Callable[[], Awaitable[bool]]) -> str | None:
        """The server's reply to DATA, or None when `before_data` declined (someone else has the request)."""
        await self._pace()
        for attempt in (1, 2):
            try:
                async with self._connection() as conn:
                    return await _transaction(conn.smtp, mail_from, recipients, raw, before_data)
            except _StaleConnection:
                # An idle pooled connection the server had closed: nothing was sent, open a fresh one.
                if attempt == 2:
                    raise SmtpFailure("The mail server closed the connection.", permanent=False) from None
        return None

    async def close(self) -> None:
        while self._idle:
            await _quit(self._idle.pop().smtp)


class _StaleConnection(Exception):
    pass


async def _transaction(smtp, mail_from, recipients, raw, before_data) -> str | None:
    # The claim (a store write) runs while MAIL and RCPT go back and forth, so the connection is not
    # held idle for it; DATA starts only once the claim is recorded.
    claim = asyncio.ensure_future(before_data())
    try:
        await _envelope(smtp, mail_from, recipients)
    except BaseException:
        await asyncio.gather(claim, return_exceptions=True)  # its outcome is in the store either way
        raise
    try:
        if not await claim:
            await smtp.rset()
            return None
    except (aiosmtplib.SMTPServerDisconnected, OSError, asyncio.TimeoutError) as exc:
        raise SmtpFailure(f"The connection to the mail server was lost ({type(exc).__name__}).",
                          permanent=False) from None
    try:
        response = await smtp.data(raw)
    except aiosmtplib.SMTPResponseException as exc:
        # A reply came: the server refused the message, so it certainly did not take it.
        raise SmtpFailure(f"The mail server refused the message: {_reply(exc)}", permanent=exc.code >= 500,
                          code=exc.code) from None
    except (aiosmtplib.SMTPException, OSError, asyncio.TimeoutError) as exc:
        # No reply: the server may or may not have taken it. Only the Sent folder can tell.
        raise SmtpFailure(f"The connection was lost during DATA ({type(exc).__name__}).", permanent=False,
                          after_data=True) from None
    return f"{response.code} {response.message}"


async def _envelope(smtp, mail_from: str, recipients: list[str]) -> None:
    try:
        await smtp.mail(mail_from)
    except aiosmtplib.SMTPServerDisconnected:
        raise _StaleConnection() from None
    except aiosmtplib.SMTPResponseException as exc:
        raise SmtpFailure(f"The mail server refused the sender: {_reply(exc)}", permanent=exc.code >= 500,
                          code=exc.code) from None
    try:
        for rcpt in recipients:
            try:
                await smtp.rcpt(rcpt)
            except aiosmtplib.SMTPResponseException as exc:
                await smtp.rset()
                raise SmtpFailure(f"The mail server refused the recipient {rcpt}: {_reply(exc)}",
                                  permanent=exc.code >= 500, code=exc.code) from None
    except (aiosmtplib.SMTPServerDisconnected, OSError, asyncio.TimeoutError) as exc:
        raise SmtpFailure(f"The connection to the mail server was lost ({type(exc).__name__}).",
                          permanent=False) from None


async def _quit(smtp: aiosmtplib.SMTP) -> None:
    try:
        await smtp.quit()
    except Exception:  # noqa: BLE001 - closing a connection that is already gone
        smtp.close()
