"""No secret ever leaks: the whole pipeline at LOG_LEVEL=DEBUG, with aioimaplib's and aiokafka's
protocol logs explicitly opened, and a password made of everything that breaks naive quoting.
Then every log line, every document of every database and every record of every topic is
searched for the password in each usual spelling: 0 hits."""
import base64
import json
import subprocess
import uuid

import bson
import httpx
import pytest
from cryptography.fernet import Fernet

from maillink_devtools.imap_load import append
from maillink_devtools.mailgen import Mail
from maillink_devtools.processes import ServiceSet
from maillink_runtime import mongo
from tests.conftest import IMAP_HOST, IMAP_PORT, KAFKA, MONGODB_URL, ROOT, RUN_DIR, bearer
from tests.waiting import wait_for

pytestmark = pytest.mark.e2e

PASSWORD = 'Pa"ss \\wörd ✓ ' + uuid.uuid4().hex[:6]


def spellings(secret: str) -> dict[str, bytes]:
    raw = secret.encode()
    return {"raw": raw, "imap-quoted": secret.replace("\\", "\\\\").replace('"', '\\"').encode(),
            "json": json.dumps(secret).encode()[1:-1], "json-ascii": json.dumps(secret, ensure_ascii=True).encode()[1:-1],
            "bytes-repr": repr(raw)[2:-1].encode(), "base64": base64.b64encode(raw),
            "base64-plain-sasl": base64.b64encode(b"\0" + raw)[4:]}


def hits(blob: bytes, secret: str) -> list[str]:
    return [name for name, needle in spellings(secret).items() if needle in blob]


async def test_password_appears_nowhere(namespace, auth_env, token):
    email = f"leak{uuid.uuid4().hex[:8]}@example.com"
    subprocess.run(["bash", str(ROOT / "deploy/local/dovecot.sh"), "adduser", email, PASSWORD], check=True)
    append(IMAP_HOST, IMAP_PORT, email, PASSWORD, "INBOX",
           [Mail(sender="jan@acme.cz", to=[email], subject="Hello", body="Hi there.").to_bytes()])
    logs = RUN_DIR / "e2e-logs" / namespace
    env = {**auth_env, "MAILLINK_NAMESPACE": namespace, "KAFKA_BOOTSTRAP_SERVERS": KAFKA, "MONGODB_URL": MONGODB_URL,
           "MAILLINK_CREDENTIALS_KEY": Fernet.generate_key().decode(), "INGEST_POLL_INTERVAL_S": "1",
           "LOG_LEVEL": "DEBUG", "MAILLINK_DEBUG_LOGGERS": "aioimaplib,aiokafka,faststream"}
    base = 16100 + uuid.uuid4().int % 800 * 10
    procs = ServiceSet()
    try:
        procs.start("ingest", base + 1, env, logs)
        procs.start("matcher", base + 2, env, logs)
        procs.wait_healthy()
        ingest, matcher = procs.running["ingest"].url, procs.running["matcher"].url
        alice = bearer(token("u-leak", "accounts:write", "accounts:read", "mail:read"))
        # A malformed request carrying the password: its 422 names the field, never the value.
        bad = httpx.post(f"{ingest}/accounts", headers=alice, json={"email": "nope", "password": PASSWORD,
                                                                     "imap_host": IMAP_HOST})
        assert bad.status_code == 422 and not hits(bad.content, PASSWORD)
        ok = httpx.post(f"{ingest}/accounts", headers=alice, json={
            "email": email, "password": PASSWORD, "imap_host": IMAP_HOST, "imap_port": IMAP_PORT, "security": "plain"})
        assert ok.status_code == 202, ok.text
        account_id = ok.json()["account_id"]
        status, mail = wait_for(lambda: (httpx.get(f"{ingest}/accounts/{account_id}", headers=alice).json(),
                                         httpx.get(f"{matcher}/users/u-leak/mail", headers=alice).json()),
                                lambda seen: seen[0]["state"] == "synced" and seen[1]["threads"], timeout=60, every=0.5)
        assert status["state"] == "synced" and status["error"] is None, status  # the hostile password logged in
        assert mail["threads"][0]["subject"] == "Hello"
    finally:
        procs.stop()

    log_bytes = b"".join(p.read_bytes() for p in logs.glob("*.log"))
    assert b"LOGIN" in log_bytes or b"AUTHENTICATE" in log_bytes  # the protocol log really was on
    assert hits(log_bytes, PASSWORD) == []

    client = mongo.connect(MONGODB_URL)
    prefix = namespace.replace(".", "_")
    documents = 0
    try:
        for db_name in await client.list_database_names():
            if not db_name.startswith(prefix):
                continue
            for collection in await client[db_name].list_collection_names():
                async for doc in client[db_name][collection].find():
                    documents += 1
                    assert hits(bson.encode(doc), PASSWORD) == [], (db_name, collection)
    finally:
        await client.close()
    assert documents > 3

    topics = subprocess.run(["kcat", "-L", "-b", KAFKA, "-J"], capture_output=True, text=True, check=True).stdout
    records = 0
    for topic in json.loads(topics)["topics"]:
        if topic["topic"].startswith(namespace):
            out = subprocess.run(["kcat", "-C", "-b", KAFKA, "-t", topic["topic"], "-o", "beginning", "-e", "-q"],
                                 capture_output=True, timeout=60).stdout
            records += out.count(b"\n")
            assert hits(out, PASSWORD) == [], topic["topic"]
    assert records >= 3
