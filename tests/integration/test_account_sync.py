"""An account's sync loop against the real Dovecot, store and broker: words for every state, refused
credentials never retried, folders failing on their own, and new mail without waiting for a poll."""
import asyncio
import imaplib
import subprocess
from datetime import datetime, timezone

import pytest
from cryptography.fernet import Fernet

from maillink_devtools.imap_load import append
from maillink_ingest.adapters.accounts import AccountStore
from maillink_ingest.adapters.crypto import CredentialsCipher
from maillink_ingest.adapters.folder_state import FolderStateStore
from maillink_ingest.sync.account_sync import SyncDeps, run_account
from maillink_ingest.sync.delivery import Delivery
from maillink_ingest.sync.manager import SyncManager
from maillink_ingest.sync.status import Health
from maillink_schemas.accounts import FolderSelection, ImapEndpoint, Security, StatusReason, SyncState
from tests.conftest import IMAP_HOST, IMAP_PORT, RUN_DIR
from tests.integration.test_ingest_sync import KEY, account, env, mails, received  # noqa: F401 - fixture

pytestmark = pytest.mark.integration
DOVECOT_CONF = RUN_DIR / "dovecot/dovecot.conf"


class Reports:
    """Collects what the loop reports; `wait(pred)` returns once a report satisfies `pred`."""

    def __init__(self) -> None:
        self.all: list[Health] = []
        self._changed = asyncio.Event()

    async def __call__(self, acc, health: Health) -> None:
        self.all.append(health)
        self._changed.set()

    async def wait(self, pred, timeout: float = 20) -> Health:
        async def first():
            seen = 0
            while True:
                for health in self.all[seen:]:
                    if pred(health):
                        return health
                seen = len(self.all)
                self._changed.clear()
                await self._changed.wait()
        return await asyncio.wait_for(first(), timeout)

    def states(self) -> list[SyncState]:
        return [h.state for h in self.all]


def deps_for(db, delivery, reports, **kw) -> SyncDeps:
    return SyncDeps(FolderStateStore(db), delivery, CredentialsCipher(KEY), reports, AccountStore(db), **kw)


async def stopped(task: asyncio.Task, stop: asyncio.Event) -> None:
    stop.set()
    await asyncio.wait_for(task, 15)  # stopping interrupts IDLE and commands in flight


def imap_admin(email: str, password: str) -> imaplib.IMAP4:
    conn = imaplib.IMAP4(IMAP_HOST, IMAP_PORT)
    conn.login(email, password)
    return conn


async def test_refused_credentials_are_never_retried_until_new_ones_arrive(env, mailbox):
    db, delivery, topic = env
    email, password = mailbox
    append(IMAP_HOST, IMAP_PORT, email, password, "INBOX", mails(1, "m"))
    reports = Reports()
    deps = deps_for(db, delivery, reports, poll_interval_s=3600)
    wrong = account(email, "wrong", version=5)
    await asyncio.wait_for(run_account(wrong, deps, asyncio.Event()), 15)
    assert reports.states() == [SyncState.CONNECTING, SyncState.NEEDS_REAUTH]
    assert reports.all[-1].reason == StatusReason.WRONG_PASSWORD
    assert "rejected the username or password" in reports.all[-1].words

    # A rebalance, a restart or another instance: the same credentials (even under a later version,
    # e.g. a folder change) do not reach the server again.
    reports.all.clear()
    await asyncio.wait_for(run_account(wrong, deps, asyncio.Event()), 15)
    folder_change = wrong.model_copy(update={"version": 6, "folders": FolderSelection(folders=["INBOX"])})
    await asyncio.wait_for(run_account(folder_change, deps, asyncio.Event()), 15)
    assert reports.states() == [SyncState.NEEDS_REAUTH, SyncState.NEEDS_REAUTH]  # no CONNECTING: no login tried

    # New credentials (a higher version and a new ciphertext) start a login, and it works.
    reports.all.clear()
    stop = asyncio.Event()
    fixed = account(email, password, version=7)
    loop = asyncio.create_task(run_account(fixed, deps, stop))
    try:
        await reports.wait(lambda h: h.state == SyncState.SYNCED)
    finally:
        await stopped(loop, stop)
    assert await AccountStore(db).refusal(fixed) is None
    assert len(await received(topic, 1)) == 1


async def test_unreachable_server_is_reported_in_words_and_retried(env, mailbox):
    db, delivery, _ = env
    email, password = mailbox
    reports, stop = Reports(), asyncio.Event()
    acc = account(email, password).model_copy(update={"imap": ImapEndpoint(host=IMAP_HOST, port=1,
                                                                            security=Security.PLAIN)})
    loop = asyncio.create_task(run_account(acc, deps_for(db, delivery, reports, max_backoff_s=0.2), stop))
    try:
        await reports.wait(lambda h: sum(1 for x in reports.all if x.state == SyncState.ERROR) >= 3)
    finally:
        await stopped(loop, stop)
    errors = [h for h in reports.all if h.state == SyncState.ERROR]
    assert errors[0].reason == StatusReason.SERVER_UNREACHABLE and "cannot be reached" in errors[0].words
    assert errors[0].retry_at is not None and "Errno" not in errors[0].words


async def test_undecryptable_credentials_ask_for_new_ones_instead_of_retrying(env, mailbox):
    db, delivery, _ = env
    email, password = mailbox
    reports = Reports()
    deps = SyncDeps(FolderStateStore(db), delivery, CredentialsCipher(Fernet.generate_key().decode()), reports,
                    AccountStore(db))
    await asyncio.wait_for(run_account(account(email, password), deps, asyncio.Event()), 15)
    assert reports.all[-1].state == SyncState.NEEDS_REAUTH
    assert reports.all[-1].reason == StatusReason.CREDENTIALS_UNREADABLE


async def test_a_broker_outage_is_worded_retried_and_loses_nothing(env, mailbox):
    from aiokafka.errors import KafkaConnectionError
    db, delivery, topic = env
    email, password = mailbox
    append(IMAP_HOST, IMAP_PORT, email, password, "INBOX", mails(3, "m"))
    reports, stop, failures = Reports(), asyncio.Event(), [1]

    async def flaky_publish(events):
        if failures:
            failures.pop()
            raise KafkaConnectionError("Unable to bootstrap from [('127.0.0.1', 9092)]")
        await delivery._publish(events)

    deps = deps_for(db, Delivery(delivery._blobs, flaky_publish), reports, max_backoff_s=0.1)
    loop = asyncio.create_task(run_account(account(email, password), deps, stop))
    try:
        await reports.wait(lambda h: h.state == SyncState.SYNCED)
    finally:
        await stopped(loop, stop)
    outage = next(h for h in reports.all if h.state == SyncState.ERROR)
    assert outage.reason == StatusReason.BROKER_UNAVAILABLE and "nothing is lost" in outage.words
    assert sorted(e.location.uid for e in await received(topic, 3)) == [1, 2, 3]


async def test_a_missing_folder_is_reported_and_the_others_go_on(env, mailbox):
    db, delivery, topic = env
    email, password = mailbox
    conn = imap_admin(email, password)
    conn.create("Projects")
    append(IMAP_HOST, IMAP_PORT, email, password, "Projects", mails(1, "p"))
    append(IMAP_HOST, IMAP_PORT, email, password, "INBOX", mails(1, "i"))
    reports, stop = Reports(), asyncio.Event()
    acc = account(email, password, folders=FolderSelection(folders=["Nowhere", "Projects", "INBOX"]))
    loop = asyncio.create_task(run_account(acc, deps_for(db, delivery, reports, poll_interval_s=0.3,
                                                               relist_interval_s=0.3), stop))
    try:
        first = await reports.wait(lambda h: h.state == SyncState.SYNCED)
        assert [(p.folder, p.reason) for p in first.folder_problems] == [("Nowhere", StatusReason.FOLDER_VANISHED)]
        assert len(await received(topic, 2)) == 2
        conn.delete("Projects")  # vanishes on the server while synced
        gone = await reports.wait(lambda h: any(p.folder == "Projects" for p in h.folder_problems))
        assert gone.state == SyncState.SYNCED and "Projects" in next(
            p.error for p in gone.folder_problems if p.folder == "Projects")
        append(IMAP_HOST, IMAP_PORT, email, password, "INBOX", mails(1, "after"))
        events = await received(topic, 3)  # the others go on
    finally:
        await stopped(loop, stop)
        conn.logout()
    assert [e.envelope.subject for e in events][-1] == "after 0"


async def test_new_mail_in_any_folder_arrives_by_idle_not_by_polling(env, mailbox):
    db, delivery, topic = env
    email, password = mailbox
    conn = imap_admin(email, password)
    conn.create("Projects")
    conn.logout()
    reports, stop = Reports(), asyncio.Event()
    acc = account(email, password, folders=FolderSelection(folders=["INBOX", "Projects"]))
    # An hour between full passes: within this test, new mail can only come through IDLE.
    loop = asyncio.create_task(run_account(acc, deps_for(db, delivery, reports, poll_interval_s=3600), stop))
    try:
        await reports.wait(lambda h: h.state == SyncState.SYNCED)
        await asyncio.to_thread(append, IMAP_HOST, IMAP_PORT, email, password, "Projects", mails(1, "project"))
        await asyncio.to_thread(append, IMAP_HOST, IMAP_PORT, email, password, "INBOX", mails(1, "inbox"))
        events = await received(topic, 2)
    finally:
        await stopped(loop, stop)
    assert sorted(e.envelope.subject for e in events) == ["inbox 0", "project 0"]


async def test_mail_appended_during_a_pass_does_not_wait_for_the_next_poll(env, mailbox):
    db, delivery, topic = env
    email, password = mailbox
    append(IMAP_HOST, IMAP_PORT, email, password, "INBOX", mails(2, "before"))

    class AppendsMidPass(Delivery):
        appended = False

        async def deliver(self, *args):
            if not self.appended:  # lands after the pass chose its UIDs, before it ends
                self.appended = True
                await asyncio.to_thread(append, IMAP_HOST, IMAP_PORT, email, password, "INBOX", mails(1, "during"))
            return await super().deliver(*args)

    reports, stop = Reports(), asyncio.Event()
    deps = deps_for(db, AppendsMidPass(delivery._blobs, delivery._publish), reports, poll_interval_s=3600)
    loop = asyncio.create_task(run_account(account(email, password), deps, stop))
    try:
        events = await received(topic, 3)
    finally:
        await stopped(loop, stop)
    assert sorted(e.envelope.subject for e in events) == ["before 0", "before 1", "during 0"]


async def test_a_dropped_connection_is_noticed_at_once_and_reconnected(env, mailbox):
    db, delivery, topic = env
    email, password = mailbox
    reports, stop = Reports(), asyncio.Event()
    # Full passes an hour apart and a long backoff: only connection_lost and the immediate first
    # reconnect can bring the next message in within the test.
    deps = deps_for(db, delivery, reports, poll_interval_s=3600, max_backoff_s=3600)
    loop = asyncio.create_task(run_account(account(email, password), deps, stop))
    try:
        await reports.wait(lambda h: h.state == SyncState.SYNCED)
        subprocess.run(["doveadm", "-c", str(DOVECOT_CONF), "kick", email], check=True, capture_output=True)
        dropped = await reports.wait(lambda h: h.state == SyncState.ERROR)
        assert dropped.reason == StatusReason.SERVER_UNREACHABLE
        reconnected = len(reports.all)
        await reports.wait(lambda h: h.state == SyncState.SYNCED and any(
            x.state == SyncState.SYNCED for x in reports.all[reconnected:]))
        await asyncio.to_thread(append, IMAP_HOST, IMAP_PORT, email, password, "INBOX", mails(1, "after kick"))
        events = await received(topic, 1)
    finally:
        await stopped(loop, stop)
    assert events[0].envelope.subject == "after kick 0"


async def test_a_folder_selection_change_takes_effect_without_a_restart(env, mailbox):
    db, delivery, topic = env
    email, password = mailbox
    conn = imap_admin(email, password)
    conn.create("Projects")
    conn.logout()
    append(IMAP_HOST, IMAP_PORT, email, password, "Projects", mails(1, "project"))
    append(IMAP_HOST, IMAP_PORT, email, password, "INBOX", mails(1, "inbox"))
    reports = Reports()
    deps = deps_for(db, delivery, reports, poll_interval_s=3600)
    manager = SyncManager(lambda acc, stop: run_account(acc, deps, stop))
    acc = account(email, password, folders=FolderSelection(folders=["INBOX"]), version=1)
    try:
        await manager.apply(acc, partition=0)
        assert [e.envelope.subject for e in await received(topic, 1)] == ["inbox 0"]
        await manager.apply(acc.model_copy(update={"version": 2, "folders": FolderSelection(all_folders=True)}), 0)
        events = await received(topic, 2)
    finally:
        await manager.stop_all()
    assert sorted(e.envelope.subject for e in events) == ["inbox 0", "project 0"]


async def test_idle_is_reissued_and_still_hears_new_mail(env, mailbox):
    db, delivery, topic = env
    email, password = mailbox
    reports, stop = Reports(), asyncio.Event()
    # IDLE re-issued every 0.3 s here (25 minutes in service, inside RFC 2177's 29): several
    # DONE / IDLE rounds pass before the message lands, and it must still be heard.
    deps = deps_for(db, delivery, reports, poll_interval_s=3600, idle_renew_s=0.3)
    loop = asyncio.create_task(run_account(account(email, password), deps, stop))
    try:
        await reports.wait(lambda h: h.state == SyncState.SYNCED)
        await asyncio.sleep(1.5)
        await asyncio.to_thread(append, IMAP_HOST, IMAP_PORT, email, password, "INBOX", mails(1, "late"))
        events = await received(topic, 1)
    finally:
        await stopped(loop, stop)
    assert [e.envelope.subject for e in events] == ["late 0"]


def connections(email: str) -> int:
    out = subprocess.run(["doveadm", "-c", str(DOVECOT_CONF), "who", "-1", email], capture_output=True, text=True,
                         check=True).stdout
    return sum(1 for line in out.splitlines() if line.split() and line.split()[0] == email)


async def test_idle_connections_are_capped_and_the_other_folders_are_polled(env, mailbox):
    db, delivery, topic = env
    email, password = mailbox
    conn = imap_admin(email, password)
    conn.create("Projects")
    conn.logout()
    reports, stop = Reports(), asyncio.Event()
    acc = account(email, password, folders=FolderSelection(folders=["INBOX", "Projects"]))
    deps = deps_for(db, delivery, reports, poll_interval_s=1, idle_folders_max=1)
    loop = asyncio.create_task(run_account(acc, deps, stop))
    try:
        await reports.wait(lambda h: h.state == SyncState.SYNCED)
        await asyncio.sleep(0.5)
        assert connections(email) == 2  # the sync session and one IDLE watcher (INBOX), not one per folder
        await asyncio.to_thread(append, IMAP_HOST, IMAP_PORT, email, password, "Projects", mails(1, "polled"))
        events = await received(topic, 1)
    finally:
        await stopped(loop, stop)
    assert [e.envelope.subject for e in events] == ["polled 0"]
