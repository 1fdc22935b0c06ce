"""Sync failures. `str(exc)` is a first explanation; sync/diagnosis.py turns any failure (these, or a
store or broker outage) into the words the status API shows. `server_text` keeps what the server
said (its NO/BAD line), for the diagnosis and the logs only."""


class SyncError(Exception):
    retryable = True

    def __init__(self, message: str, server_text: str | None = None) -> None:
        super().__init__(message)
        self.server_text = server_text


class AuthenticationFailed(SyncError):
    # Credentials changed or were revoked: retrying with the same ones cannot help.
    retryable = False


class UnsendableCredentials(AuthenticationFailed):
    # A line break or NUL in the username or password: no IMAP command can carry it.
    pass


class CredentialsUnreadable(AuthenticationFailed):
    # None of the deployment's keys decrypts them (a key retired too early, or a corrupt record).
    pass


class ServerUnreachable(SyncError):
    pass


class TlsFailure(ServerUnreachable):
    pass


class InsecureConnection(SyncError):
    retryable = False


class FolderMissing(SyncError):
    pass


class ProtocolError(SyncError):
    pass
