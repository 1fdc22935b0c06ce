"""Folders leaving the sync against the real Dovecot, store and broker: their messages are reported
as no longer synced (one MessageExpunged per stored location), their state is forgotten, and the
remaining folders go on."""
import asyncio

import pytest

from maillink_devtools.imap_load import append
from maillink_devtools.kafka_tools import read_topic
from maillink_ingest.adapters.folder_state import FolderStateStore
from maillink_ingest.adapters.locations import LocationStore
from maillink_ingest.sync.account_sync import run_account
from maillink_ingest.sync.manager import SyncManager
from maillink_schemas.accounts import FolderSelection, SyncState
from maillink_schemas.mail import ExpungeReason, MessageExpunged
from maillink_schemas.topics import Topic
from tests.conftest import IMAP_HOST, IMAP_PORT, KAFKA
from tests.integration.test_account_sync import Reports, deps_for, imap_admin, stopped
from tests.integration.test_ingest_sync import account, env, mails, received  # noqa: F401 - fixture

pytestmark = pytest.mark.integration


async def expunged(namespace, expect) -> list[MessageExpunged]:
    return [MessageExpunged.model_validate_json(r.value)
            for r in await read_topic(KAFKA, f"{namespace}{Topic.MESSAGE_EXPUNGED}", expect=expect)]


async def test_unselecting_a_folder_reports_its_messages_as_no_longer_synced(env, mailbox, namespace):
    db, delivery, topic = env
    email, password = mailbox
    conn = imap_admin(email, password)
    conn.create("Sent")  # the test user's mailbox has INBOX only
    conn.logout()
    append(IMAP_HOST, IMAP_PORT, email, password, "INBOX", mails(2, "inbox"))
    append(IMAP_HOST, IMAP_PORT, email, password, "Sent", mails(3, "sent"))
    reports = Reports()
    deps = deps_for(db, delivery, reports, poll_interval_s=3600)
    manager = SyncManager(lambda acc, stop: run_account(acc, deps, stop))
    acc = account(email, password, folders=FolderSelection(folders=["INBOX", "Sent"]), version=1)
    try:
        await manager.apply(acc, partition=0)
        first = await received(topic, 5)
        sent = {(e.location.folder, e.location.uidvalidity, e.location.uid): e.message_key
                for e in first if e.location.folder == "Sent"}
        assert len(sent) == 3
        # The same path as PATCH /accounts/{id}: a new account version with the new selection.
        await manager.apply(acc.model_copy(update={"version": 2, "folders": FolderSelection(folders=["INBOX"])}), 0)
        gone = await expunged(namespace, 3)
        await asyncio.to_thread(append, IMAP_HOST, IMAP_PORT, email, password, "INBOX", mails(1, "after"))
        later = await received(topic, 6)  # INBOX goes on syncing (its IDLE watcher hears the new one)
    finally:
        await manager.stop_all()
    assert len(gone) == 3
    assert {(e.location.folder, e.location.uidvalidity, e.location.uid): e.message_key for e in gone} == sent
    assert {e.reason for e in gone} == {ExpungeReason.FOLDER_UNSELECTED}
    assert {e.account_id for e in gone} == {acc.account_id}
    assert later[-1].envelope.subject == "after 0" and later[-1].location.folder == "INBOX"
    assert len(later) == 6  # nothing re-delivered by the new version
    assert await LocationStore(db).whole_folder(acc.account_id, "Sent") == []
    assert await FolderStateStore(db).load(acc.account_id, "Sent") is None
    assert len(await LocationStore(db).whole_folder(acc.account_id, "INBOX")) == 3


async def test_a_folder_gone_from_the_server_reports_its_messages_once(env, mailbox, namespace):
    db, delivery, topic = env
    email, password = mailbox
    conn = imap_admin(email, password)
    conn.create("Projects")
    append(IMAP_HOST, IMAP_PORT, email, password, "Projects", mails(2, "p"))
    append(IMAP_HOST, IMAP_PORT, email, password, "INBOX", mails(1, "i"))
    reports, stop = Reports(), asyncio.Event()
    acc = account(email, password, folders=FolderSelection(all_folders=True))
    loop = asyncio.create_task(run_account(acc, deps_for(db, delivery, reports, poll_interval_s=0.3,
                                                               relist_interval_s=0.3), stop))
    try:
        await received(topic, 3)
        conn.delete("Projects")
        gone = await expunged(namespace, 2)
        # More full passes run; the folder is reported once, not on every pass.
        passes = len(reports.all)
        await reports.wait(lambda h: h.state == SyncState.SYNCED and len(reports.all) > passes + 3)
        again = await expunged(namespace, None)  # everything there is
    finally:
        await stopped(loop, stop)
        conn.logout()
    assert sorted((e.location.folder, e.location.uid) for e in gone) == [("Projects", 1), ("Projects", 2)]
    assert {e.reason for e in gone} == {ExpungeReason.FOLDER_VANISHED}
    assert len(again) == 2
