from datetime import datetime, timezone

from cryptography.fernet import Fernet

from maillink_ingest.adapters.crypto import CredentialsCipher
from maillink_ingest.adapters.folder_state import INCREMENTAL, FolderState
from maillink_ingest.entrypoints.account_views import account_view
from maillink_ingest.reencrypt import reencrypted
from maillink_schemas.accounts import AccountConfigured, ImapEndpoint, StatusReason


def config(secret="x", enabled=True, version=1) -> AccountConfigured:
    return AccountConfigured(event_id="e", occurred_at=datetime.now(timezone.utc), account_id="a1", user_id="u",
                             email="a@example.com", imap=ImapEndpoint(host="imap.example.com", port=993),
                             username="a", secret_ciphertext=secret, version=version, enabled=enabled)


def test_the_view_words_progress_and_folder_problems():
    status = {"state": "synced", "error": None, "folder_problems": [
        {"folder": "Projects", "reason": "folder_vanished", "error": "The folder “Projects” is gone."}]}
    folders = [FolderState("a1", "INBOX", window_total=10, synced=4),
               FolderState("a1", "Sent", window_total=2, synced=2, state=INCREMENTAL)]
    view = account_view(config(), status, folders)
    assert (view.state, view.messages_synced, view.progress) == ("synced", 6, 0.5)
    assert [(f.folder, f.done, f.total) for f in view.folders] == [("INBOX", 4, 10), ("Sent", 2, 2), ("Projects", 0, 0)]
    assert view.folders[2].problem.reason == StatusReason.FOLDER_VANISHED


def test_a_paused_account_says_so_and_an_unseen_one_is_pending():
    assert account_view(config(enabled=False), {"state": "synced"}, []).state == "paused"
    assert account_view(config(), None, []).state == "pending"


def test_reencryption_moves_only_what_is_not_under_the_newest_key():
    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    account = config(secret=CredentialsCipher(old).encrypt("pw"), version=7)
    cipher = CredentialsCipher(f"{new},{old}")
    moved = reencrypted(account, cipher)
    assert moved is not None and moved.version > 7 and CredentialsCipher(new).decrypt(moved.secret_ciphertext) == "pw"
    assert reencrypted(moved, cipher) is None  # idempotent: a rerun has nothing to do
