"""Opening an authenticated IMAP session with aioimaplib, and the few commands sync needs."""
import asyncio
import re
import ssl
from collections.abc import Callable
from dataclasses import dataclass

import aioimaplib
import structlog

from maillink_runtime.imap import UnsendableCredentials as _Unsendable
from maillink_runtime.imap.login import login, login_words
from maillink_runtime.imap.mailbox_names import mailbox_arg, parse_list
from maillink_runtime.net import is_loopback
from maillink_schemas.accounts import AuthMethod, ImapEndpoint, Security

from .errors import (AuthenticationFailed, FolderMissing, InsecureConnection, ProtocolError, ServerUnreachable,
                     TlsFailure, UnsendableCredentials)
from .starttls import starttls
from .fast_reader import FastIMAP4, FastIMAP4_SSL  # aioimaplib with a linear, non-recursive reader
from .oauth import authenticate_xoauth2

log = structlog.get_logger()
_SELECT_CODE = re.compile(rb"\[(UIDVALIDITY|UIDNEXT|HIGHESTMODSEQ) (\d+)\]")
_EXISTS = re.compile(rb"^(\d+) EXISTS")


@dataclass(frozen=True)
class FolderInfo:
    name: str
    flags: frozenset[str]


@dataclass(frozen=True)
class Selected:
    uidvalidity: int
    uidnext: int
    exists: int
    highestmodseq: int | None


def tls_context(ca_file: str | None, ca_pem: str | None = None) -> ssl.SSLContext:
    # Certificates are always verified; a private CA (test servers, an account's own) can be added, never skipped.
    ctx = ssl.create_default_context(ssl.Purpose.SERVER_AUTH)
    if ca_file:
        ctx.load_verify_locations(ca_file)
    if ca_pem:
        ctx.load_verify_locations(cadata=ca_pem)
    return ctx


def server_text(response) -> str:
    """A response's lines as text, for diagnosis and logs (never shown to a person as such)."""
    return b" ".join(bytes(line) for line in response.lines)[:500].decode("utf-8", "replace")


async def open_session(endpoint: ImapEndpoint, username: str, secret: str, *, ca_file: str | None = None,
                       timeout: float = 30, on_lost: Callable[[], None] | None = None,
                       auth: AuthMethod | None = None, ca_pem: str | None = None,
                       identify: bool = False) -> aioimaplib.IMAP4:
    """`on_lost` is called as soon as the socket closes: aioimaplib does not wake a pending IDLE
    (or any waiting command) by itself, so whoever waits must watch for this.

    A session that fails to open closes its socket: a server that answered the greeting or LOGIN
    with garbage, or not at all, used to keep a connection open per failed try (providers count
    them against the mailbox's connection limit). Found by tests/unit/test_fuzz_imap.py."""
    opened: list[aioimaplib.IMAP4] = []
    try:
        return await _open_session(endpoint, username, secret, opened, ca_file=ca_file, timeout=timeout,
                                   on_lost=on_lost, auth=auth, ca_pem=ca_pem, identify=identify)
    except BaseException:
        for client in opened:
            abort_session(client)
        raise


async def _open_session(endpoint: ImapEndpoint, username: str, secret: str, opened: list, *, ca_file: str | None,
                        timeout: float, on_lost: Callable[[], None] | None, auth: AuthMethod | None,
                        ca_pem: str | None, identify: bool) -> aioimaplib.IMAP4:
    where = f"{endpoint.host}:{endpoint.port}"
    if endpoint.security == Security.PLAIN and not is_loopback(endpoint.host):
        raise InsecureConnection(f"Refusing to send the password unencrypted to {where}; use SSL/TLS.")
    try:
        login_words(username, secret)  # refuses what no IMAP string can carry, before connecting
    except _Unsendable as exc:
        raise UnsendableCredentials(str(exc)) from exc
    try:
        if endpoint.security == Security.SSL:
            client = FastIMAP4_SSL(endpoint.host, endpoint.port, timeout=timeout, ssl_context=tls_context(ca_file, ca_pem))
        else:
            client = FastIMAP4(endpoint.host, endpoint.port, timeout=timeout)
        opened.append(client)
        # aioimaplib's IMAP4_SSL takes no conn_lost_cb; the protocol (made in __init__, before the
        # socket connects) reads this attribute when the connection is lost, so set it for both.
        client.protocol.conn_lost_cb = _lost(on_lost)
        await _hello(client, timeout)
        if endpoint.security == Security.STARTTLS:
            response = await starttls(client, tls_context(ca_file, ca_pem), endpoint.host)
            if response.result != "OK":
                raise TlsFailure(f"The mail server at {where} refused to start TLS.", server_text(response))
    except ssl.SSLCertVerificationError as exc:
        raise TlsFailure(f"The TLS certificate of {where} could not be verified ({exc.verify_message}).") from exc
    except ssl.SSLError as exc:
        raise TlsFailure(f"The TLS connection to {where} failed ({exc.reason}).") from exc
    except (OSError, asyncio.TimeoutError, aioimaplib.Abort) as exc:
        raise ServerUnreachable(f"The mail server at {where} could not be reached ({type(exc).__name__}).") from exc
    if auth == AuthMethod.XOAUTH2:
        await authenticate_xoauth2(client, username, secret)  # a refused token: TokenRejected -> needs_reauth
        response = None
    else:
        response = await login(client, username, secret)
    if response is not None and response.result != "OK":
        await _quietly_logout(client)
        raise AuthenticationFailed(f"The mail server at {where} rejected the username or password "
                                   "(it may have changed, or an app password may be required). "
                                   "Please enter the credentials again.", server_text(response))
    if identify:
        # Quirk (NetEase 126/163/yeah.net, providers.imap_id_required): SELECT is refused with
        # "Unsafe Login" until the client has sent ID (RFC 2971).
        await client.id(name="maillink", version="1")
    return client


async def _hello(client: aioimaplib.IMAP4, timeout: float) -> None:
    """Waits for the greeting (and aioimaplib's CAPABILITY after it) at most `timeout` seconds.

    Quirk (aioimaplib 2.0.3): it answers the greeting by sending CAPABILITY with no timeout while
    holding its state lock, and asyncio.wait_for cannot cancel the wait for the greeting until that
    lock is free: a server that greets and then never answers CAPABILITY hung open_session for
    good (found by tests/unit/test_fuzz_imap.py). So wait without cancelling, then cut the
    connection and cancel the stuck tasks, which frees the lock."""
    hello = asyncio.ensure_future(client.wait_hello_from_server())
    done, _ = await asyncio.wait({hello}, timeout=timeout)
    if hello in done:
        return hello.result()
    abort_session(client)
    for task in [hello, *client.protocol.tasks]:
        task.cancel()
    raise asyncio.TimeoutError(f"no IMAP greeting and capabilities within {timeout} s")


def _lost(on_lost: Callable[[], None] | None):
    if on_lost is None:
        return None
    return lambda exc: on_lost()


def abort_session(client: aioimaplib.IMAP4) -> None:
    """Closes the socket now, without LOGOUT: for a stop that must not wait for the server."""
    transport = getattr(client.protocol, "transport", None)
    if transport is not None:
        transport.close()
    connecting = getattr(client, "_client_task", None)  # aioimaplib's connect, if still under way
    if connecting is not None and not connecting.done():
        connecting.cancel()


async def _quietly_logout(client: aioimaplib.IMAP4) -> None:
    try:
        await asyncio.wait_for(client.logout(), 5)
    except Exception:  # noqa: BLE001 - the session is being dropped anyway
        pass


close_session = _quietly_logout


async def list_folders(client: aioimaplib.IMAP4) -> list[FolderInfo]:
    response = await client.list('""', "*")
    _ok(response, "LIST")
    listed, unreadable = parse_list(response.lines[:-1])
    for raw in unreadable:
        # Not canonical modified UTF-7 (or malformed): selecting our reading of it could open another
        # folder, so it is skipped, and said so.
        log.warning("folder_name_unreadable", response=raw[:200])
    return [FolderInfo(f.name, f.flags) for f in listed]


async def select(client: aioimaplib.IMAP4, folder: str) -> Selected:
    response = await client.select(mailbox_arg(folder))
    if response.result != "OK":
        raise FolderMissing(f"The folder “{folder}” no longer exists on the server (or cannot be opened).",
                            server_text(response))
    codes, exists = {}, 0
    for line in response.lines:
        for name, value in _SELECT_CODE.findall(bytes(line)):
            codes[name.decode()] = int(value)
        if m := _EXISTS.match(bytes(line)):
            exists = int(m.group(1))
    if "UIDVALIDITY" not in codes:
        raise ProtocolError(f"The server did not report UIDVALIDITY for “{folder}”.")
    return Selected(codes["UIDVALIDITY"], codes.get("UIDNEXT", 0), exists, codes.get("HIGHESTMODSEQ"))


async def uid_search(client: aioimaplib.IMAP4, criteria: str) -> list[int]:
    # aioimaplib refuses client.uid("search"); uid_search is its way. No CHARSET: criteria are ASCII.
    response = await client.uid_search(criteria, charset=None)
    _ok(response, "UID SEARCH")
    uids = []
    # aioimaplib strips the "SEARCH" response name: the data lines are the bare UIDs.
    for line in response.lines[:-1]:
        uids.extend(int(tok) for tok in bytes(line).split() if tok.isdigit())
    return uids


def _ok(response, what: str) -> None:
    if response.result != "OK":
        raise ProtocolError(f"The server refused {what}.", server_text(response))
