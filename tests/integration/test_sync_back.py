"""Sync-back commands against the real Dovecot (MOVE, UIDPLUS) and the real store.

Messages are synced with the real FolderSync, so the locations the commands use are the ones
delivery recorded; the mailbox is then checked with stdlib imaplib, independently of our code.
"""
import asyncio
import imaplib
import uuid
from datetime import datetime, timezone

import pytest
from cryptography.fernet import Fernet

from maillink_devtools.imap_load import append
from maillink_devtools.mailgen import Mail
from maillink_runtime import mongo
from maillink_runtime.blobs.store import open_blob_store
from maillink_schemas.accounts import AccountConfigured, ImapEndpoint, Security
from maillink_schemas.base import utcnow
from maillink_schemas.mailbox import CommandOutcome
from maillink_schemas.matcher import MailboxAction, MailboxCommand, MailSettingsChanged

from maillink_ingest.adapters.accounts import AccountStore
from maillink_ingest.adapters.command_log import CommandLog
from maillink_ingest.adapters.crypto import CredentialsCipher
from maillink_ingest.adapters.folder_state import FolderStateStore
from maillink_ingest.adapters.locations import LocationStore
from maillink_ingest.adapters.sync_back import SyncBackSettings
from maillink_ingest.domain.folders import FolderPlan
from maillink_ingest.imap.connection import close_session, open_session
from maillink_ingest.sync.commands import CommandDeps, handle
from maillink_ingest.sync.delivery import Delivery
from maillink_ingest.sync.folder_sync import FolderSync
from tests.conftest import IMAP_HOST, IMAP_PORT, MONGODB_URL

pytestmark = pytest.mark.integration
CIPHER = CredentialsCipher(Fernet.generate_key().decode())


@pytest.fixture
async def world(namespace, tmp_path, mailbox):
    client = mongo.connect(MONGODB_URL)
    db = client[f"{namespace.strip('.')}_ingest"]
    email, password = mailbox
    account = AccountConfigured(
        event_id="e", occurred_at=utcnow(), account_id=f"acc-{uuid.uuid4().hex[:8]}", user_id=f"u-{email}",
        email=email, imap=ImapEndpoint(host=IMAP_HOST, port=IMAP_PORT, security=Security.PLAIN), username=email,
        secret_ciphertext=CIPHER.encrypt(password))
    await AccountStore(db).save(account)
    locations, published = LocationStore(db), []

    async def publish(events):
        published.extend(o.event for o in events)

    async def connect(acc):
        return await open_session(acc.imap, acc.username, CIPHER.decrypt(acc.secret_ciphertext))

    async def sync(folder="INBOX"):
        session = await connect(account)
        try:
            await FolderSync(session, account, FolderStateStore(db), Delivery(open_blob_store(tmp_path.as_uri()),
                             publish, locations=locations)).run(FolderPlan(folder, False))
        finally:
            await close_session(session)

    async def sync_back(on: bool):
        await SyncBackSettings(db).apply(MailSettingsChanged(
            event_id=uuid.uuid4().hex, occurred_at=utcnow(), owner_id=account.user_id, sync_back=on,
            version=int(datetime.now(timezone.utc).timestamp() * 1e6)))

    deps = CommandDeps(AccountStore(db), SyncBackSettings(db), locations, CommandLog(db), connect)
    yield _World(account, email, password, deps, published, sync, sync_back, locations)
    await client.drop_database(db.name)
    await client.close()


class _World:
    def __init__(self, account, email, password, deps, published, sync, sync_back, locations):
        self.account, self.email, self.password, self.deps = account, email, password, deps
        self.published, self.sync, self.sync_back, self.locations = published, sync, sync_back, locations

    def add(self, subject: str, folder: str = "INBOX") -> None:
        raw = Mail(sender="jan@acme.cz", to=[self.email], subject=subject, body=f"body {subject}",
                   message_id=f"<{uuid.uuid4().hex}@acme.cz>").to_bytes()
        append(IMAP_HOST, IMAP_PORT, self.email, self.password, folder, [raw])

    def key(self, subject: str) -> str:
        return next(e.message_key for e in self.published if e.envelope.subject == subject)

    def command(self, action, subject, command_id=None, folder=None) -> MailboxCommand:
        return MailboxCommand(event_id=uuid.uuid4().hex, occurred_at=utcnow(), action=action,
                              account_id=self.account.account_id, message_key=self.key(subject),
                              command_id=command_id, folder=folder)

    def mailbox(self) -> dict[str, dict[str, str]]:
        """folder -> subject -> flags, read with stdlib imaplib."""
        conn = imaplib.IMAP4(IMAP_HOST, IMAP_PORT)
        conn.login(self.email, self.password)
        out = {}
        for folder in ("INBOX", "Archive", "Trash", "Projects"):
            status, count = conn.select(f'"{folder}"')
            if status != "OK":
                continue
            out[folder] = {}
            if int(count[0]) == 0:
                continue
            _, data = conn.fetch("1:*", "(FLAGS BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
            for item in data:
                if isinstance(item, tuple):
                    subject = item[1].decode().split(":", 1)[1].strip()
                    out[folder][subject] = item[0].decode()
        conn.logout()
        return out


async def test_archive_moves_from_inbox_to_archive_and_records_the_new_uid(world):
    world.add("to archive")
    world.add("stays")
    await world.sync()
    await world.sync_back(True)
    result = await handle(world.command(MailboxAction.ARCHIVE, "to archive"), world.deps)
    assert result.outcome == CommandOutcome.DONE and [loc.folder for loc in result.locations] == ["Archive"]
    box = world.mailbox()
    assert set(box["INBOX"]) == {"stays"} and set(box["Archive"]) == {"to archive"}
    # The store follows the message: the next command finds it in Archive.
    stored = await world.locations.for_message(world.account.account_id, world.key("to archive"))
    assert (result.locations[0].folder, result.locations[0].uid) in {(loc.folder, loc.uid) for loc in stored}


@pytest.mark.parametrize("use_move", [True, False], ids=["MOVE", "COPY+UID EXPUNGE"])
async def test_delete_moves_to_trash(world, use_move):
    world.add("to delete")
    world.add("other, marked deleted by the user")
    await world.sync()
    # Another message already carries \Deleted: the fallback's UID EXPUNGE must not remove it.
    conn = imaplib.IMAP4(IMAP_HOST, IMAP_PORT)
    conn.login(world.email, world.password)
    conn.select("INBOX")
    conn.store("2", "+FLAGS", "(\\Deleted)")
    conn.logout()
    await world.sync_back(True)
    deps = CommandDeps(**{**world.deps.__dict__, "use_move": use_move})
    result = await handle(world.command(MailboxAction.DELETE, "to delete"), deps)
    assert result.outcome == CommandOutcome.DONE and result.locations[0].folder == "Trash"
    box = world.mailbox()
    assert set(box["Trash"]) == {"to delete"}
    assert set(box["INBOX"]) == {"other, marked deleted by the user"}


async def test_mark_read_then_unread(world):
    world.add("flag me")
    await world.sync()
    await world.sync_back(True)
    assert (await handle(world.command(MailboxAction.MARK_READ, "flag me"), world.deps)).outcome == CommandOutcome.DONE
    assert "\\Seen" in world.mailbox()["INBOX"]["flag me"]
    unread = await handle(world.command(MailboxAction.MARK_UNREAD, "flag me"), world.deps)
    assert unread.outcome == CommandOutcome.DONE
    assert "\\Seen" not in world.mailbox()["INBOX"]["flag me"]


async def test_move_to_a_named_folder_and_to_a_missing_one(world):
    world.add("move me")
    await world.sync()
    await world.sync_back(True)
    missing = await handle(world.command(MailboxAction.MOVE, "move me", folder="Projects"), world.deps)
    assert missing.outcome == CommandOutcome.FAILED and "Projects" in missing.error
    conn = imaplib.IMAP4(IMAP_HOST, IMAP_PORT)
    conn.login(world.email, world.password)
    conn.create("Projects")
    conn.logout()
    moved = await handle(world.command(MailboxAction.MOVE, "move me", folder="Projects"), world.deps)
    assert moved.outcome == CommandOutcome.DONE and moved.locations[0].folder == "Projects"
    assert set(world.mailbox()["Projects"]) == {"move me"} and world.mailbox()["INBOX"] == {}


async def test_sync_back_off_changes_nothing(world):
    world.add("keep me")
    await world.sync()
    await world.sync_back(True)
    await world.sync_back(False)
    result = await handle(world.command(MailboxAction.DELETE, "keep me"), world.deps)
    assert result.outcome == CommandOutcome.SKIPPED
    assert set(world.mailbox()["INBOX"]) == {"keep me"} and world.mailbox()["Trash"] == {}


async def test_a_repeated_command_is_applied_once_and_answered_the_same(world):
    world.add("once")
    await world.sync()
    await world.sync_back(True)
    first = await handle(world.command(MailboxAction.ARCHIVE, "once", command_id="cmd-1"), world.deps)
    # Meanwhile the user puts it back in INBOX by hand; a redelivered command must not archive it again.
    conn = imaplib.IMAP4(IMAP_HOST, IMAP_PORT)
    conn.login(world.email, world.password)
    conn.select("Archive")
    conn.uid("MOVE", "1:*", "INBOX")
    conn.logout()
    again = await handle(world.command(MailboxAction.ARCHIVE, "once", command_id="cmd-1"), world.deps)
    assert again == first and again.event_id == first.event_id
    assert set(world.mailbox()["INBOX"]) == {"once"}


async def test_a_stale_location_is_not_acted_on(world):
    world.add("gone")
    await world.sync()
    await world.sync_back(True)
    conn = imaplib.IMAP4(IMAP_HOST, IMAP_PORT)
    conn.login(world.email, world.password)
    conn.select("INBOX")
    conn.store("1", "+FLAGS", "(\\Deleted)")
    conn.expunge()
    conn.logout()
    result = await handle(world.command(MailboxAction.DELETE, "gone"), world.deps)
    assert result.outcome == CommandOutcome.NOT_FOUND and world.mailbox()["Trash"] == {}


async def test_through_kafka_settings_then_command_then_result(world, namespace):
    """The consumers (entrypoints/commands.py) on the real broker: settings first, then the command
    twice (a redelivery), one change in the mailbox and the same result event twice."""
    from maillink_devtools.kafka_tools import produce, read_topic
    from maillink_ingest.entrypoints.commands import subscribe_sync_back
    from maillink_runtime import bus
    from maillink_schemas.mailbox import MailboxCommandCompleted
    from tests.conftest import KAFKA

    world.add("via kafka")
    await world.sync()

    def topic(name):
        return f"{namespace}{name}"

    settings = MailSettingsChanged(event_id=uuid.uuid4().hex, occurred_at=utcnow(), owner_id=world.account.user_id,
                                   sync_back=True, version=1)
    await produce(KAFKA, topic("mail.settings.v1"), [(f"user:{world.account.user_id}".encode(),
                                                      settings.model_dump_json().encode())])
    command = world.command(MailboxAction.ARCHIVE, "via kafka", command_id="k-1").model_dump_json().encode()
    broker = bus.make_broker(KAFKA, "test")
    subscribe_sync_back(broker, topic, f"{namespace}ingest", world.deps)
    await broker.start()
    try:
        # The command goes in only once the setting is stored: the two topics are not ordered together.
        for _ in range(200):
            if await world.deps.settings.enabled(world.account.user_id):
                break
            await asyncio.sleep(0.1)
        await produce(KAFKA, topic("mail.mailbox.command.v1"), [(world.account.account_id.encode(), command)] * 2)
        results = [MailboxCommandCompleted.model_validate_json(r.value)
                   for r in await read_topic(KAFKA, topic("mail.mailbox.command.completed.v1"), expect=2)]
    finally:
        await broker.stop()
    assert len(results) == 2 and results[0] == results[1] and results[0].outcome == CommandOutcome.DONE
    assert set(world.mailbox()["Archive"]) == {"via kafka"}
