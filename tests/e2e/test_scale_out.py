"""Scale-out through Kafka, proven: two ingest instances (one consumer group on the compacted account
topic) share 20 accounts; one is killed with SIGKILL; its accounts sync on the other. An independent
consumer, counting by message key, finds no message missing from mail.message.received.v1 and
each exactly once in mail.message.linked.v1 (a matcher process absorbs the repeats that
at-least-once allows after a kill). How many received events repeated is printed."""
import asyncio
import json
import signal
import time
import uuid
from collections import Counter

import httpx
import pytest
from cryptography.fernet import Fernet

from maillink_devtools.imap_load import append
from maillink_devtools.kafka_tools import read_topic
from maillink_devtools.mailgen import Mail
from maillink_devtools.processes import ServiceSet
from tests.conftest import IMAP_HOST, IMAP_PORT, KAFKA, MONGODB_URL, RUN_DIR, bearer, make_mailbox_user

pytestmark = pytest.mark.e2e
ACCOUNTS = 20


def mails(email: str, tag: str, n: int) -> list[bytes]:
    return [Mail(sender="jan@acme.cz", to=[email], subject=f"{tag} {i}", body=f"{tag} {i} for {email}",
                 message_id=f"<{tag}-{i}-{email}>").to_bytes() for i in range(n)]


async def message_keys(topic: str, expect: int, timeout: float) -> list[str]:
    records = await read_topic(KAFKA, topic, expect=expect, timeout=timeout)
    return [json.loads(r.value)["message_key"] for r in records]


async def wait_distinct(topic: str, expect: int, deadline: float) -> list[str]:
    while True:
        keys = await message_keys(topic, expect, timeout=max(1.0, min(5.0, deadline - time.monotonic())))
        if len(set(keys)) >= expect or time.monotonic() > deadline:
            return keys


async def test_two_instances_share_accounts_and_a_sigkill_loses_nothing(namespace, auth_env, token):
    mailboxes = [make_mailbox_user() for _ in range(ACCOUNTS)]
    for email, password in mailboxes:
        append(IMAP_HOST, IMAP_PORT, email, password, "INBOX", mails(email, "before", 2))
    env = {**auth_env, "MAILLINK_NAMESPACE": namespace, "KAFKA_BOOTSTRAP_SERVERS": KAFKA, "MONGODB_URL": MONGODB_URL,
           "MAILLINK_CREDENTIALS_KEY": Fernet.generate_key().decode(), "INGEST_POLL_INTERVAL_S": "5"}
    base = 19100 + uuid.uuid4().int % 800 * 10
    logs, procs = RUN_DIR / "e2e-logs" / namespace, ServiceSet()
    procs.start("ingest-a", base + 1, env, logs, service="ingest")
    procs.start("ingest-b", base + 3, env, logs, service="ingest")
    procs.start("matcher", base + 2, {**env, "MATCHER_BLOB_URLS": json.dumps({"ingest": f"http://127.0.0.1:{base + 1}"})},
                logs)
    received, linked = f"{namespace}mail.message.received.v1", f"{namespace}mail.message.linked.v1"
    try:
        procs.wait_healthy()
        a, b = procs.running["ingest-a"], procs.running["ingest-b"]
        alice = bearer(token("u-alice", "accounts:write", "accounts:read"))
        async with httpx.AsyncClient(timeout=30) as client:
            for email, password in mailboxes:
                response = await client.post(f"{a.url}/accounts", headers=alice, json={
                    "email": email, "password": password, "imap_host": IMAP_HOST, "imap_port": IMAP_PORT,
                    "security": "plain", "folders": {"folders": ["INBOX"]}})
                assert response.status_code == 202, response.text
        before = await wait_distinct(received, 2 * ACCOUNTS, time.monotonic() + 90)
        assert len(set(before)) == 2 * ACCOUNTS
        started_on_b = b.log_path.read_text().count('"account_sync_started"')
        assert started_on_b > 0 and a.log_path.read_text().count('"account_sync_started"') > 0  # both share them

        for email, password in mailboxes:  # new mail everywhere, then B dies while it is being synced
            append(IMAP_HOST, IMAP_PORT, email, password, "INBOX", mails(email, "after", 1))
        b.process.send_signal(signal.SIGKILL)
        killed_at = time.monotonic()
        everything = await wait_distinct(received, 3 * ACCOUNTS, killed_at + 30)
        took = time.monotonic() - killed_at
        assert len(set(everything)) == 3 * ACCOUNTS  # within 30 s of the kill: nothing missing

        links = await wait_distinct(linked, 3 * ACCOUNTS, time.monotonic() + 60)
        await asyncio.sleep(3)  # anything the matcher would still (wrongly) repeat
        links = await message_keys(linked, 3 * ACCOUNTS, timeout=5)
        repeated = len(everything) - len(set(everything))
        print(f"\nscale-out: {ACCOUNTS} accounts, {started_on_b} loop starts on the killed instance; all mail "
              f"received {took:.1f} s after SIGKILL; received events repeated: {repeated}; linked: {len(links)}")
        assert Counter(links) == Counter(set(everything))  # each message linked exactly once
    finally:
        procs.stop()
