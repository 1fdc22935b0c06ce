"""The trust baseline against running services on the real broker and store: who may do what,
key rotation on a live process, and POST /accounts under concurrency."""
import asyncio
import json
import uuid

import httpx
import pytest
from cryptography.fernet import Fernet

from maillink_devtools import tokens
from maillink_devtools.processes import ServiceSet
from maillink_runtime import mongo
from tests.conftest import KAFKA, LINK_KEYS, MONGODB_URL, RUN_DIR, bearer
from tests.waiting import eventually

pytestmark = pytest.mark.e2e


@pytest.fixture
def keys(tmp_path):
    """A key set of this test's own, so rotating and retiring keys here disturbs no other test."""
    tokens.init_keys(tmp_path)
    return tmp_path


@pytest.fixture
def running(namespace, keys):
    env = {"MAILLINK_NAMESPACE": namespace, "KAFKA_BOOTSTRAP_SERVERS": KAFKA, "MONGODB_URL": MONGODB_URL,
           "MAILLINK_CREDENTIALS_KEY": Fernet.generate_key().decode(), "MAILLINK_JWKS_FILE": str(keys / "jwks.json"),
           "MAILLINK_LINK_KEYS": LINK_KEYS, "INGEST_POLL_INTERVAL_S": "60"}
    base = 17100 + uuid.uuid4().int % 800 * 10
    procs = ServiceSet()
    procs.start("ingest", base + 1, env, RUN_DIR / "e2e-logs" / namespace)
    procs.start("matcher", base + 2, env, RUN_DIR / "e2e-logs" / namespace)
    procs.wait_healthy()
    yield procs
    procs.stop()


def tok(keys, user, *scopes, company="c-1", **kw):
    return bearer(tokens.mint(keys, subject=kw.pop("subject", user or "svc"), user_id=user, company_id=company,
                              scopes=list(scopes), **kw))


def account_body(email: str, password: str = "secret-pw", **extra) -> dict:
    # An unreachable loopback port: the account is accepted and stored; its sync just retries.
    return {"email": email, "password": password, "imap_host": "127.0.0.1", "imap_port": 1, "security": "plain",
            **extra}


def test_who_may_do_what(running, keys):
    ingest, matcher = running.running["ingest"].url, running.running["matcher"].url
    alice = tok(keys, "u-alice", "accounts:write", "accounts:read", "mail:read")
    bob = tok(keys, "u-bob", "accounts:write", "accounts:read", "mail:read")
    crm_admin = tok(keys, None, "accounts:write", "accounts:read", "accounts:admin", "mail:read", subject="crm")
    other_admin = tok(keys, None, "accounts:read", "accounts:admin", company="c-2", subject="crm-2")

    # No token: 401 on every API endpoint of the running services.
    for url in (f"{ingest}/accounts/x", f"{ingest}/blobs/{'0' * 64}", f"{matcher}/users/u-alice/mail",
                f"{matcher}/persons/p/conversations", f"{matcher}/deals/d/conversations", f"{ingest}/docs"):
        assert httpx.get(url).status_code == 401, url
    assert httpx.post(f"{ingest}/accounts", json=account_body("a@example.com")).status_code == 401

    created = httpx.post(f"{ingest}/accounts", headers=alice, json=account_body("alice@example.com"))
    assert created.status_code == 202, created.text
    account = created.json()["account_id"]
    assert httpx.get(f"{ingest}/accounts/{account}", headers=alice).json()["user_id"] == "u-alice"
    # Another user: 403, in words. The same company's CRM service with accounts:admin: allowed.
    denied = httpx.get(f"{ingest}/accounts/{account}", headers=bob)
    assert denied.status_code == 403 and "another user" in denied.json()["detail"]
    assert httpx.get(f"{ingest}/accounts/{account}", headers=crm_admin).status_code == 200
    assert httpx.get(f"{ingest}/accounts/{account}", headers=other_admin).status_code == 403
    # A user cannot connect a mailbox for someone else; the company's CRM service can.
    assert httpx.post(f"{ingest}/accounts", headers=bob, json=account_body("x@example.com", user_id="u-alice")
                      ).status_code == 403
    for_carol = httpx.post(f"{ingest}/accounts", headers=crm_admin, json=account_body("carol@example.com", user_id="u-carol"))
    assert for_carol.status_code == 202
    assert httpx.get(f"{ingest}/accounts/{for_carol.json()['account_id']}",
                     headers=tok(keys, "u-carol", "accounts:read")).status_code == 200
    # Scopes: reading is not writing.
    assert httpx.post(f"{ingest}/accounts", headers=tok(keys, "u-alice", "accounts:read"),
                      json=account_body("alice@example.com")).status_code == 403

    # The Mail tab is its owner's alone; an admin claim does not open it; a token without a user cannot read mail.
    assert httpx.get(f"{matcher}/users/u-alice/mail", headers=alice).status_code == 200
    assert httpx.get(f"{matcher}/users/u-alice/mail", headers=bob).status_code == 403
    assert httpx.get(f"{matcher}/users/u-alice/mail", headers=crm_admin).status_code == 403
    assert httpx.get(f"{matcher}/persons/p/conversations", headers=crm_admin).status_code == 403
    assert httpx.get(f"{matcher}/persons/p/conversations", params={"viewer": "u-alice"}, headers=bob).status_code == 200
    # Raw MIME: neither a user token nor an admin one is a blob scope.
    assert httpx.get(f"{ingest}/blobs/{'0' * 64}", headers=crm_admin).status_code == 403


def test_key_rotation_on_a_running_service(running, keys):
    matcher = running.running["matcher"].url
    old = tok(keys, "u-1", "mail:read")
    old_kid = tokens.rotate_keys(keys) and json.loads((keys / "signing-keys.json").read_text())["keys"][1]["kid"]
    new = tok(keys, "u-1", "mail:read")
    assert httpx.get(f"{matcher}/users/u-1/mail", headers=old).status_code == 200
    assert httpx.get(f"{matcher}/users/u-1/mail", headers=new).status_code == 200
    tokens.retire_key(keys, old_kid)
    gone = httpx.get(f"{matcher}/users/u-1/mail", headers=old)
    assert gone.status_code == 401 and "kid" in gone.json()["detail"]
    assert httpx.get(f"{matcher}/users/u-1/mail", headers=new).status_code == 200


async def test_fifty_concurrent_connects_and_updates_all_succeed_and_the_newest_wins(running, keys, namespace):
    ingest = running.running["ingest"].url
    alice = tok(keys, "u-alice", "accounts:write", "accounts:read")
    async with httpx.AsyncClient(timeout=30) as client:
        responses = await asyncio.gather(*[
            client.post(f"{ingest}/accounts", headers=alice,
                        json=account_body("race@example.com", password=f"pw-{i}", first_sync_days=1 + i))
            for i in range(50)])
    assert [r.status_code for r in responses] == [202] * 50, [r.text for r in responses if r.status_code != 202]
    versions = [r.json()["version"] for r in responses]
    assert len(set(versions)) == 50  # every update is its own version
    account_id = responses[0].json()["account_id"]
    client = mongo.connect(MONGODB_URL)
    try:
        accounts = client[f"{namespace.replace('.', '_')}maillink_ingest"]["accounts"]
        # The consumer applies the same 50 records from the topic; both writers converge on the newest.
        stored = await eventually(lambda: accounts.find_one({"_id": account_id}),
                                  lambda doc: doc["version"] == max(versions), timeout=20, every=0.2)
        assert stored["version"] == max(versions)
        newest = versions.index(max(versions))
        assert stored["first_sync_days"] == 1 + newest
        await asyncio.sleep(2)  # let the consumer finish replaying everything it got
        assert (await accounts.find_one({"_id": account_id}))["version"] == max(versions)
    finally:
        await client.close()
    log = running.running["ingest"].log_path.read_text()
    assert "account_apply_failed" not in log and "E11000" not in log
