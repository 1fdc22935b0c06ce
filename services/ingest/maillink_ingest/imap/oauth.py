"""SASL XOAUTH2 for IMAP (Gmail, Microsoft 365 / Outlook.com), with the providers' error dialects.

Quirk (aioimaplib 2.0.3): `IMAP4.xoauth2` sends `AUTHENTICATE XOAUTH2 <initial response>` and
nothing else. When the token is refused, Gmail does not answer NO at once: it sends a
continuation carrying a base64 JSON error (`{"status":"401","schemes":"Bearer","scope":...}`)
and waits for the client's (empty) response before the tagged NO. aioimaplib only appends that
`+` line to the command's response and never answers, so the login hangs until its timeout. Here
the command answers every challenge with an empty line (what Google's XOAUTH2 document says to
do) and keeps the decoded JSON for the error message. It also works without SASL-IR: the initial
response then goes on the first, empty continuation.

Token lifecycle: the CRM's OAuth service owns refresh tokens; ingest only ever holds the access
token (AccountConfigured.secret_ciphertext with auth = xoauth2). A refused token raises
TokenRejected (an AuthenticationFailed), which puts the account in needs_reauth and publishes
AccountStatusChanged: that event is the OAuth service's cue to send a fresh token through the
accounts API, which restarts the sync from its stored state (docs/ingest-providers.md).
"""
import asyncio
import base64
import binascii
import json
import re

import aioimaplib
from maillink_runtime.imap.login import authenticated

from .errors import AuthenticationFailed, ServerUnreachable, UnsendableCredentials

_CODE = re.compile(rb"\[([A-Z-]+)")


class TokenRejected(AuthenticationFailed):
    """The provider refused the access token (expired, revoked, or without the mail scope)."""


class AuthenticationUnavailable(ServerUnreachable):
    """RFC 5530 [UNAVAILABLE]: the provider could not check the token now; retried with backoff."""


def initial_response(user: str, token: str) -> bytes:
    if re.search(r"[\x00-\x1f\x7f]", user + token):  # \x01 separates the SASL fields; CR/LF end the line
        raise UnsendableCredentials("The OAuth token or username contains control characters and cannot be "
                                    "sent. Please connect the account again.")
    return base64.b64encode(f"user={user}\x01auth=Bearer {token}\x01\x01".encode("utf-8"))


def decode_challenge(line: bytes) -> dict | None:
    """Gmail's error challenge: `+ <base64 JSON>`. None when the line carries nothing readable."""
    payload = line[1:].strip()
    if not payload:
        return None
    try:
        decoded = json.loads(base64.b64decode(payload, validate=True))
    except (binascii.Error, ValueError):
        return None
    return decoded if isinstance(decoded, dict) else None


class _XOAuth2Command(aioimaplib.Command):
    """AUTHENTICATE XOAUTH2 that answers the server's continuations (see the module docstring)."""

    def __init__(self, tag: str, sasl: bytes, inline: bool, transport, loop) -> None:
        super().__init__("AUTHENTICATE", tag, "XOAUTH2", *([sasl.decode("ascii")] if inline else []), loop=loop)
        self._sasl, self._transport, self.challenges = (None if inline else sasl), transport, []

    def append_to_resp(self, line, result: str = "Pending") -> None:
        # aioimaplib routes a continuation to the pending synchronous command as a line starting with "+".
        if result == "Pending" and isinstance(line, bytes) and line.startswith(b"+"):
            if self._sasl is not None:   # no SASL-IR: the first, empty challenge asks for the token
                self._transport.write(self._sasl + b"\r\n")
                self._sasl = None
            else:                        # an error challenge: an empty response ends the exchange with NO
                self.challenges.append(decode_challenge(line))
                self._transport.write(b"\r\n")
            return
        super().append_to_resp(line, result)


async def authenticate_xoauth2(client: aioimaplib.IMAP4, user: str, token: str) -> None:
    """Logs in with an access token; raises TokenRejected when the provider refuses it."""
    protocol = client.protocol
    sasl = initial_response(user, token)
    inline = "SASL-IR" in {c.upper() for c in protocol.capabilities}
    async with protocol.state_condition:  # what aioimaplib's @change_state does around its own commands
        command = _XOAuth2Command(protocol.new_tag(), sasl, inline, protocol.transport, protocol.loop)
        response = await asyncio.wait_for(protocol.execute(command, scrub=sasl.decode("ascii")), client.timeout)
        if response.result == "OK":
            authenticated(protocol, response)
        protocol.state_condition.notify_all()
    if response.result != "OK":
        raise TokenRejected(rejection_text(response, command.challenges),
                            b" ".join(bytes(line) for line in response.lines)[:500].decode("utf-8", "replace"))


def rejection_text(response: aioimaplib.Response, challenges: list[dict | None]) -> str:
    """The refusal in words. Gmail's JSON says 400 (bad request / wrong user) or 401 (token invalid
    or expired); Microsoft answers a bare `NO AUTHENTICATE failed.`; RFC 5530 servers send
    [AUTHENTICATIONFAILED]. Each means the same to a person: the CRM must provide a new token."""
    detail = next((c for c in challenges if c), None)
    status = f" (provider status {detail.get('status')})" if detail and detail.get("status") else ""
    last = bytes(response.lines[-1]) if response.lines else b""
    code = m.group(1).decode() if (m := _CODE.search(last)) else ""
    if code == "UNAVAILABLE":
        # RFC 5530: a server-side problem, not the token; the retry with backoff handles it.
        raise AuthenticationUnavailable("The mail provider could not check the login right now; "
                                        "it will be retried automatically.", last.decode("utf-8", "replace"))
    return (f"The mail provider refused the OAuth access token{status}: it has expired or was revoked. "
            "The account needs to be connected again (a fresh token from the CRM's OAuth service).")

