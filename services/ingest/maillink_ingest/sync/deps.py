"""What an account's sync loop is given (SyncDeps), shared by the loop (account_sync.py) and its
connected session (session.py); its own module so neither imports the other for it."""
import asyncio
from dataclasses import dataclass
from typing import Protocol

from maillink_schemas.accounts import AccountConfigured

from ..adapters.crypto import CredentialsCipher
from ..adapters.folder_state import FolderStateStore
from ..imap.idle import RENEW_S
from .delivery import Delivery
from .status import ReportStatus


class Refusals(Protocol):
    async def refusal(self, account: AccountConfigured) -> dict | None: ...
    async def refused(self, account: AccountConfigured, reason: str, words: str) -> None: ...
    async def accepted(self, account_id: str) -> None: ...


@dataclass(frozen=True)
class SyncDeps:
    states: FolderStateStore
    delivery: Delivery
    cipher: CredentialsCipher
    report: ReportStatus
    refusals: Refusals
    poll_interval_s: float = 15.0
    batch_size: int = 1000
    fetch_group_bytes: int = 4 * 1024 * 1024
    ca_file: str | None = None
    max_backoff_s: float = 300.0
    idle_folders_max: int = 5
    idle_renew_s: float = RENEW_S
    relist_interval_s: float | None = None  # between full passes when IDLE watches every folder (None: poll's)
    reconcile_interval_s: float = 6 * 3600  # between a folder's audits (sync/reconcile.py)
    use_qresync: bool = True  # False forces the plain fallback even where the server offers QRESYNC
    # Full passes running at once in the process (None: no limit). Shared by every account's session.
    full_passes: asyncio.Semaphore | None = None
    # IMAP connections being opened at once in the process (None: no limit). Shared by sessions and watchers.
    connects: asyncio.Semaphore | None = None
