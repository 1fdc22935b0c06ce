"""Accounts admin, sync status/progress and raw-message download.

Who may do what (the caller comes from the verified token, see runtime/auth):
- a user connects, changes, pauses, removes and reads only their own accounts (`accounts:write` /
  `accounts:read`);
- a CRM service with `accounts:admin` manages the accounts of its own company's users;
- raw MIME needs `blobs:read` (trusted services), or a link the query API signed for this viewer.
"""
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass


from fastapi import APIRouter, Depends, HTTPException

from maillink_runtime import redact
from maillink_runtime.auth import Principal, acting_user, require
from maillink_runtime.net import is_loopback
from maillink_schemas.accounts import AccountConfigured, Security
from maillink_schemas.base import deterministic_id, utcnow
from maillink_schemas.scopes import Scope

from ..adapters.accounts import AccountStore
from maillink_runtime.blobs.store import BlobStore
from maillink_runtime.blobs.download import blobs_router
from ..adapters.crypto import CredentialsCipher
from ..adapters.folder_state import FolderStateStore
from ..domain.providers import auth_for, preset_for, resolve_endpoint
from .account_requests import Accepted, ChangeAccount, ConnectAccount, ReconcileRequested, Removed
from .account_views import AccountView, account_view



@dataclass(frozen=True)
class AccountPublisher:
    publish: Callable[[AccountConfigured], Awaitable[None]]
    remove: Callable[[str], Awaitable[None]]  # a tombstone on the compacted account topic


def _owner(caller: Principal, requested_user: str | None) -> tuple[str, str | None]:
    if requested_user and caller.has(Scope.ACCOUNTS_ADMIN) and caller.company_id:
        return requested_user, caller.company_id
    user = acting_user(caller)
    if requested_user and requested_user != user:
        raise HTTPException(403, "You can only connect your own mailbox (managing other users' accounts needs "
                                 "accounts:admin).")
    return user, caller.company_id


def _may_manage(caller: Principal, account: AccountConfigured) -> bool:
    if caller.user_id and caller.user_id == account.user_id:
        return True
    return caller.has(Scope.ACCOUNTS_ADMIN) and caller.company_id is not None \
        and caller.company_id == account.company_id


def _next_version(previous: AccountConfigured | None) -> int:
    # Time-based, so concurrent updates get distinct versions without a read-modify-write race;
    # never below the stored one (older records counted 1, 2, ...).
    return max(time.time_ns() // 1000, (previous.version + 1) if previous else 1)


def accounts_router(accounts: AccountStore, states: FolderStateStore, blobs: BlobStore, cipher: CredentialsCipher,
                    publisher: AccountPublisher, link_secrets: list[bytes], apply_wait_s: float = 5.0) -> APIRouter:
    router = APIRouter()

    async def managed(account_id: str, caller: Principal) -> AccountConfigured:
        account = await accounts.get(account_id)
        if account is None:
            raise HTTPException(404, f"No account {account_id}.")
        if not _may_manage(caller, account):
            raise HTTPException(403, "This mailbox account belongs to another user.")
        return account

    async def publish(account: AccountConfigured) -> Accepted:
        # Durable once Kafka (acks=all) has it. The account consumer is the only writer of the
        # stored copy; waiting (briefly) for it makes the status readable as soon as we answer.
        await publisher.publish(account)
        applied = await accounts.wait_applied(account.account_id, account.version, timeout_s=apply_wait_s)
        return Accepted(account_id=account.account_id, version=account.version, applied=applied)

    @router.post("/accounts", status_code=202, response_model=Accepted)
    async def connect(body: ConnectAccount, caller: Principal = Depends(require(Scope.ACCOUNTS_WRITE))) -> Accepted:
        try:  # the provider preset fills what the request leaves out (domain/providers.py)
            imap = resolve_endpoint(body.provider, body.email, {"host": body.imap_host, "port": body.imap_port,
                                                                "security": body.security})
        except ValueError as exc:
            raise HTTPException(422, str(exc)) from exc
        if imap.security == Security.PLAIN and not is_loopback(imap.host):
            raise HTTPException(422, "Plain-text IMAP is only allowed to a local test server; use security 'ssl' "
                                     "or 'starttls'.")
        user_id, company_id = _owner(caller, body.user_id)
        redact.register_secret(body.password)
        account_id = deterministic_id("account", user_id, body.email)
        previous = await accounts.get(account_id)
        if previous is not None and not _may_manage(caller, previous):
            raise HTTPException(403, "This mailbox account belongs to another company.")
        return await publish(AccountConfigured(
            event_id=str(uuid.uuid4()), occurred_at=utcnow(), account_id=account_id, user_id=user_id,
            company_id=company_id, email=body.email,
            imap=imap, provider=(chosen := preset_for(body.provider, body.email)).id,
            auth=auth_for(chosen, body.auth),
            username=body.username or body.email, secret_ciphertext=cipher.encrypt(body.password),
            folders=body.folders, first_sync_days=body.first_sync_days, version=_next_version(previous)))

    @router.patch("/accounts/{account_id}", status_code=202, response_model=Accepted)
    async def change(account_id: str, body: ChangeAccount,
                     caller: Principal = Depends(require(Scope.ACCOUNTS_WRITE))) -> Accepted:
        account = await managed(account_id, caller)
        update = body.model_dump(exclude_none=True, exclude={"password"})
        if body.password is not None:
            redact.register_secret(body.password)
            update["secret_ciphertext"] = cipher.encrypt(body.password)
        return await publish(AccountConfigured.model_validate({
            **account.model_dump(), **update, "event_id": str(uuid.uuid4()), "occurred_at": utcnow(),
            "version": _next_version(account)}))

    @router.delete("/accounts/{account_id}", status_code=202, response_model=Removed)
    async def remove(account_id: str, caller: Principal = Depends(require(Scope.ACCOUNTS_WRITE))) -> Removed:
        await managed(account_id, caller)
        await publisher.remove(account_id)
        return Removed(account_id=account_id,
                       applied=await accounts.wait_removed(account_id, timeout_s=apply_wait_s))

    @router.post("/accounts/{account_id}/reconcile", status_code=202, response_model=ReconcileRequested)
    async def reconcile(account_id: str,
                        caller: Principal = Depends(require(Scope.ACCOUNTS_WRITE))) -> ReconcileRequested:
        # A mark on each folder's state, not an IMAP session of its own: the account's sync loop (on
        # whichever instance owns it) runs the audit on the folder's next pass, so it never races
        # the loop for the folder.
        await managed(account_id, caller)
        folders = sorted(s.folder for s in await states.for_account(account_id))
        for folder in folders:
            await states.request_reconcile(account_id, folder)
        return ReconcileRequested(account_id=account_id, folders=folders)

    @router.get("/accounts", response_model=list[AccountView])
    async def listing(caller: Principal = Depends(require(Scope.ACCOUNTS_READ))) -> list[AccountView]:
        if caller.has(Scope.ACCOUNTS_ADMIN) and caller.company_id and not caller.user_id:
            owned = await accounts.for_owner(None, caller.company_id)
        else:
            owned = await accounts.for_owner(acting_user(caller), None)
        return [account_view(a, await accounts.status(a.account_id), await states.for_account(a.account_id))
                for a in owned]

    @router.get("/accounts/{account_id}", response_model=AccountView)
    async def status(account_id: str, caller: Principal = Depends(require(Scope.ACCOUNTS_READ))) -> AccountView:
        account = await managed(account_id, caller)
        return account_view(account, await accounts.status(account_id), await states.for_account(account_id))

    router.include_router(blobs_router(blobs, link_secrets))

    return router
