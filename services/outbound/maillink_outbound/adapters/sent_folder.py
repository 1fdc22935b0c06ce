"""The account's Sent folder over IMAP (aioimaplib, with runtime's safe LOGIN and mailbox names):
find a message by Message-ID (the crash recovery asks this before anything is resent) and APPEND
the sent copy for providers that do not file sent mail themselves.

The folder is the one the server marks \\Sent (RFC 6154 special-use), else the preset's name.
One short session per call: recovery and appends are rare next to sending, and a session held
open per account would need its own keep-alive.
"""
import asyncio
import ssl
from contextlib import asynccontextmanager

import aioimaplib

from maillink_runtime.imap.login import login
from maillink_runtime.imap.mailbox_names import mailbox_arg, parse_list
from maillink_schemas.accounts import AccountConfigured, Security
from maillink_schemas.providers import ProviderPreset


class ImapUnavailable(Exception):
    """The Sent folder could not be asked; `str(exc)` is worded for a person."""


class SentFolder:
    def __init__(self, ca_file: str | None, timeout: float = 30) -> None:
        self._ca_file, self._timeout = ca_file, timeout

    @asynccontextmanager
    async def _session(self, account: AccountConfigured, secret: str):
        e = account.imap
        if e.security == Security.STARTTLS:
            # aioimaplib 2.0.3 has no STARTTLS; every provider in the catalog offers implicit TLS.
            raise ImapUnavailable(f"IMAP STARTTLS is not supported for {e.host}; use port 993 (SSL).")
        if e.security == Security.PLAIN and not (e.host.startswith("127.") or e.host == "localhost"):
            raise ImapUnavailable(f"Refusing to send the password unencrypted to {e.host}.")
        try:
            if e.security == Security.SSL:
                ctx = ssl.create_default_context(cafile=self._ca_file) if self._ca_file else ssl.create_default_context()
                client = aioimaplib.IMAP4_SSL(e.host, e.port, ssl_context=ctx, timeout=self._timeout)
            else:
                client = aioimaplib.IMAP4(e.host, e.port, timeout=self._timeout)
            await client.wait_hello_from_server()
            response = await login(client, account.username, secret)
        except (OSError, asyncio.TimeoutError, aioimaplib.Abort) as exc:
            raise ImapUnavailable(f"Cannot reach the IMAP server {e.host}:{e.port} ({type(exc).__name__}).") from None
        if response.result != "OK":
            raise ImapUnavailable("The IMAP server refused the login.")
        try:
            yield client
        finally:
            try:
                await client.logout()
            except Exception:  # noqa: BLE001 - the session is over either way
                pass

    async def _sent_name(self, client, preset: ProviderPreset) -> str:
        response = await client.list('""', '"*"')
        listed, _ = parse_list(response.lines[:-1])
        marked = [f.name for f in listed if "\\Sent" in f.flags]
        return marked[0] if marked else preset.folders.sent

    async def find(self, account: AccountConfigured, secret: str, preset: ProviderPreset,
                   message_id: str) -> tuple[bool, str]:
        """(found, folder name): is a message with this Message-ID in the Sent folder?"""
        async with self._session(account, secret) as client:
            folder = await self._sent_name(client, preset)
            selected = await client.select(mailbox_arg(folder))
            if selected.result != "OK":
                raise ImapUnavailable(f"The Sent folder {folder!r} cannot be opened.")
            # The id is ours (hex@domain): no quote or backslash can occur in it.
            found = await client.uid_search(f'HEADER Message-ID "<{message_id}>"', charset=None)
            if found.result != "OK":
                raise ImapUnavailable("The server could not search the Sent folder.")
            # Quirk (aioimaplib 2.0.3): the untagged "* SEARCH 1 2" arrives as b"1 2" (verb stripped).
            hits = [w for line in found.lines[:-1] for w in bytes(line).split() if w.isdigit()]
            return bool(hits), folder

    async def append(self, account: AccountConfigured, secret: str, preset: ProviderPreset, raw: bytes) -> str:
        async with self._session(account, secret) as client:
            folder = await self._sent_name(client, preset)
            response = await client.append(raw, mailbox=mailbox_arg(folder), flags="(\\Seen)")
            if response.result != "OK":
                raise ImapUnavailable(f"The server refused to store the copy in {folder!r}.")
            return folder
