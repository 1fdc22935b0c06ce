"""Accounts admin, sync status/progress and raw-message download."""
import uuid

from fastapi import APIRouter, HTTPException, Response
from pydantic import BaseModel, Field, field_validator

from maillink_schemas.accounts import AccountConfigured, FolderSelection, ImapEndpoint, Security
from maillink_schemas.base import deterministic_id, utcnow

from ..adapters.accounts import AccountStore
from ..adapters.blobs import BlobStore
from ..adapters.crypto import CredentialsCipher
from ..adapters.folder_state import FolderStateStore
from ..imap.connection import is_loopback
from .blob_download import IfNoneMatch, blob_response


class ConnectAccount(BaseModel):
    user_id: str = Field(min_length=1)
    email: str = Field(pattern=r"^[^@\s]+@[^@\s]+$")
    password: str = Field(min_length=1, description="Password, app password or OAuth2 token. Never logged or returned.")
    imap_host: str = Field(min_length=1)
    imap_port: int = Field(993, ge=1, le=65535)
    security: Security = Security.SSL
    username: str | None = None
    folders: FolderSelection = Field(default_factory=FolderSelection)
    first_sync_days: int = Field(3, ge=1, le=730)

    @field_validator("email")
    @classmethod
    def lower(cls, v: str) -> str:
        return v.strip().lower()


def accounts_router(accounts: AccountStore, states: FolderStateStore, blobs: BlobStore, cipher: CredentialsCipher,
                    publish_account) -> APIRouter:
    router = APIRouter()

    @router.post("/accounts", status_code=202)
    async def connect(body: ConnectAccount) -> dict:
        if body.security == Security.PLAIN and not is_loopback(body.imap_host):
            raise HTTPException(422, "Plain-text IMAP is only allowed to a local test server; use security 'ssl' "
                                     "or 'starttls'.")
        account_id = deterministic_id("account", body.user_id, body.email)
        previous = await accounts.get(account_id)
        account = AccountConfigured(
            event_id=str(uuid.uuid4()), occurred_at=utcnow(), account_id=account_id, user_id=body.user_id,
            email=body.email, imap=ImapEndpoint(host=body.imap_host, port=body.imap_port, security=body.security),
            username=body.username or body.email, secret_ciphertext=cipher.encrypt(body.password),
            folders=body.folders, first_sync_days=body.first_sync_days,
            version=(previous.version + 1) if previous else 1,
        )
        await publish_account(account)
        await accounts.save(account)
        return {"account_id": account_id, "version": account.version}

    @router.get("/accounts/{account_id}")
    async def status(account_id: str) -> dict:
        account = await accounts.get(account_id)
        if account is None:
            raise HTTPException(404, f"No account {account_id}.")
        status = await accounts.status(account_id) or {}
        folders = await states.for_account(account_id)
        return {
            "account_id": account_id, "email": account.email, "user_id": account.user_id,
            "state": status.get("state", "pending"), "error": status.get("error"),
            "messages_synced": sum(f.synced for f in folders),
            "folders": [{"folder": f.folder, "synced": f.synced, "initial_done": f.initial_done,
                         "initial_total": f.initial_total, "uidvalidity": f.uidvalidity} for f in folders],
            "updated_at": status.get("updated_at"),
        }

    @router.get("/blobs/{blob_id}")
    async def blob(blob_id: str, if_none_match: IfNoneMatch = None) -> Response:
        return await blob_response(blobs, blob_id, if_none_match)

    return router
