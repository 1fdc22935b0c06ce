"""Gmail: All Mail once, by label, against Gmail's dialect replayed by a scripted server over TCP."""
from datetime import datetime, timezone

import pytest

from maillink_runtime.blobs.store import open_blob_store
from maillink_schemas.accounts import AccountConfigured, FolderSelection, ImapEndpoint, Security
from maillink_schemas.base import utcnow
from maillink_schemas.mail import Direction

from maillink_ingest.adapters.folder_state import FolderState
from maillink_ingest.imap.connection import list_folders, open_session
from maillink_ingest.sync import gmail
from maillink_ingest.sync.delivery import Delivery
from maillink_ingest.sync.folder_sync import FolderSync
from tests.transcripts import gmail as g

NOW = datetime(2026, 11, 27, 7, 0, tzinfo=timezone.utc)


class States:
    """Our own FolderStateStore interface, in memory."""

    def __init__(self):
        self.saved: dict[str, FolderState] = {}

    async def load(self, account_id, folder):
        return self.saved.get(f"{account_id}\x1f{folder}")

    async def save(self, state):
        self.saved[state.key] = FolderState(**vars(state))

    async def for_account(self, account_id):
        return [s for s in self.saved.values() if s.account_id == account_id]

    async def remember(self, account_id, folder):
        pass  # the folder index (FolderStateStore.folders) is not used by a folder's own sync


async def _sync(tmp_path, selection: FolderSelection):
    published = []

    async def publish(events):
        published.extend(o.event for o in events)

    async with g.server() as srv:
        account = AccountConfigured(
            event_id="e", occurred_at=utcnow(), account_id="a-gmail", user_id="u-1", email="alice@gmail.com",
            imap=ImapEndpoint(host="127.0.0.1", port=srv.port, security=Security.PLAIN), provider="gmail",
            username="alice@gmail.com", secret_ciphertext="x", folders=selection)
        client = await open_session(account.imap, account.username, "app-password", timeout=5)
        listed = await list_folders(client)
        plans, missing = gmail.choose(client.protocol.capabilities, [(f.name, f.flags) for f in listed], selection)
        sync = FolderSync(client, account, States(), Delivery(open_blob_store(tmp_path.as_uri()), publish))
        for plan in plans:
            await sync.run(plan, now=NOW)
        await client.logout()
    return plans, missing, {e.location.uid: e for e in published}, g.sent_commands(srv)


async def test_label_selection_syncs_all_mail_once_with_labels_thread_and_identity(tmp_path):
    plans, missing, by_uid, commands = await _sync(tmp_path, FolderSelection(folders=["INBOX", "Sent", "Nope"]))
    assert [p.name for p in plans] == ["[Gmail]/All Mail"] and missing == ["Nope"]
    # One SELECT only: no INBOX, no [Gmail]/Sent Mail, so nothing is fetched twice.
    assert [c for c in commands if c.startswith(b"SELECT")] == [b'SELECT "[Gmail]/All Mail"']
    assert any(b"X-GM-MSGID X-GM-THRID X-GM-LABELS" in c for c in commands)
    assert sorted(by_uid) == [1, 2, 5]   # 3 is a draft, 4 carries only the unselected label Newsletters
    first, reply, plans_msg = by_uid[1], by_uid[2], by_uid[5]
    assert first.labels == ["\\Inbox", "Work"] and first.provider_message_id == "1517500000000000001"
    assert first.provider_thread_id == reply.provider_thread_id == "1517500000000000001"
    assert first.direction == Direction.INCOMING and reply.direction == Direction.OUTGOING
    assert plans_msg.labels == ["\\Important", "\\Inbox", "Проекты", "Q4 plans"]
    assert {e.location.folder for e in by_uid.values()} == {"[Gmail]/All Mail"}
    # Only the selected messages' bodies were fetched.
    body_fetches = [c for c in commands if b"BODY.PEEK[]" in c]
    assert body_fetches and all(b"3" not in c.split(b" ")[2] and b"4" not in c.split(b" ")[2] for c in body_fetches)


async def test_all_folders_on_gmail_means_every_label_but_drafts(tmp_path):
    plans, missing, by_uid, _ = await _sync(tmp_path, FolderSelection(all_folders=True))
    assert [p.name for p in plans] == ["[Gmail]/All Mail"] and plans[0].labels is None and missing == []
    assert sorted(by_uid) == [1, 2, 4, 5]


async def test_a_user_label_and_a_system_folder_map_to_their_labels(tmp_path):
    _, missing, by_uid, _ = await _sync(tmp_path, FolderSelection(folders=["Newsletters", "[Gmail]/Starred"]))
    assert missing == [] and sorted(by_uid) == [4]


def test_choose_without_x_gm_ext_1_keeps_folders():
    listed = [("INBOX", frozenset()), ("Sent", frozenset({"\\Sent"})), ("[Gmail]/All Mail", frozenset({"\\All"}))]
    plans, _ = gmail.choose({"IMAP4rev1"}, listed, FolderSelection())
    assert [p.name for p in plans] == ["INBOX", "Sent"] and not any(p.by_label for p in plans)


@pytest.mark.parametrize("line,labels", [
    (b'1 FETCH (X-GM-THRID 1 X-GM-MSGID 2 X-GM-LABELS () UID 7 RFC822.SIZE 10)', ()),
    (b'1 FETCH (UID 7 RFC822.SIZE 10 X-GM-LABELS (\\Inbox "My \\"x\\" label" Work) X-GM-MSGID 2 X-GM-THRID 1)',
     ("\\Inbox", 'My "x" label', "Work")),
])
def test_parse_meta_in_any_item_order(line, labels):
    uid, size, meta = gmail.parse_meta(line)
    assert (uid, size, meta.msgid, meta.thrid, meta.labels) == (7, 10, "2", "1", labels)
