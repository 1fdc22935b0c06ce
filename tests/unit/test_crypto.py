import pytest
from cryptography.fernet import Fernet

from maillink_ingest.adapters.crypto import CredentialsCipher


def test_round_trip_and_ciphertext_hides_the_secret():
    cipher = CredentialsCipher(Fernet.generate_key().decode())
    token = cipher.encrypt("hunter2")
    assert "hunter2" not in token and cipher.decrypt(token) == "hunter2"


def test_wrong_key_is_a_clear_error():
    token = CredentialsCipher(Fernet.generate_key().decode()).encrypt("x")
    with pytest.raises(ValueError, match="cannot be decrypted"):
        CredentialsCipher(Fernet.generate_key().decode()).decrypt(token)
    with pytest.raises(ValueError, match="MAILLINK_CREDENTIALS_KEY"):
        CredentialsCipher("not-a-key")
