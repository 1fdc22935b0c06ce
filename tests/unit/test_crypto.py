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


def test_several_keys_the_first_encrypts_all_decrypt_and_rotation_moves_to_the_newest():
    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    token = CredentialsCipher(old).encrypt("hunter2")
    rotated = CredentialsCipher(f"{new}, {old}")
    assert rotated.decrypt(token) == "hunter2" and not rotated.is_current(token)
    fresh = rotated.reencrypt(token)
    assert rotated.is_current(fresh) and CredentialsCipher(new).decrypt(fresh) == "hunter2"
    assert CredentialsCipher(new).decrypt(rotated.encrypt("x")) == "x"  # the first key encrypts
    with pytest.raises(ValueError, match="cannot be decrypted"):
        CredentialsCipher(new).decrypt(token)  # the old key retired: its records are unreadable
