"""From a failure to what a person reads: one pure decision, `diagnose(exc)`.

The words go to the status API and the status event; the technical detail (exception type, the
server's NO line) goes to the logs only. Each provider's wording is matched where it is handled:
- Gmail answers LOGIN with `[ALERT] Application-specific password required` (2-step verification
  on) or `[ALERT] Please log in via your web browser` / `Web login required` (its "less secure
  apps" block); Yahoo and iCloud answer a normal password with similar ALERTs.
- Gmail's IMAP download cap: `[OVERQUOTA] Account exceeded command or bandwidth limits` (also as
  [ALERT]). It lifts after hours, so the sync waits long before the next try.
- Microsoft 365 / Outlook.com: `Request is throttled. Suggested Backoff Time: N milliseconds`
  (the wait is taken as asked), and `User is authenticated but not connected` or "too many
  connections" when its concurrent-connection limit (about 20 per mailbox) is reached.
- RFC 5530 codes: [AUTHENTICATIONFAILED], [OVERQUOTA] (storage), [LIMIT], [UNAVAILABLE].
"""
import asyncio
import re
import ssl
from dataclasses import dataclass

import aioimaplib
from aiokafka.errors import KafkaConnectionError, KafkaError, KafkaTimeoutError
from pymongo.errors import ConnectionFailure

from maillink_runtime.http import CATCHING_UP
from maillink_schemas.accounts import StatusReason as R
from maillink_schemas.accounts import SyncState

from ..imap.errors import (AuthenticationFailed, CredentialsUnreadable, FolderMissing, InsecureConnection,
                           ProtocolError, TlsFailure, UnsendableCredentials)
from ..imap.oauth import TokenRejected

_SUGGESTED_MS = re.compile(r"Suggested Backoff Time:\s*(\d+)\s*milliseconds", re.I)
_APP_PASSWORD = re.compile(r"application-specific password|app password|web login required|log ?in via your web "
                           r"browser|\[WEBALERT", re.I)
_BANDWIDTH = re.compile(r"bandwidth limits|download limit|exceeded command", re.I)
_THROTTLED = re.compile(r"request is throttled|\[THROTTLED\]", re.I)
_CONNECTIONS = re.compile(r"too many (simultaneous |concurrent )?connections|maximum number of connections|"
                          r"authenticated but not connected|\[LIMIT\]", re.I)
_OVER_QUOTA = re.compile(r"\[OVERQUOTA\]|quota exceeded|mailbox is full", re.I)


@dataclass(frozen=True)
class Diagnosis:
    reason: R
    words: str
    state: SyncState = SyncState.ERROR
    retry_after_s: float | None = None  # the least wait before the next try (the provider's, or ours)
    folder_only: bool = False  # the other folders of the account can go on

    @property
    def needs_new_credentials(self) -> bool:
        return self.state == SyncState.NEEDS_REAUTH


def diagnose(exc: BaseException) -> Diagnosis:
    chain = _chain(exc)
    text = " ".join(filter(None, (getattr(e, "server_text", None) for e in chain)))
    if any(isinstance(e, ConnectionFailure) for e in chain):
        return Diagnosis(R.STORE_UNAVAILABLE, CATCHING_UP.format(what="database"))
    if any(isinstance(e, (KafkaConnectionError, KafkaTimeoutError)) or (isinstance(e, KafkaError) and e.retriable)
           for e in chain):
        return Diagnosis(R.BROKER_UNAVAILABLE, CATCHING_UP.format(what="message broker"))
    if provider := _provider_limit(text):
        return provider
    first = chain[0]
    if isinstance(first, CredentialsUnreadable):
        return _reauth(R.CREDENTIALS_UNREADABLE, "The stored password can no longer be read by maillink. "
                                                 "Please enter it again.")
    if isinstance(first, UnsendableCredentials):
        return _reauth(R.WRONG_PASSWORD, "The username or password contains a line break or similar character "
                                         "that cannot be sent to a mail server. Please enter it again.")
    if isinstance(first, TokenRejected):  # XOAUTH2 (imap/oauth.py): only a fresh access token helps
        return _reauth(R.TOKEN_EXPIRED, str(first))
    if isinstance(first, AuthenticationFailed):
        if _APP_PASSWORD.search(text):
            return _reauth(R.APP_PASSWORD_REQUIRED, "The provider requires an app password for mail apps: create "
                                                    "one in the provider's security settings and enter it here.")
        return _reauth(R.WRONG_PASSWORD, "The mail server rejected the username or password. "
                                         "Please enter the current password.")
    if isinstance(first, InsecureConnection):
        return _reauth(R.INSECURE_CONNECTION, "maillink will not send the password unencrypted; "
                                              "use SSL/TLS for this server.")
    if isinstance(first, TlsFailure) or any(isinstance(e, ssl.SSLError) for e in chain):
        return Diagnosis(R.TLS_FAILURE, "A secure (TLS) connection to the mail server could not be made: its "
                                        "certificate is not trusted or the encryption failed. Retrying.")
    if isinstance(first, FolderMissing):
        return Diagnosis(R.FOLDER_VANISHED, f"{first} The other folders go on syncing.", folder_only=True)
    # aioimaplib's CommandTimeout is not an asyncio.TimeoutError: a server that hangs up or goes
    # silent in the middle of a FETCH ends in it (found by tests/unit/test_fuzz_imap.py).
    if any(isinstance(e, (OSError, asyncio.TimeoutError, aioimaplib.Abort, aioimaplib.CommandTimeout)) for e in chain) \
            or type(first).__name__ == "ServerUnreachable":
        return Diagnosis(R.SERVER_UNREACHABLE, "The mail server cannot be reached right now; maillink keeps "
                                               "trying and will catch up, nothing is lost.")
    if isinstance(first, ProtocolError):
        return Diagnosis(R.SERVER_ERROR, "The mail server refused a request for this folder; it will be "
                                         "retried, the other folders go on syncing.", folder_only=True)
    return Diagnosis(R.UNEXPECTED, "Something unexpected went wrong while syncing; it is retried automatically "
                                   "and the details are in maillink's logs.", folder_only=True)


def _provider_limit(text: str) -> Diagnosis | None:
    if not text:
        return None
    if _BANDWIDTH.search(text):
        return Diagnosis(R.BANDWIDTH_LIMIT, "The provider's download limit for this mailbox is used up for now; "
                                            "syncing resumes by itself where it stopped, nothing is lost.",
                         retry_after_s=30 * 60)
    if m := _SUGGESTED_MS.search(text):
        return Diagnosis(R.THROTTLED, _THROTTLED_WORDS, retry_after_s=int(m.group(1)) / 1000)
    if _THROTTLED.search(text):
        return Diagnosis(R.THROTTLED, _THROTTLED_WORDS, retry_after_s=60)
    if _CONNECTIONS.search(text):
        return Diagnosis(R.TOO_MANY_CONNECTIONS, "The mailbox has too many open connections (other mail apps "
                                                 "count too); maillink waits and tries again.", retry_after_s=60)
    if _OVER_QUOTA.search(text):
        return Diagnosis(R.OVER_QUOTA, "The mailbox is over its storage quota at the provider; syncing goes on "
                                       "where it can. Free some space to clear this.", retry_after_s=15 * 60)
    return None


_THROTTLED_WORDS = ("The provider is limiting how fast this mailbox may be read; maillink waits as asked and "
                    "resumes where it stopped, nothing is lost.")


def _reauth(reason: R, words: str) -> Diagnosis:
    return Diagnosis(reason, words, state=SyncState.NEEDS_REAUTH)


def _chain(exc: BaseException) -> list[BaseException]:
    seen: list[BaseException] = []
    while exc is not None and exc not in seen and len(seen) < 10:
        seen.append(exc)
        exc = exc.__cause__ or exc.__context__
    return seen
