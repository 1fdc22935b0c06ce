"""Credentials are encrypted at rest with authenticated encryption (Fernet: AES-128-CBC + HMAC-SHA256)
and never logged.

Key rotation: MAILLINK_CREDENTIALS_KEY holds one key or several, comma-separated. The first
encrypts; all decrypt (cryptography's MultiFernet). To rotate: put a new key first, restart, run
`python -m maillink_ingest.reencrypt` (republishes every account encrypted with the first key),
then drop the old key.
"""
from cryptography.fernet import Fernet, InvalidToken, MultiFernet


class CredentialsCipher:
    def __init__(self, keys: str) -> None:
        try:
            fernets = [Fernet(k.strip().encode()) for k in keys.split(",") if k.strip()]
        except (ValueError, TypeError) as exc:
            raise ValueError("MAILLINK_CREDENTIALS_KEY must be Fernet keys (32 url-safe base64-encoded bytes), "
                             "comma-separated, newest first; make one with: python -c 'from cryptography.fernet "
                             "import Fernet; print(Fernet.generate_key().decode())'") from exc
        if not fernets:
            raise ValueError("MAILLINK_CREDENTIALS_KEY is empty: it needs at least one Fernet key.")
        self._newest = fernets[0]
        self._all = MultiFernet(fernets)

    def encrypt(self, secret: str) -> str:
        return self._newest.encrypt(secret.encode()).decode()

    def decrypt(self, token: str) -> str:
        try:
            return self._all.decrypt(token.encode()).decode()
        except InvalidToken as exc:
            raise ValueError("stored credentials cannot be decrypted with the configured keys") from exc

    def is_current(self, token: str) -> bool:
        """True when `token` was encrypted with the newest key (nothing to re-encrypt)."""
        try:
            self._newest.decrypt(token.encode())
            return True
        except InvalidToken:
            return False

    def reencrypt(self, token: str) -> str:
        try:
            return self._all.rotate(token.encode()).decode()
        except InvalidToken as exc:
            raise ValueError("stored credentials cannot be decrypted with the configured keys") from exc
