"""What the accounts API accepts (request bodies) and its plain answers."""
from pydantic import BaseModel, Field, field_validator

from maillink_schemas.accounts import AuthMethod, FolderSelection, Security
from maillink_schemas.headers import single_line


class ConnectAccount(BaseModel):
    user_id: str | None = Field(None, min_length=1, description="Only for a CRM service with accounts:admin: the "
                                "user (of its company) whose mailbox this is. Users connect their own mailbox.")
    email: str = Field(pattern=r"^[^@\s]+@[^@\s]+$")
    password: str = Field(min_length=1, description="Password, app password or OAuth2 token. Never logged or returned.")
    # Host, port and TLS mode default to the provider preset's (named, or detected from the address).
    provider: str | None = Field(None, description="Preset id (maillink_schemas.providers), e.g. gmail; null: "
                                 "detected from the address's domain, else the generic entry (imap_host needed).")
    auth: AuthMethod | None = Field(None, description="xoauth2: `password` is an OAuth 2 access token.")
    imap_host: str | None = Field(None, min_length=1, pattern=r"^[A-Za-z0-9.\-:\[\]]+$")
    imap_port: int | None = Field(None, ge=1, le=65535)
    security: Security | None = None
    username: str | None = Field(None, min_length=1)
    folders: FolderSelection = Field(default_factory=FolderSelection)
    first_sync_days: int = Field(3, ge=1, le=730)

    @field_validator("email")
    @classmethod
    def lower(cls, v: str) -> str:
        return v.strip().lower()

    @field_validator("password", "username")
    @classmethod
    def one_line(cls, v: str | None) -> str | None:
        # CR/LF would end the IMAP command line early (command injection); NUL ends SASL fields.
        return single_line(v) if v is not None else v


class ChangeAccount(BaseModel):
    password: str | None = Field(None, min_length=1, description="New credentials (ends needs_reauth).")
    folders: FolderSelection | None = None
    first_sync_days: int | None = Field(None, ge=1, le=730)
    enabled: bool | None = Field(None, description="false pauses the sync; true resumes it.")

    @field_validator("password")
    @classmethod
    def one_line(cls, v: str | None) -> str | None:
        return single_line(v) if v is not None else v


class Accepted(BaseModel):
    account_id: str
    version: int = Field(description="The version now configured; a later change gets a higher one.")
    applied: bool = Field(description="false: accepted durably, but the sync service has not picked it up yet "
                          "(GET /accounts/{id} may answer 404 for a moment).")


class Removed(BaseModel):
    account_id: str
    applied: bool = Field(description="true: the sync stopped and the credentials and folder state are deleted; "
                          "false: the removal is durable but still being applied.")


class ReconcileRequested(BaseModel):
    account_id: str
    folders: list[str] = Field(description="The folders marked: each runs its audit (server UIDs vs delivered, "
                               "delivered vs blobs) on its next sync pass. Empty: no folder has synced yet.")
