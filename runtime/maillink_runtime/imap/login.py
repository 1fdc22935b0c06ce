"""LOGIN with any username and password: quoted strings, or literals where quoting cannot carry them.

Quirk (aioimaplib 2.0.3): `IMAP4.login` sends the username unquoted and only quotes the password,
so a space, `"` or `\\` in the username breaks the command (or injects one), and a non-ASCII
password is sent as raw UTF-8 inside quotes, which RFC 3501 does not allow. It has no literals
except for APPEND. So LOGIN is built here (strings.py) and run through aioimaplib's own command
queue; synchronising literals are fed on the server's `+` continuations.
"""
import asyncio
import re

import aioimaplib

from . import UnsendableCredentials
from .strings import Literal, command_chunks, string_arg

_UNSENDABLE = re.compile(r"[\0\r\n]")
_CAPABILITY = re.compile(rb"(?:^|\[)CAPABILITY ([^\]\r\n]*)")


def login_words(username: str, secret: str) -> list[bytes | Literal]:
    # A literal could carry CR and LF, but no real account has them and no server we know accepts
    # them: refusing here turns a confusing server answer into a clear message. NUL cannot be sent.
    if _UNSENDABLE.search(username) or _UNSENDABLE.search(secret):
        raise UnsendableCredentials("The username or password contains a line break or NUL character, "
                                    "which cannot be sent to a mail server. Please enter the credentials again.")
    try:
        return [b"LOGIN", string_arg(username), string_arg(secret)]
    except UnicodeEncodeError as exc:  # a lone surrogate: not text that UTF-8 can carry
        raise UnsendableCredentials("The username or password is not valid text. "
                                    "Please enter the credentials again.") from exc


def literal_mode(capabilities: set[str]) -> bool | str:
    caps = {c.upper() for c in capabilities}
    return True if "LITERAL+" in caps else "LITERAL-" if "LITERAL-" in caps else False


class _ChunkedCommand(aioimaplib.Command):
    """A command sent in chunks: the first as the command line, each later one on a `+` continuation."""

    def __init__(self, name: str, tag: str, chunks: list[bytes], transport, loop) -> None:
        # No args: aioimaplib's CR/LF check would refuse the CRLF of inlined non-synchronising literals;
        # login_words has already refused CR, LF and NUL in the values themselves.
        super().__init__(name, tag, loop=loop)
        self._first, self._pending, self._transport = chunks[0], chunks[1:], transport

    def __repr__(self) -> str:
        # aioimaplib sends str(command) encoded as UTF-8; literal data in it is the UTF-8 of our str values.
        return f"{self.tag} {self._first.decode('utf-8')}"

    def append_to_resp(self, line, result: str = "Pending") -> None:
        # aioimaplib routes a continuation to the pending synchronous command as a line starting with "+".
        if result == "Pending" and self._pending and isinstance(line, bytes) and line.startswith(b"+"):
            self._transport.write(self._pending.pop(0) + b"\r\n")
            return
        super().append_to_resp(line, result)


async def login(client: aioimaplib.IMAP4, username: str, secret: str,
                non_sync_literals: bool | str | None = None) -> aioimaplib.Response:
    """Runs LOGIN; `non_sync_literals` None follows the server's LITERAL+ / LITERAL- capability."""
    words = login_words(username, secret)
    mode = literal_mode(client.protocol.capabilities) if non_sync_literals is None else non_sync_literals
    secret_on_wire = words[2].data if isinstance(words[2], Literal) else words[2]
    return await asyncio.wait_for(
        _execute_login(client.protocol, command_chunks(words, mode), secret_on_wire.decode("utf-8")), client.timeout)


async def _execute_login(protocol, chunks: list[bytes], scrub: str) -> aioimaplib.Response:
    async with protocol.state_condition:  # what aioimaplib's @change_state does around its own login
        command = _ChunkedCommand("LOGIN", protocol.new_tag(), chunks, protocol.transport, protocol.loop)
        response = await protocol.execute(command, scrub=scrub)  # scrub: kept out of aioimaplib's debug log
        if response.result == "OK":
            authenticated(protocol, response)
        protocol.state_condition.notify_all()
        return response


def authenticated(protocol, response: aioimaplib.Response) -> None:
    """After an OK to LOGIN or AUTHENTICATE: the protocol is in AUTH state, and capabilities sent with
    the OK (RFC 3501 §6.2.3) replace the pre-login ones. Call it holding `protocol.state_condition`."""
    protocol.state = aioimaplib.AUTH
    for line in response.lines:
        if isinstance(line, bytes) and (m := _CAPABILITY.search(line)):
            protocol.capabilities = set(m.group(1).decode("ascii", "replace").split())
