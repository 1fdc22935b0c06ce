"""An account's life through the `maillink accounts` CLI and ingest's API, ingest a real process:
add, status, list, pause, resume, key rotation with re-encryption, remove (a tombstone, and the
credentials, status and folder state gone)."""
import os
import subprocess
import sys
import uuid

import httpx
import pytest
from cryptography.fernet import Fernet

from maillink_devtools.imap_load import append
from maillink_devtools.kafka_tools import read_topic
from maillink_devtools.mailgen import Mail
from maillink_devtools.processes import ServiceSet
from maillink_runtime import mongo
from tests.conftest import IMAP_HOST, IMAP_PORT, KAFKA, MONGODB_URL, RUN_DIR, bearer
from tests.waiting import eventually, wait_for

pytestmark = pytest.mark.e2e
OLD_KEY, NEW_KEY = Fernet.generate_key().decode(), Fernet.generate_key().decode()


def env_for(namespace: str, auth_env: dict, keys: str) -> dict:
    return {"MAILLINK_NAMESPACE": namespace, "KAFKA_BOOTSTRAP_SERVERS": KAFKA, "MONGODB_URL": MONGODB_URL,
            "MAILLINK_CREDENTIALS_KEY": keys, "INGEST_POLL_INTERVAL_S": "2", **auth_env}


def cli(url: str, token: str, *args: str, stdin: str | None = None) -> str:
    done = subprocess.run([sys.executable, "-m", "maillink_devtools.cli", "accounts", "--url", url, "--token", token,
                           *args], input=stdin, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return done.stdout


async def test_an_accounts_life_from_add_to_remove(namespace, auth_env, token, mailbox):
    email, password = mailbox
    append(IMAP_HOST, IMAP_PORT, email, password, "INBOX",
           [Mail(sender="jan@acme.cz", to=[email], subject=f"m {i}", body="b", message_id=f"<m{i}@acme.cz>").to_bytes()
            for i in range(3)])
    port = 17100 + uuid.uuid4().int % 800 * 10 + 5
    procs, logs = ServiceSet(), RUN_DIR / "e2e-logs" / namespace
    procs.start("ingest", port, env_for(namespace, auth_env, OLD_KEY), logs)
    procs.wait_healthy()
    url, tok = procs.running["ingest"].url, token("u-alice", "accounts:read", "accounts:write", company="c-1")
    db_client = mongo.connect(MONGODB_URL)
    db = db_client[f"{namespace.replace('.', '_')}maillink_ingest"]
    try:
        added = cli(url, tok, "add", "--email", email, "--imap-host", IMAP_HOST, "--imap-port", str(IMAP_PORT),
                    "--security", "plain", "--password-stdin", stdin=password + "\n")
        account_id = added.split()[0]

        def view():
            return httpx.get(f"{url}/accounts/{account_id}", headers=bearer(tok)).json()

        synced = wait_for(view, lambda v: v.get("state") == "synced" and v["messages_synced"] == 3)
        assert synced["state"] == "synced" and synced["error"] is None and synced["folders"][0]["done"] == 3
        assert f"{email}: synced" in cli(url, tok, "status", account_id)
        assert account_id in cli(url, tok, "list") and "1 account(s)" in cli(url, tok, "list")

        cli(url, tok, "pause", account_id)
        assert wait_for(view, lambda v: v["state"] == "paused")["enabled"] is False
        cli(url, tok, "resume", account_id)
        assert wait_for(view, lambda v: v["state"] == "synced")["enabled"] is True

        # Key rotation: the new key first, then the re-encryption pass, then the old key retired.
        procs.stop()
        rotated = env_for(namespace, auth_env, f"{NEW_KEY},{OLD_KEY}")
        procs.start("ingest", port, rotated, logs)
        procs.wait_healthy()
        done = subprocess.run([sys.executable, "-m", "maillink_ingest.reencrypt"], env={**os.environ, **rotated},
                              capture_output=True, text=True, timeout=60)
        assert done.returncode == 0 and "re-encrypted 1 account(s)" in done.stdout, done.stderr
        stored = await eventually(lambda: db["accounts"].find_one({"_id": account_id}),
                                  lambda d: d is not None and _readable_with(NEW_KEY, d["secret_ciphertext"]))
        assert stored is not None and _readable_with(NEW_KEY, stored["secret_ciphertext"])
        procs.stop()
        procs.start("ingest", port, env_for(namespace, auth_env, NEW_KEY), logs)
        procs.wait_healthy()
        assert wait_for(view, lambda v: v.get("state") == "synced", timeout=30)["state"] == "synced"

        removed = httpx.delete(f"{url}/accounts/{account_id}", headers=bearer(tok)).json()
        assert removed == {"account_id": account_id, "applied": True}
        assert httpx.get(f"{url}/accounts/{account_id}", headers=bearer(tok)).status_code == 404
        assert await db["folder_state"].count_documents({"account_id": account_id}) == 0
        assert await db["account_status"].count_documents({"_id": account_id}) == 0
        records = await read_topic(KAFKA, f"{namespace}mail.account.v1")
        assert records[-1].key == account_id.encode() and records[-1].value is None  # a real tombstone
        assert "account_removed" in procs.running["ingest"].log_path.read_text()
    finally:
        procs.stop()
        await db_client.drop_database(db.name)
        await db_client.close()


def _readable_with(key: str, token: str) -> bool:
    try:
        Fernet(key.encode()).decrypt(token.encode())
        return True
    except Exception:  # noqa: BLE001
        return False


