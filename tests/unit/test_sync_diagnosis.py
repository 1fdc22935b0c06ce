"""Every failure becomes a state and words for a person; the provider texts are the ones they send."""
import asyncio
import ssl

import aioimaplib
import pytest
from aiokafka.errors import KafkaConnectionError, KafkaTimeoutError, MessageSizeTooLargeError
from pymongo.errors import AutoReconnect, ServerSelectionTimeoutError

from maillink_ingest.imap.errors import (AuthenticationFailed, CredentialsUnreadable, FolderMissing, InsecureConnection,
                                         ProtocolError, ServerUnreachable, TlsFailure, UnsendableCredentials)
from maillink_ingest.sync.diagnosis import diagnose
from maillink_schemas.accounts import StatusReason as R
from maillink_schemas.accounts import SyncState


def login_refused(text: str) -> AuthenticationFailed:
    return AuthenticationFailed("The mail server rejected the username or password.", text)


def refused(text: str) -> ProtocolError:
    return ProtocolError("The server refused UID FETCH.", text)


def caused(outer: Exception, inner: Exception) -> Exception:
    try:
        try:
            raise inner
        except Exception as exc:
            raise outer from exc
    except Exception as exc:  # noqa: BLE001
        return exc


@pytest.mark.parametrize("failure, reason, state", [
    (login_refused("NO [AUTHENTICATIONFAILED] Authentication failed."), R.WRONG_PASSWORD, SyncState.NEEDS_REAUTH),
    (login_refused("NO [AUTHENTICATIONFAILED] Invalid credentials (Failure)"), R.WRONG_PASSWORD, SyncState.NEEDS_REAUTH),
    # Gmail, 2-step verification on and a normal password given:
    (login_refused("NO [ALERT] Application-specific password required: https://support.google.com/accounts/answer/185833"
                   " (Failure)"), R.APP_PASSWORD_REQUIRED, SyncState.NEEDS_REAUTH),
    # Gmail's "less secure apps" block, and Yahoo's / iCloud's wording of the same:
    (login_refused("NO [ALERT] Please log in via your web browser: https://support.google.com/mail/accounts/answer/78754"
                   " (Failure)"), R.APP_PASSWORD_REQUIRED, SyncState.NEEDS_REAUTH),
    (login_refused("NO [AUTHENTICATIONFAILED] LOGIN Web login required"), R.APP_PASSWORD_REQUIRED,
     SyncState.NEEDS_REAUTH),
    (UnsendableCredentials("line break"), R.WRONG_PASSWORD, SyncState.NEEDS_REAUTH),
    (CredentialsUnreadable("no key"), R.CREDENTIALS_UNREADABLE, SyncState.NEEDS_REAUTH),
    (InsecureConnection("plain"), R.INSECURE_CONNECTION, SyncState.NEEDS_REAUTH),
    (caused(ServerUnreachable("x"), ConnectionRefusedError(111, "Connect call failed")), R.SERVER_UNREACHABLE,
     SyncState.ERROR),
    (asyncio.TimeoutError(), R.SERVER_UNREACHABLE, SyncState.ERROR),
    (aioimaplib.Abort("connection lost"), R.SERVER_UNREACHABLE, SyncState.ERROR),
    (TlsFailure("certificate"), R.TLS_FAILURE, SyncState.ERROR),
    (caused(RuntimeError("x"), ssl.SSLError(1, "WRONG_VERSION_NUMBER")), R.TLS_FAILURE, SyncState.ERROR),
    (FolderMissing("The folder “Projects” no longer exists.", "NO Mailbox doesn't exist: Projects"),
     R.FOLDER_VANISHED, SyncState.ERROR),
    (refused("NO [OVERQUOTA] Quota exceeded (mailbox full)"), R.OVER_QUOTA, SyncState.ERROR),
    # Gmail's IMAP download cap:
    (refused("NO [OVERQUOTA] Account exceeded command or bandwidth limits. (Failure)"), R.BANDWIDTH_LIMIT,
     SyncState.ERROR),
    (login_refused("NO [ALERT] Account exceeded command or bandwidth limits. (Failure)"), R.BANDWIDTH_LIMIT,
     SyncState.ERROR),
    # Microsoft 365 / Outlook.com:
    (refused("BAD Request is throttled. Suggested Backoff Time: 2356 milliseconds"), R.THROTTLED, SyncState.ERROR),
    (login_refused("NO User is authenticated but not connected."), R.TOO_MANY_CONNECTIONS, SyncState.ERROR),
    (ServerUnreachable("x", "NO [LIMIT] Too many simultaneous connections"), R.TOO_MANY_CONNECTIONS,
     SyncState.ERROR),
    (ServerSelectionTimeoutError("127.0.0.1:27017: [Errno 111] Connect call failed"), R.STORE_UNAVAILABLE,
     SyncState.ERROR),
    (caused(RuntimeError("save failed"), AutoReconnect("connection reset")), R.STORE_UNAVAILABLE, SyncState.ERROR),
    (KafkaConnectionError("Unable to bootstrap from [('127.0.0.1', 9092)]"), R.BROKER_UNAVAILABLE, SyncState.ERROR),
    (KafkaTimeoutError(), R.BROKER_UNAVAILABLE, SyncState.ERROR),
    (refused("NO [SERVERBUG] Internal error"), R.SERVER_ERROR, SyncState.ERROR),
    (MessageSizeTooLargeError(), R.UNEXPECTED, SyncState.ERROR),
    (KeyError("uid"), R.UNEXPECTED, SyncState.ERROR),
])
def test_each_failure_has_a_state_and_words(failure, reason, state):
    found = diagnose(failure)
    assert (found.reason, found.state) == (reason, state)
    assert found.words and "Error(" not in found.words and "Errno" not in found.words and "27017" not in found.words


def test_our_own_outage_says_nothing_is_lost():
    found = diagnose(ServerSelectionTimeoutError("127.0.0.1:27017: [Errno 111] Connect call failed"))
    assert found.words == "maillink is catching up: the service's database is unavailable; nothing is lost."
    assert "broker" in diagnose(KafkaConnectionError("x")).words


def test_providers_limits_are_waited_out_as_asked():
    assert diagnose(refused("BAD Request is throttled. Suggested Backoff Time: 2356 milliseconds")).retry_after_s \
        == pytest.approx(2.356)
    assert diagnose(refused("NO [OVERQUOTA] Account exceeded command or bandwidth limits.")).retry_after_s >= 1800


def test_only_folder_problems_let_the_other_folders_go_on():
    assert diagnose(FolderMissing("x")).folder_only and diagnose(refused("NO Some error")).folder_only
    assert not diagnose(aioimaplib.Abort("lost")).folder_only
    assert not diagnose(KafkaConnectionError("x")).folder_only
    assert not diagnose(refused("BAD Request is throttled.")).folder_only
