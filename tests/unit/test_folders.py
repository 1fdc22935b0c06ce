from maillink_ingest.domain.folders import FolderPlan, choose
from maillink_schemas.accounts import FolderSelection

LISTED = [("INBOX", frozenset()), ("[Gmail]/Sent Mail", frozenset({"\\Sent"})), ("[Gmail]/Trash", frozenset({"\\Trash"})),
          ("[Gmail]/Drafts", frozenset({"\\Drafts"})), ("Projects", frozenset()), ("[Gmail]", frozenset({"\\Noselect"}))]


def test_sent_means_the_servers_sent_folder_whatever_its_name():
    plans, missing = choose(LISTED, FolderSelection(folders=["INBOX", "Sent"]))
    assert plans == [FolderPlan("INBOX", False), FolderPlan("[Gmail]/Sent Mail", True)] and missing == []


def test_all_folders_skips_trash_drafts_and_unselectable():
    plans, _ = choose(LISTED, FolderSelection(all_folders=True))
    assert [p.name for p in plans] == ["INBOX", "[Gmail]/Sent Mail", "Projects"]


def test_missing_folders_are_reported():
    plans, missing = choose(LISTED, FolderSelection(folders=["INBOX", "Gone"]))
    assert [p.name for p in plans] == ["INBOX"] and missing == ["Gone"]


def test_folders_no_longer_synced_are_retired_with_the_reason():
    from maillink_ingest.domain.folders import Retired, retired
    from maillink_schemas.mail import ExpungeReason
    plans, _ = choose(LISTED, FolderSelection(folders=["INBOX"]))
    stored = ["INBOX", "[Gmail]/Sent Mail", "Old"]  # Sent unselected; Old deleted on the server
    assert retired(stored, [p.name for p in plans], [name for name, _ in LISTED]) == [
        Retired("Old", ExpungeReason.FOLDER_VANISHED), Retired("[Gmail]/Sent Mail", ExpungeReason.FOLDER_UNSELECTED)]
    assert retired(["INBOX"], ["INBOX"], ["INBOX"]) == []  # nothing to do on an unchanged selection
    assert retired([], [], []) == []
