"""Sync-back on Gmail (All Mail synced by label), against Gmail's dialect replayed over TCP."""
import uuid

import pytest

from maillink_schemas.accounts import AccountConfigured, ImapEndpoint, Security
from maillink_schemas.base import utcnow
from maillink_schemas.mail import MailboxLocation
from maillink_schemas.mailbox import CommandOutcome
from maillink_schemas.matcher import MailboxAction, MailboxCommand

from maillink_ingest.adapters.locations import Location
from maillink_ingest.imap.connection import open_session
from maillink_ingest.sync.commands import CommandDeps, handle
from tests.scripted_imap import ScriptedImap
from tests.transcripts import auth as t
from tests.transcripts.gmail import LIST

ALL = MailboxLocation(folder="[Gmail]/All Mail", uidvalidity=11, uid=4)


class Fakes:
    """Our own store interfaces, in memory."""

    def __init__(self, account):
        self.account, self.results = account, {}
        self.known = [Location(ALL.folder, ALL.uidvalidity, ALL.uid, "k", "<m4@x>", (), "b" * 64)]

    async def get(self, account_id):
        return self.account

    async def enabled(self, user_id):
        return True

    async def for_message(self, account_id, key):
        return list(self.known)

    async def record(self, account_id, items):
        self.known.extend(items)

    async def result(self, command_id):
        return self.results.get(command_id)

    async def done(self, result):
        self.results[result.command_id] = result


def gmail_server() -> ScriptedImap:
    select = [b"* FLAGS (\\Answered \\Flagged \\Draft \\Deleted \\Seen $NotPhishing $Phishing)",
              b"* OK [UIDVALIDITY 11] UIDs valid.", b"* 5 EXISTS", b"* 0 RECENT",
              b"* OK [UIDNEXT 6] Predicted next UID.",
              b"{tag} OK [READ-WRITE] [Gmail]/All Mail selected. (Success)"]
    return ScriptedImap(t.GMAIL_GREETING, [
        (r"CAPABILITY", t.capability(t.GMAIL_CAPS_PREAUTH)),
        (r"LOGIN ", [t.GMAIL_CAPS, b"{tag} OK alice@gmail.com authenticated (Success)"]),
        (r'LIST "" "?\*"?', LIST),
        (r'SELECT "\[Gmail\]/All Mail"', select),
        (r"UID SEARCH UID 4$", [b"* SEARCH 4", b"{tag} OK SEARCH completed (Success)"]),
        (r"UID STORE 4 -X-GM-LABELS \(\\Inbox\)", [b"* 4 FETCH (X-GM-LABELS (Work) UID 4)", b"{tag} OK Success"]),
        (r"UID STORE 4 ", [b"* 4 FETCH (FLAGS (\\Seen) UID 4)", b"{tag} OK Success"]),
        (r'UID COPY 4 "Work"', [b"{tag} OK [COPYUID 7 4 3] (Success)"]),
        (r'UID MOVE 4 "\[Gmail\]/Trash"', [b"* OK [COPYUID 9 4 12] (Success)", b"* 4 EXPUNGE",
                                           b"{tag} OK Success"]),
        (r"LOGOUT", [b"* BYE LOGOUT Requested", b"{tag} OK 73 good day (Success)"]),
    ])


@pytest.mark.parametrize("action,folder,sent,where", [
    (MailboxAction.ARCHIVE, None, [b"UID STORE 4 -X-GM-LABELS (\\Inbox)"], [ALL]),
    (MailboxAction.DELETE, None, [b'UID MOVE 4 "[Gmail]/Trash"'],
     [MailboxLocation(folder="[Gmail]/Trash", uidvalidity=9, uid=12)]),
    (MailboxAction.MOVE, "Work", [b'UID COPY 4 "Work"', b"UID STORE 4 -X-GM-LABELS (\\Inbox)"], [ALL]),
    (MailboxAction.MARK_READ, None, [b"UID STORE 4 +FLAGS.SILENT (\\Seen)"], [ALL]),
])
async def test_gmail_commands(action, folder, sent, where):
    async with gmail_server() as server:
        account = AccountConfigured(
            event_id="e", occurred_at=utcnow(), account_id="a-g", user_id="u-1", email="alice@gmail.com",
            imap=ImapEndpoint(host="127.0.0.1", port=server.port, security=Security.PLAIN), provider="gmail",
            username="alice@gmail.com", secret_ciphertext="x")
        fakes = Fakes(account)

        async def connect(acc):
            return await open_session(acc.imap, acc.username, "app-password", timeout=5)

        deps = CommandDeps(fakes, fakes, fakes, fakes, connect)
        result = await handle(MailboxCommand(event_id=uuid.uuid4().hex, occurred_at=utcnow(), action=action,
                                             account_id="a-g", message_key="k", folder=folder), deps)
    assert result.outcome == CommandOutcome.DONE and result.locations == where
    changes = [c for c in server.commands() if c.startswith((b"UID STORE", b"UID COPY", b"UID MOVE"))]
    assert changes == sent
