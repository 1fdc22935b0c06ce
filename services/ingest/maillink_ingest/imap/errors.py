"""Sync failures, each with a message a person understands (shown by the status API)."""


class SyncError(Exception):
    """Base: `str(exc)` is the human explanation."""

    retryable = True


class AuthenticationFailed(SyncError):
    # Credentials changed or were revoked: retrying with the same ones cannot help.
    retryable = False


class UnsendableCredentials(AuthenticationFailed):
    # A line break or NUL in the username or password: no IMAP command can carry it.
    pass


class ServerUnreachable(SyncError):
    pass


class InsecureConnection(SyncError):
    retryable = False


class FolderMissing(SyncError):
    pass


class ProtocolError(SyncError):
    pass
