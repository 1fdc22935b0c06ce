"""The folder state machine against the real Dovecot (through a misbehaving proxy where a server
quirk is the point), the real store and the real broker."""
import base64
import imaplib
import json
import time
from datetime import datetime, timezone

import pytest

from maillink_devtools.imap_load import append, login
from maillink_devtools.kafka_tools import read_topic
from maillink_devtools.mailgen import Mail
from maillink_ingest.adapters.folder_state import FolderStateStore
from maillink_ingest.adapters.locations import LocationStore
from maillink_ingest.domain.folders import FolderPlan
from maillink_ingest.imap.connection import close_session, open_session
from maillink_ingest.adapters.crypto import CredentialsCipher
from maillink_ingest.sync.folder_sync import FolderSync
from maillink_schemas.accounts import ImapEndpoint, Security
from maillink_schemas.dead_letter import DeadLettered
from maillink_schemas.mail import FolderReconciled, MessageChanged, MessageExpunged, MessageReceived
from tests.conftest import IMAP_HOST, IMAP_PORT, KAFKA
from tests.integration.imap_proxy import ImapProxy
from tests.integration.test_ingest_sync import KEY, account, env, mails  # noqa: F401 - env is a fixture

pytestmark = pytest.mark.integration


async def sync_once(acc, db, delivery, folder="INBOX", port=None, **kw):
    imap = acc.imap if port is None else ImapEndpoint(host=IMAP_HOST, port=port, security=Security.PLAIN)
    client = await open_session(imap, acc.username, CredentialsCipher(KEY).decrypt(acc.secret_ciphertext))
    try:
        return await FolderSync(client, acc, FolderStateStore(db), delivery, **kw).run(FolderPlan(folder, False))
    finally:
        await close_session(client)


async def events(topic, model, expect=None, timeout=30.0):
    return [model.model_validate_json(r.value) for r in await read_topic(KAFKA, topic, expect=expect, timeout=timeout)]


def imap_do(email, password, folder, *commands):
    conn = imaplib.IMAP4(IMAP_HOST, IMAP_PORT)
    try:
        login(conn, email, password)
        conn.select(folder)
        for command in commands:
            typ, data = command(conn)
            assert typ == "OK", data
    finally:
        conn.logout()


def ns(topic):  # the test namespace's name of another topic
    return lambda received_topic: received_topic.replace("mail.message.received.v1", topic)


async def test_a_fetch_item_the_server_leaves_out_is_fetched_again(env, mailbox):
    db, delivery, topic = env
    email, password = mailbox
    append(IMAP_HOST, IMAP_PORT, email, password, "INBOX", mails(3, "m"))
    async with ImapProxy((IMAP_HOST, IMAP_PORT), drop_uids={2}, drop_times=1) as proxy:
        state = await sync_once(account(email, password), db, delivery, port=proxy.port)
    # Today's code advanced past UID 2 and never asked again: the message was lost for good.
    assert proxy.dropped == 1
    assert sorted(e.location.uid for e in await events(topic, MessageReceived, 3)) == [1, 2, 3]
    assert state.failed == {} and state.delivered == [[1, 3]]


async def test_a_message_never_sent_is_recorded_dead_lettered_and_reconciled_later(env, mailbox):
    db, delivery, topic = env
    email, password = mailbox
    append(IMAP_HOST, IMAP_PORT, email, password, "INBOX", mails(3, "m"))
    acc = account(email, password)
    async with ImapProxy((IMAP_HOST, IMAP_PORT), drop_uids={2}) as proxy:
        state = await sync_once(acc, db, delivery, port=proxy.port)
    assert sorted(e.location.uid for e in await events(topic, MessageReceived, 2)) == [1, 3]
    assert list(state.failed) == ["2"] and "UID 2" in state.last_problem and state.state == "incremental"
    (dead,) = await events(topic + ".dlq", DeadLettered, 1)
    payload = json.loads(base64.b64decode(dead.payload))
    assert (payload["folder"], payload["uid"], dead.source_topic) == ("INBOX", 2, topic)
    # The server behaves again; reconciliation on demand retries what failed.
    await FolderStateStore(db).request_reconcile(acc.account_id)
    state = await sync_once(acc, db, delivery)
    assert sorted(e.location.uid for e in await events(topic, MessageReceived, 3)) == [1, 2, 3]
    assert state.failed == {} and state.reconcile_gaps == 1 and not state.reconcile_requested
    (audit,) = await events(ns("mail.folder.reconciled.v1")(topic), FolderReconciled, 1)
    assert (audit.missing, audit.repaired, audit.failed) == (1, 1, 0)


async def test_a_fetch_answered_no_for_one_uid_does_not_stall_the_folder(env, mailbox):
    db, delivery, topic = env
    email, password = mailbox
    append(IMAP_HOST, IMAP_PORT, email, password, "INBOX", mails(5, "m"))
    acc = account(email, password)
    async with ImapProxy((IMAP_HOST, IMAP_PORT), refuse_uids={3}) as proxy:
        state = await sync_once(acc, db, delivery, port=proxy.port)
        # Today every pass failed on the NO, and nothing of the folder arrived.
        again = await sync_once(acc, db, delivery, port=proxy.port)
    assert sorted(e.location.uid for e in await events(topic, MessageReceived, 4)) == [1, 2, 4, 5]
    assert list(state.failed) == ["3"] and "could not be FETCHed" in state.failed["3"]
    assert again.state == "incremental" and proxy.refused >= 2
    assert len(await events(topic + ".dlq", DeadLettered, 1)) == 1
    await FolderStateStore(db).request_reconcile(acc.account_id)
    state = await sync_once(acc, db, delivery)
    assert sorted(e.location.uid for e in await events(topic, MessageReceived, 5)) == [1, 2, 3, 4, 5]
    assert state.failed == {}


async def test_oversize_headers_and_a_huge_attachment_still_arrive(env, mailbox):
    db, delivery, topic = env
    email, password = mailbox
    crowd = [f"person{i:05d}@example{i % 97}.com" for i in range(40_000)]
    # Written by hand: the stdlib's header folding (mailgen) is quadratic in the list's length.
    big_headers = ("From: jan@acme.cz\r\nTo: " + ",\r\n ".join(crowd) + "\r\nSubject: to everyone\r\n"
                   "Message-ID: <crowd@acme.cz>\r\nDate: Fri, 27 Nov 2026 08:00:00 +0000\r\n\r\nhi\r\n").encode()
    assert len(big_headers) > 850_000
    attachment = Mail(sender="jan@acme.cz", to=["x@example.com"], subject="big file", body="see attached",
                      message_id="<big@acme.cz>", attachment=b"\x00\x01" * (10_500_000)).to_bytes()
    append(IMAP_HOST, IMAP_PORT, email, password, "INBOX", [big_headers, attachment, *mails(1, "plain")])
    state = await sync_once(account(email, password), db, delivery)
    got = {e.envelope.subject: e for e in await events(topic, MessageReceived, 3)}
    assert set(got) == {"to everyone", "big file", "plain 0"} and state.failed == {}
    crowd_event = got["to everyone"]
    assert len(crowd_event.envelope.to) == 100 and crowd_event.truncated == {"to": 39_900}
    assert len(crowd_event.model_dump_json()) < 100_000
    assert got["big file"].raw.size > 21_000_000 and got["big file"].has_attachments
    raw = await delivery._blobs.get(crowd_event.raw.blob_id)
    assert raw.count(b"@example") == 40_000  # the full list stays in the raw MIME


async def test_flag_changes_and_expunges_become_events(env, mailbox, plain):
    db, delivery, topic = env
    email, password = mailbox
    append(IMAP_HOST, IMAP_PORT, email, password, "INBOX", mails(3, "m"))
    acc = account(email, password)
    hide = {"QRESYNC", "CONDSTORE"} if plain else set()
    async with ImapProxy((IMAP_HOST, IMAP_PORT), hide=hide) as proxy:
        await sync_once(acc, db, delivery, port=proxy.port)
        first = await sync_once(acc, db, delivery, port=proxy.port)  # learns HIGHESTMODSEQ, if offered
        imap_do(email, password, "INBOX", lambda c: c.uid("STORE", "1", "+FLAGS", r"(\Seen)"),
                lambda c: c.uid("STORE", "2", "+FLAGS", r"(\Flagged \Answered)"),
                lambda c: c.uid("STORE", "3", "+FLAGS", r"(\Deleted)"), lambda c: c.expunge())
        state = await sync_once(acc, db, delivery, port=proxy.port)
    assert (first.highestmodseq > 0) is (not plain)
    received = await events(topic, MessageReceived, 3)
    keys = {e.location.uid: e.message_key for e in received}
    changed = {e.location.uid: e for e in await events(ns("mail.message.changed.v1")(topic), MessageChanged, 2)}
    assert set(changed) == {1, 2}
    assert changed[1].seen and not changed[1].flagged
    assert changed[2].flagged and changed[2].answered and not changed[2].seen
    assert changed[1].message_key == keys[1]
    (gone,) = await events(ns("mail.message.expunged.v1")(topic), MessageExpunged, 1)
    assert (gone.location.uid, gone.message_key) == (3, keys[3])
    assert state.delivered == [[1, 2]]


async def test_a_whole_first_pass_tracks_changes_from_its_own_select(env, mailbox, plain):
    # The first pass fetched the whole window after its SELECT, so it keeps that SELECT's HIGHESTMODSEQ
    # instead of auditing every flag at once; a change right after it is still an event on the next pass.
    db, delivery, topic = env
    email, password = mailbox
    append(IMAP_HOST, IMAP_PORT, email, password, "INBOX", mails(2, "w"))
    acc = account(email, password)
    async with ImapProxy((IMAP_HOST, IMAP_PORT), hide={"QRESYNC", "CONDSTORE"} if plain else set()) as proxy:
        first = await sync_once(acc, db, delivery, port=proxy.port)
        audits = [c for c in proxy.commands if b"(UID FLAGS)" in c]
        imap_do(email, password, "INBOX", lambda c: c.uid("STORE", "2", "+FLAGS", r"(\Flagged)"),
                lambda c: c.uid("STORE", "1", "+FLAGS", r"(\Deleted)"), lambda c: c.expunge())
        state = await sync_once(acc, db, delivery, port=proxy.port)
    assert (first.highestmodseq > 0) is (not plain) and first.state == "incremental"
    assert bool(audits) is plain  # with QRESYNC, no FLAGS audit of what the pass itself just fetched
    keys = {e.location.uid: e.message_key for e in await events(topic, MessageReceived, 2)}
    (changed,) = await events(ns("mail.message.changed.v1")(topic), MessageChanged, 1)
    assert (changed.location.uid, changed.message_key, changed.flagged) == (2, keys[2], True)
    (gone,) = await events(ns("mail.message.expunged.v1")(topic), MessageExpunged, 1)
    assert (gone.location.uid, gone.message_key) == (1, keys[1])
    assert state.delivered == [[2, 2]]


@pytest.fixture(params=[False, True], ids=["qresync", "plain-fallback"])
def plain(request):
    return request.param


async def test_a_move_between_synced_folders_is_one_message_whose_location_changed(env, mailbox):
    db, delivery, topic = env
    email, password = mailbox
    append(IMAP_HOST, IMAP_PORT, email, password, "INBOX", mails(2, "m"))
    append(IMAP_HOST, IMAP_PORT, email, password, "Archive", mails(1, "a"))
    acc = account(email, password)
    await sync_once(acc, db, delivery, "INBOX")
    await sync_once(acc, db, delivery, "Archive")
    imap_do(email, password, "INBOX", lambda c: c.uid("MOVE", "1", "Archive"))
    await sync_once(acc, db, delivery, "INBOX")  # sees UID 1 gone; Archive has not looked since
    expunged_topic = ns("mail.message.expunged.v1")(topic)
    assert await events(expunged_topic, MessageExpunged, timeout=4) == []
    await sync_once(acc, db, delivery, "Archive")  # the new location arrives first
    await sync_once(acc, db, delivery, "INBOX")  # now the old one goes
    received = await events(topic, MessageReceived, 4)
    (gone,) = await events(expunged_topic, MessageExpunged, 1)
    moved = [e for e in received if e.message_key == gone.message_key]
    assert [(e.location.folder, e.location.uid) for e in moved] == [("INBOX", 1), ("Archive", 2)]
    assert (gone.location.folder, gone.location.uid) == ("INBOX", 1)
    assert len({e.message_key for e in received}) == 3  # never a duplicate


async def test_a_real_uidvalidity_change_remaps_the_whole_folder_without_duplicates(env, mailbox):
    db, delivery, topic = env
    email, password = mailbox
    recent = mails(2, "new")
    old = Mail(sender="jan@acme.cz", to=["x@example.com"], subject="old one", body="old",
               message_id="<old@acme.cz>").to_bytes()
    append(IMAP_HOST, IMAP_PORT, email, password, "Work", recent)
    acc = account(email, password, first_sync_days=3)
    before = await sync_once(acc, db, delivery, "Work")
    # Arrives later, but with an INTERNALDATE outside the window: only the incremental step takes it.
    append(IMAP_HOST, IMAP_PORT, email, password, "Work", [old], when=time.time() - 20 * 86400)
    await sync_once(acc, db, delivery, "Work")
    first = {e.message_key for e in await events(topic, MessageReceived, 3)}
    imap_do(email, password, "INBOX", lambda c: c.delete("Work"), lambda c: c.create("Work"))
    append(IMAP_HOST, IMAP_PORT, email, password, "Work", [old], when=time.time() - 20 * 86400)
    append(IMAP_HOST, IMAP_PORT, email, password, "Work", list(reversed(recent)))
    after = await sync_once(acc, db, delivery, "Work")
    received = await events(topic, MessageReceived, 6)
    assert after.uidvalidity != before.uidvalidity and after.state == "incremental"
    remapped = [e for e in received[3:]]
    assert {e.message_key for e in remapped} == first and len(received) == 6  # the old one too, no extra
    assert all(e.location.uidvalidity == after.uidvalidity for e in remapped)
    gone = await events(ns("mail.message.expunged.v1")(topic), MessageExpunged, 3)
    assert {e.location.uidvalidity for e in gone} == {before.uidvalidity} and len(gone) == 3


async def test_reconciliation_repairs_a_lost_record_and_a_missing_blob(env, mailbox, tmp_path):
    db, delivery, topic = env
    email, password = mailbox
    append(IMAP_HOST, IMAP_PORT, email, password, "INBOX", mails(4, "m"))
    acc = account(email, password)
    await sync_once(acc, db, delivery)
    first = {e.location.uid: e for e in await events(topic, MessageReceived, 4)}
    states = FolderStateStore(db)
    state = await states.load(acc.account_id, "INBOX")
    state.delivered = [[1, 2], [4, 4]]  # the record of UID 3's delivery is lost
    state.reconcile_requested = True
    await states.save(state)
    blob_path = next(p for p in tmp_path.rglob(first[4].raw.blob_id))
    blob_path.unlink()  # and the raw MIME of UID 4 is gone from the blob store
    state = await sync_once(acc, db, delivery)
    again = await events(topic, MessageReceived, 6)
    assert sorted(e.location.uid for e in again[4:]) == [3, 4]
    assert {e.message_key for e in again} == {e.message_key for e in first.values()}
    assert await delivery._blobs.get(first[4].raw.blob_id) is not None
    assert state.reconcile_gaps == 2 and state.delivered == [[1, 4]]
    (audit,) = await events(ns("mail.folder.reconciled.v1")(topic), FolderReconciled, 1)
    assert (audit.missing, audit.missing_blobs, audit.repaired, audit.server_messages) == (1, 1, 2, 4)


async def test_deleted_state_is_rebuilt_and_nothing_is_lost_or_duplicated_by_key(env, mailbox):
    db, delivery, topic = env
    email, password = mailbox
    append(IMAP_HOST, IMAP_PORT, email, password, "INBOX", mails(3, "m"))
    acc = account(email, password)
    await sync_once(acc, db, delivery)
    keys = {e.message_key for e in await events(topic, MessageReceived, 3)}
    await db["folder_state"].delete_many({})
    state = await sync_once(acc, db, delivery, reconcile_interval_s=0)
    assert state.reconcile_gaps == 0 and state.delivered == [[1, 3]] and state.state == "incremental"
    assert {e.message_key for e in await events(topic, MessageReceived, 6)} == keys


async def test_unparseable_mail_through_dovecot_still_arrives_with_warnings(env, mailbox):
    db, delivery, topic = env
    email, password = mailbox
    broken = (b"From: Jan <jan@acme.cz>\r\nTo: a@example.com\r\nSubject: =?x-unknown-42?Q?caf=C3=A9?=\r\n"
              b"Content-Type: multipart/mixed; boundary=\"zz\"\r\n\r\n--zz\r\nContent-Type: text/plain\r\n\r\n"
              b"please sign\r\n--zz\r\nContent-Type: application/pdf\r\nContent-Disposition: attachment; "
              b"filename=a.pdf\r\nContent-Transfer-Encoding: base64\r\n\r\n!!!not base64\r\n")
    append(IMAP_HOST, IMAP_PORT, email, password, "INBOX", [broken])
    await sync_once(account(email, password), db, delivery)
    (e,) = await events(topic, MessageReceived, 1)
    assert e.envelope.subject == "café" and e.snippet == "please sign" and e.parse_error
    assert e.envelope.date == e.internal_date and e.internal_date is not None
    assert {"no Message-ID", "no Date header; INTERNALDATE used"} <= set(e.parse_warnings)


async def test_a_state_stored_before_the_state_machine_is_migrated_and_audited(env, mailbox):
    db, delivery, topic = env
    email, password = mailbox
    append(IMAP_HOST, IMAP_PORT, email, password, "INBOX", mails(3, "m"))
    acc = account(email, password)
    synced = await sync_once(acc, db, delivery)
    key = f"{acc.account_id}\x1fINBOX"
    await db["folder_state"].replace_one({"_id": key}, {  # the shape main stored before this change
        "_id": key, "account_id": acc.account_id, "folder": "INBOX", "uidvalidity": synced.uidvalidity,
        "top_uid": 3, "initial_cursor": 1, "initial_done": True, "initial_total": 3, "synced": 3})
    state = await sync_once(acc, db, delivery)
    assert (state.state, state.delivered, state.reconcile_gaps, state.top_uid) == ("incremental", [[1, 3]], 3, 3)
    got = await events(topic, MessageReceived, 6)
    assert len(got) == 6 and len({e.message_key for e in got}) == 3  # re-verified, never duplicated by key


async def test_without_message_ids_the_same_uidnext_and_count_mean_spurious(env, mailbox):
    db, delivery, topic = env
    email, password = mailbox
    bare = [f"From: jan@acme.cz\r\nSubject: bare {i}\r\nDate: Fri, 27 Nov 2026 08:00:0{i} +0000\r\n\r\nbody {i}\r\n"
            .encode() for i in range(3)]
    append(IMAP_HOST, IMAP_PORT, email, password, "INBOX", bare)
    acc = account(email, password)
    await sync_once(acc, db, delivery)
    states = FolderStateStore(db)
    state = await states.load(acc.account_id, "INBOX")
    state.uidvalidity -= 1
    await states.save(state)
    state = await sync_once(acc, db, delivery)
    assert state.state == "incremental" and len(await events(topic, MessageReceived, 4, timeout=5)) == 3
    state.uidvalidity, state.exists = state.uidvalidity - 1, 2  # the figures differ too: a real change
    await states.save(state)
    await sync_once(acc, db, delivery)
    assert len(await events(topic, MessageReceived, 6)) == 6  # re-mapped (same keys, new locations)
