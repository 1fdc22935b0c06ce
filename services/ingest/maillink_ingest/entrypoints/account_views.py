"""What the accounts API answers: typed views, built from the stored documents (pure)."""
from datetime import datetime

from pydantic import BaseModel, Field

from maillink_schemas.accounts import AccountConfigured, FolderProblem, FolderSelection, StatusReason

from ..adapters.folder_state import FolderState


class FolderView(BaseModel):
    folder: str
    synced: int = Field(description="Messages of this folder delivered so far.")
    done: int = Field(description="First-sync progress: messages done of `total`.")
    total: int = Field(description="Messages the first sync covers (within the first-sync window).")
    initial_done: bool = Field(description="The first sync of this folder is complete.")
    problem: FolderProblem | None = Field(None, description="What keeps this folder from syncing, in words.")


class AccountView(BaseModel):
    account_id: str
    email: str
    user_id: str
    enabled: bool = Field(description="false: paused by its owner.")
    version: int
    folder_selection: FolderSelection
    state: str = Field(description="pending, connecting, initial_sync, synced, needs_reauth, error or paused.")
    reason: StatusReason | None = Field(None, description="The kind of the last error.")
    error: str | None = Field(None, description="The last error, worded for a person.")
    retry_at: datetime | None = Field(None, description="When the sync tries again by itself.")
    messages_synced: int
    progress: float | None = Field(None, description="First-sync progress, 0 to 1 (None when nothing to do).")
    folders: list[FolderView]
    updated_at: datetime | None = None


def account_view(account: AccountConfigured, status: dict | None, folders: list[FolderState]) -> AccountView:
    status = status or {}
    problems = {p["folder"]: FolderProblem.model_validate(p) for p in status.get("folder_problems") or []}
    views = [_folder_view(f, problems.pop(f.folder, None)) for f in folders]
    views += [FolderView(folder=name, synced=0, done=0, total=0, initial_done=False, problem=p)
              for name, p in problems.items()]  # e.g. a selected folder the server does not have
    done, total = sum(v.done for v in views), sum(v.total for v in views)
    return AccountView(
        account_id=account.account_id, email=account.email, user_id=account.user_id, enabled=account.enabled,
        version=account.version, folder_selection=account.folders,
        state=status.get("state", "pending") if account.enabled else "paused",
        reason=status.get("reason"), error=status.get("error"), retry_at=status.get("retry_at"),
        messages_synced=sum(f.synced for f in folders), progress=(done / total) if total else None,
        folders=views, updated_at=status.get("updated_at"))


def _folder_view(state: FolderState, problem: FolderProblem | None) -> FolderView:
    # The folder-state fields a sync engineer may add (`progress_done`/`progress_total`) win when present.
    total = getattr(state, "progress_total", None) or state.initial_total
    done = getattr(state, "progress_done", None)
    if done is None:
        done = total if state.initial_done else min(state.synced, total)
    return FolderView(folder=state.folder, synced=state.synced, done=done, total=total,
                      initial_done=state.initial_done, problem=problem)
