"""The malformed-mail corpus (tests/corpus: files plus generated giants) end to end: APPENDed to a real
Dovecot mailbox, synced by ingest, linked by the matcher, each service a real process.

Every case must be accounted for: a received event (with parse warnings where the mail is broken)
followed by a linked or ignored outcome, or a dead-letter record with a reason. Nothing may crash a
service or stall the pipeline: every wait has a deadline, and what is missing at the deadline is
named. Cases map to IMAP UIDs: they are APPENDed one by one, in order, to a fresh INBOX.
"""
import asyncio
import base64
import imaplib
import json
import time
import uuid

import httpx
import pytest
from cryptography.fernet import Fernet

from maillink_devtools.imap_load import login
from maillink_devtools.kafka_tools import produce, read_topic, wait_group_caught_up
from maillink_devtools.processes import ServiceSet
from maillink_schemas.crm import PersonUpserted
from tests.conftest import IMAP_HOST, IMAP_PORT, KAFKA, MONGODB_URL, RUN_DIR, bearer
from tests.corpus.generated import corpus
from tests.unit.test_corpus_parse import EXPECTED_WARNINGS

pytestmark = pytest.mark.e2e
SETTLE_S = 240  # the whole corpus is ~9 MB; on a loaded 2-core machine it settles in well under a minute


@pytest.fixture
def services(namespace, auth_env):
    env = {**auth_env, "MAILLINK_NAMESPACE": namespace, "KAFKA_BOOTSTRAP_SERVERS": KAFKA, "MONGODB_URL": MONGODB_URL,
           "MAILLINK_CREDENTIALS_KEY": Fernet.generate_key().decode(), "INGEST_POLL_INTERVAL_S": "1",
           "MAILLINK_HANDLER_RETRIES": "2"}
    base = 23000 + uuid.uuid4().int % 800 * 10
    procs = ServiceSet()
    procs.start("ingest", base + 1, env, RUN_DIR / "e2e-logs" / namespace)
    procs.start("matcher", base + 2, {**env, "MATCHER_BLOB_URLS": json.dumps({"ingest": f"http://127.0.0.1:{base + 1}"})},
                RUN_DIR / "e2e-logs" / namespace)
    procs.wait_healthy()
    yield procs
    procs.stop()


def append_in_order(user: str, password: str, cases: list[tuple[str, bytes]]) -> dict[int, str]:
    """APPENDs each case alone, so the UID Dovecot assigns (APPENDUID) names the case."""
    by_uid = {}
    conn = imaplib.IMAP4(IMAP_HOST, IMAP_PORT)
    try:
        login(conn, user, password)
        for name, raw in cases:
            typ, data = conn.append("INBOX", None, None, raw)
            assert typ == "OK", f"Dovecot refused {name}: {data!r}"
            uid = int(data[0].split(b"APPENDUID ")[1].split(b" ")[1].rstrip(b"]"))
            by_uid[uid] = name
    finally:
        conn.logout()
    return by_uid


async def outcomes(namespace: str) -> tuple[dict[int, dict], dict[int, dict], set[str], set[str]]:
    """(received event by UID, dead letter by UID, linked message keys, ignored message keys)."""
    topic = f"{namespace}mail.message.received.v1"
    received = {}
    for r in await read_topic(KAFKA, topic, timeout=5):
        event = json.loads(r.value)
        received[event["location"]["uid"]] = event
    dead = {}
    for r in await read_topic(KAFKA, f"{topic}.dlq", timeout=3):
        record = json.loads(r.value)
        payload = json.loads(base64.b64decode(record["payload"]))
        uid = payload["uid"] if "uid" in payload else payload["location"]["uid"]  # ingest's poison / matcher's event
        dead[uid] = record
    keys = {}
    for kind in ("linked", "ignored"):
        keys[kind] = {json.loads(r.value)["message_key"]
                      for r in await read_topic(KAFKA, f"{namespace}mail.message.{kind}.v1", timeout=3)}
    return received, dead, keys["linked"], keys["ignored"]


async def test_the_malformed_corpus_is_accounted_for_end_to_end(services, namespace, mailbox, token, capsys):
    ingest = services.running["ingest"].url
    owner = bearer(token("u-corpus", "accounts:write", "accounts:read"))
    me, password = mailbox
    # A CRM person behind most corpus senders, so linking really runs on what the parser read.
    await produce(KAFKA, f"{namespace}crm.persons.v1", [
        (b"p-jan", PersonUpserted(person_id="p-jan", name="Jan Novak", emails=["jan@acme.cz"]).model_dump_json().encode())])
    await wait_group_caught_up(KAFKA, f"{namespace}maillink-matcher", f"{namespace}crm.persons.v1")

    cases = list(corpus())
    by_uid = append_in_order(me, password, cases)
    response = httpx.post(f"{ingest}/accounts", headers=owner, json={
        "email": me, "password": password, "imap_host": IMAP_HOST, "imap_port": IMAP_PORT, "security": "plain"})
    assert response.status_code == 202, response.text
    account_id = response.json()["account_id"]

    deadline = time.monotonic() + SETTLE_S
    while True:
        received, dead, linked, ignored = await outcomes(namespace)
        unaccounted = {uid: name for uid, name in by_uid.items()
                       if not (uid in dead or (uid in received and received[uid]["message_key"] in linked | ignored))}
        if not unaccounted or time.monotonic() > deadline:
            break
        await asyncio.sleep(2)
    for svc in services.running.values():  # 0 crashes: both processes still up and healthy
        assert svc.process.poll() is None, f"{svc.name} exited; see {svc.log_path}"
        assert httpx.get(f"{svc.url}/healthz", timeout=10).status_code == 200
    dead_lettered = [uid for uid in by_uid if uid in dead]
    with capsys.disabled():
        print(f"\ncorpus: cases={len(cases)} received={len(received)} dead_lettered={len(dead_lettered)} "
              f"failures={len(unaccounted)}")
        for uid in dead_lettered:
            print(f"  dead-lettered {by_uid[uid]}: {dead[uid]['error_type']}: {dead[uid]['error'][:200]}")
    assert not unaccounted, f"not accounted for after {SETTLE_S}s (hang or loss): {sorted(unaccounted.values())}"
    assert all(dead[uid]["error"] and dead[uid]["error_type"] for uid in dead_lettered)  # every one with a reason

    # The received events say what was wrong with each broken message.
    name_of = {name: uid for uid, name in by_uid.items()}
    for name, warning in EXPECTED_WARNINGS.items():
        if name == "25-nul-bytes":  # Dovecot stores a NUL as 0x80 (checked on its own below)
            continue
        event = received[name_of[name]]
        assert any(warning in w for w in event["parse_warnings"]), (name, event["parse_warnings"])
    assert received[name_of["recipients-40000"]]["truncated"]["to"] == 40_000 - 100
    assert received[name_of["29-truncated-in-base64"]]["parse_error"]
    assert any("8-bit" in w for w in received[name_of["25-nul-bytes"]]["parse_warnings"])
    status = httpx.get(f"{ingest}/accounts/{account_id}", headers=owner).json()
    assert status["state"] == "synced" and status["error"] is None, status
