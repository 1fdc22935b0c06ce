"""Mailbox accounts (compacted topic) and their sync status."""
from datetime import datetime
from enum import StrEnum

from pydantic import Field

from .base import Contract, Event


class Security(StrEnum):
    SSL = "ssl"            # implicit TLS (IMAPS, port 993)
    STARTTLS = "starttls"
    # Plain text is accepted only towards a loopback host (local test servers).
    PLAIN = "plain"


class AuthMethod(StrEnum):
    """How the account logs in (re-exported by providers.py, whose presets list the accepted ones)."""

    PASSWORD = "password"          # IMAP LOGIN, SMTP AUTH PLAIN/LOGIN with the account's password
    APP_PASSWORD = "app_password"  # the same commands, but the provider refuses the account password:
    #                                an app-specific password (or "authorization code") is needed
    XOAUTH2 = "xoauth2"            # OAuth 2 access token (SASL XOAUTH2); the CRM's OAuth service refreshes it


class ImapEndpoint(Contract):
    host: str
    port: int = Field(ge=1, le=65535)
    security: Security = Security.SSL


class SmtpEndpoint(Contract):
    """Where the account submits mail. Absent: the provider preset's SMTP host (providers.py)."""

    host: str
    port: int = Field(ge=1, le=65535)
    security: Security = Security.STARTTLS
    files_sent: bool | None = Field(default=None, description="true when this server itself files what it "
                                    "accepts in the Sent folder; null follows the provider preset.")


class FolderSelection(Contract):
    all_folders: bool = Field(default=False, description="Sync every folder except Trash/Spam/Drafts.")
    folders: list[str] = Field(default_factory=lambda: ["INBOX", "Sent"],
                               description="Folders to sync when all_folders is false.")


class AccountConfigured(Event):
    """The current configuration of a mailbox account. Compacted; key: account id."""

    account_id: str
    user_id: str = Field(description="CRM user who owns the mailbox.")
    company_id: str | None = Field(default=None, description="The owner's company (from the connecting token).")
    email: str = Field(description="The mailbox address.")
    imap: ImapEndpoint
    username: str
    secret_ciphertext: str = Field(description="Password or token, encrypted (Fernet) with the deployment's key.")
    folders: FolderSelection = Field(default_factory=FolderSelection)
    first_sync_days: int = Field(default=3, ge=1, le=730, description="How far back the first sync reaches.")
    enabled: bool = Field(default=True, description="false stops syncing (the account was removed or paused).")
    provider: str | None = Field(default=None, description="Provider preset id (providers.PROVIDERS), e.g. "
                                 "gmail; null: the generic preset with the account's own hosts.")
    smtp: SmtpEndpoint | None = Field(default=None, description="SMTP submission endpoint; null: the preset's.")
    auth: AuthMethod | None = Field(default=None, description="How to log in; null: password (IMAP LOGIN). "
                                    "xoauth2: secret_ciphertext holds an OAuth 2 access token.")
    ca_pem: str | None = Field(default=None, description="Extra CA certificate(s), PEM, trusted for this account "
                               "only (a private server's own CA). The content, not a path, so every ingest "
                               "instance has it. Certificates are verified always; this never turns that off.")
    version: int = Field(default=1, description="Grows with each change, so a stale update is recognisable "
                         "(microseconds since the epoch when set by the API; earlier records counted 1, 2, ...).")


class SyncState(StrEnum):
    CONNECTING = "connecting"
    INITIAL_SYNC = "initial_sync"
    SYNCED = "synced"
    NEEDS_REAUTH = "needs_reauth"
    ERROR = "error"
    STOPPED = "stopped"


class StatusReason(StrEnum):
    """Why an account (or one of its folders) is not simply syncing: the machine-readable half of the words."""

    WRONG_PASSWORD = "wrong_password"
    APP_PASSWORD_REQUIRED = "app_password_required"
    TOKEN_EXPIRED = "token_expired"  # an OAuth access token was refused: the CRM's OAuth service sends a new one
    CREDENTIALS_UNREADABLE = "credentials_unreadable"
    INSECURE_CONNECTION = "insecure_connection"
    SERVER_UNREACHABLE = "server_unreachable"
    TLS_FAILURE = "tls_failure"
    FOLDER_VANISHED = "folder_vanished"
    OVER_QUOTA = "over_quota"
    BANDWIDTH_LIMIT = "bandwidth_limit"
    THROTTLED = "throttled"
    TOO_MANY_CONNECTIONS = "too_many_connections"
    STORE_UNAVAILABLE = "store_unavailable"
    BROKER_UNAVAILABLE = "broker_unavailable"
    SERVER_ERROR = "server_error"
    UNEXPECTED = "unexpected"


class FolderProblem(Contract):
    folder: str
    reason: StatusReason
    error: str = Field(description="What is wrong with this folder, in words a person understands.")


class AccountStatusChanged(Event):
    account_id: str
    state: SyncState
    error: str | None = Field(default=None, description="The last error, in words a person understands.")
    messages_synced: int = 0
    updated_at: datetime
    reason: StatusReason | None = Field(default=None, description="The kind of the last error (absent when none).")
    retry_at: datetime | None = Field(default=None, description="When the sync tries again by itself (after a "
                                      "provider's limit or an outage); absent when it is not waiting.")
    folder_problems: list[FolderProblem] = Field(default_factory=list, description="Folders that fail on their "
                                                 "own while the others sync.")
