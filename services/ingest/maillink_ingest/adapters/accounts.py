"""ingest's copy of account configuration (credentials encrypted) and each account's sync status,
including the one fact that must survive a rebalance: "these credentials were refused"."""
import asyncio
import hashlib
from datetime import datetime, timezone

from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from maillink_schemas.accounts import AccountConfigured, SyncState

from .batched_writes import BatchedWrites


class AccountStore:
    def __init__(self, db: AsyncDatabase) -> None:
        self._accounts = db["accounts"]
        self._status = db["account_status"]
        # Status writes of many accounts share bulk commands (1,000 accounts starting at once).
        self._status_writes = BatchedWrites(self._status)

    async def save(self, account: AccountConfigured) -> bool:
        """Stores `account` unless a newer version is stored; True when it was stored.

        Only ingest's account consumer calls this: the partition that carries an account has one
        consumer, which applies its records in order, so there is one writer per account. (The API
        used to save too, and lost the race with the consumer: E11000 and HTTP 500. FerretDB v1 on
        SQLite does not even make a filtered replace atomic: two concurrent writers can both match
        and the older version lands last. One writer avoids both.) The filter keeps a replayed,
        older record from overwriting a newer one; when it matches nothing, the upsert's insert
        collides with the newer document, which is the "newer one is there" case.
        """
        doc = {"_id": account.account_id, **account.model_dump(mode="json")}
        try:
            await self._accounts.replace_one({"_id": account.account_id, "version": {"$lte": account.version}},
                                             doc, upsert=True)
            return True
        except DuplicateKeyError:
            return False

    async def wait_applied(self, account_id: str, version: int, timeout_s: float, poll_s: float = 0.05) -> bool:
        """Waits until the stored account has reached `version` (read-your-writes for the API)."""
        deadline = asyncio.get_running_loop().time() + timeout_s
        while True:
            doc = await self._accounts.find_one({"_id": account_id}, {"version": 1})
            if doc is not None and doc.get("version", 0) >= version:
                return True
            if asyncio.get_running_loop().time() > deadline:
                return False
            await asyncio.sleep(poll_s)

    async def get(self, account_id: str) -> AccountConfigured | None:
        doc = await self._accounts.find_one({"_id": account_id})
        return AccountConfigured.model_validate(doc) if doc else None

    async def set_status(self, account_id: str, state: SyncState, error: str | None, synced: int | None = None,
                         **more) -> None:
        update = {"state": state.value, "error": error, "updated_at": datetime.now(timezone.utc), **more}
        if synced is not None:
            update["messages_synced"] = synced
        await self._status_writes.update(account_id, update, upsert=True)

    async def refused(self, account: AccountConfigured, reason: str, words: str) -> None:
        """Remembers that the server refused these credentials (this version, this ciphertext)."""
        fact = {"version": account.version, "ciphertext_sha256": _digest(account.secret_ciphertext),
                "reason": reason, "words": words}
        await self._status_writes.update(account.account_id, {"refused": fact}, upsert=True)

    async def refusal(self, account: AccountConfigured) -> dict | None:
        """The stored refusal that still applies to `account`, or None when these are new credentials.

        Only new credentials lift it: a higher version *and* a different ciphertext. A replay, a
        rebalance or a folder change carries the same ciphertext and must not try the refused
        password again (providers lock accounts out after a few failures). Quirk: Fernet ciphertexts
        are randomised, so re-entering the same password, or a re-encryption pass, counts as new and
        costs one login attempt, which is what a person re-entering it expects."""
        doc = await self._status.find_one({"_id": account.account_id}, {"refused": 1})
        fact = (doc or {}).get("refused")
        if not fact:
            return None
        if account.version > fact["version"] and _digest(account.secret_ciphertext) != fact["ciphertext_sha256"]:
            return None
        return fact

    async def accepted(self, account_id: str) -> None:
        await self._status_writes.update(account_id, unset=("refused",))

    async def forget(self, account_id: str) -> None:
        await self._accounts.delete_one({"_id": account_id})
        await self._status.delete_one({"_id": account_id})

    async def for_owner(self, user_id: str | None, company_id: str | None) -> list[AccountConfigured]:
        query = {"user_id": user_id} if user_id else {"company_id": company_id}
        return [AccountConfigured.model_validate(d) async for d in self._accounts.find(query).sort("email", 1)]

    async def all(self) -> list[AccountConfigured]:
        return [AccountConfigured.model_validate(d) async for d in self._accounts.find({})]

    async def wait_removed(self, account_id: str, timeout_s: float, poll_s: float = 0.05) -> bool:
        deadline = asyncio.get_running_loop().time() + timeout_s
        while await self._accounts.find_one({"_id": account_id}, {"_id": 1}) is not None:
            if asyncio.get_running_loop().time() > deadline:
                return False
            await asyncio.sleep(poll_s)
        return True

    async def status(self, account_id: str) -> dict | None:
        return await self._status.find_one({"_id": account_id})


def _digest(ciphertext: str) -> str:
    return hashlib.sha256(ciphertext.encode()).hexdigest()
