"""Outbound's own projection of mail.account.v1 (ingest's collections are never read), and the
credentials: Fernet-encrypted with MAILLINK_CREDENTIALS_KEY, the key ingest encrypts them with."""
from cryptography.fernet import Fernet, InvalidToken
from pymongo.asynchronous.database import AsyncDatabase

from maillink_runtime import redact
from maillink_schemas.accounts import AccountConfigured

from .versioned import VersionedStore


class AccountStore:
    def __init__(self, db: AsyncDatabase) -> None:
        self._store = VersionedStore(db, "accounts")

    async def upsert(self, account: AccountConfigured) -> bool:
        return await self._store.put(account.account_id, account.version, account.model_dump(mode="json", by_alias=True))

    async def get(self, account_id: str) -> AccountConfigured | None:
        doc = await self._store.get(account_id)
        if doc is None:
            return None
        doc.pop("_id", None)
        return AccountConfigured.model_validate(doc)


class Credentials:
    def __init__(self, key: str) -> None:
        try:
            self._fernet = Fernet(key.encode())
        except (ValueError, TypeError) as exc:
            raise ValueError("MAILLINK_CREDENTIALS_KEY must be the Fernet key ingest uses (32 url-safe "
                             "base64-encoded bytes)") from exc

    def secret(self, account: AccountConfigured) -> str:
        try:
            value = self._fernet.decrypt(account.secret_ciphertext.encode()).decode()
        except InvalidToken as exc:
            raise ValueError("The account's stored credentials cannot be decrypted with the configured key.") from exc
        redact.register_secret(value)
        return value
