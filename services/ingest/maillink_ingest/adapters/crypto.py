"""Credentials are encrypted at rest (Fernet: AES-128-CBC + HMAC-SHA256) and never logged."""
from cryptography.fernet import Fernet, InvalidToken


class CredentialsCipher:
    def __init__(self, key: str) -> None:
        try:
            self._fernet = Fernet(key.encode())
        except (ValueError, TypeError) as exc:
            raise ValueError("MAILLINK_CREDENTIALS_KEY must be a Fernet key (32 url-safe base64-encoded bytes); "
                             "make one with: python -c 'from cryptography.fernet import Fernet; "
                             "print(Fernet.generate_key().decode())'") from exc

    def encrypt(self, secret: str) -> str:
        return self._fernet.encrypt(secret.encode()).decode()

    def decrypt(self, token: str) -> str:
        try:
            return self._fernet.decrypt(token.encode()).decode()
        except InvalidToken as exc:
            raise ValueError("stored credentials cannot be decrypted with the configured key") from exc
