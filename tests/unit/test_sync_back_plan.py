"""What each mailbox command changes, decided without I/O (domain/sync_back.py)."""
import pytest

from maillink_schemas.mail import MailboxLocation
from maillink_schemas.matcher import MailboxAction as A

from maillink_ingest.domain.sync_back import SEEN_OFF, SEEN_ON, UNLABEL_INBOX, Step, Targets, plan, special_folder

INBOX = MailboxLocation(folder="INBOX", uidvalidity=1, uid=5)
WORK = MailboxLocation(folder="Work", uidvalidity=2, uid=9)
TRASHED = MailboxLocation(folder="Trash", uidvalidity=3, uid=1)
ALL = MailboxLocation(folder="[Gmail]/All Mail", uidvalidity=11, uid=4)
T = Targets(archive="Archive", trash="Trash")
G = Targets(archive="[Gmail]/All Mail", trash="[Gmail]/Trash", all_mail="[Gmail]/All Mail")


@pytest.mark.parametrize("action,locations,folder,expected", [
    (A.ARCHIVE, [INBOX, WORK], None, [Step(INBOX, move_to="Archive")]),
    (A.ARCHIVE, [WORK], None, []),                                    # not in INBOX: already archived
    (A.DELETE, [INBOX, WORK, TRASHED], None, [Step(INBOX, move_to="Trash"), Step(WORK, move_to="Trash")]),
    (A.MARK_READ, [INBOX, WORK], None, [Step(INBOX, store=SEEN_ON), Step(WORK, store=SEEN_ON)]),
    (A.MARK_UNREAD, [INBOX], None, [Step(INBOX, store=SEEN_OFF)]),
    (A.MOVE, [WORK, INBOX], "Projects", [Step(INBOX, move_to="Projects")]),   # the INBOX copy moves
    (A.MOVE, [WORK], "Work", []),                                     # already there
    (A.MOVE, [WORK], None, []),
])
def test_folders(action, locations, folder, expected):
    assert plan(action, locations, T, folder) == expected


@pytest.mark.parametrize("action,folder,expected", [
    (A.ARCHIVE, None, [Step(ALL, store=UNLABEL_INBOX)]),
    (A.DELETE, None, [Step(ALL, move_to="[Gmail]/Trash")]),
    (A.MOVE, "Projects", [Step(ALL, copy_to="Projects"), Step(ALL, store=UNLABEL_INBOX)]),
    (A.MARK_READ, None, [Step(ALL, store=SEEN_ON)]),
])
def test_gmail_labels(action, folder, expected):
    assert plan(action, [ALL], G, folder) == expected


def test_special_use_beats_the_preset_name():
    listed = [("INBOX", frozenset()), ("Deleted Items", frozenset({"\\Trash"}))]
    assert special_folder(listed, "\\Trash", "Trash") == "Deleted Items"
    assert special_folder(listed, "\\Archive", "Archive") == "Archive"
