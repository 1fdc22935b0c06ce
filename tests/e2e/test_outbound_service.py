"""Outbound as a real process: the send API with tokens, the command topic, the account
projection from mail.account.v1, the SMTP server and Dovecot, the sent event on Kafka, and logs
that carry neither bodies nor credentials."""
import asyncio
import base64
import uuid

import httpx
import pytest
from cryptography.fernet import Fernet

from maillink_devtools.kafka_tools import produce, read_topic
from maillink_devtools.outbound_testing import SmtpServer, smtp_account
from maillink_devtools.processes import ServiceSet
from maillink_schemas.outbound import MessageSent
from maillink_schemas.topics import Topic
from tests.conftest import IMAP_PORT, KAFKA, MONGODB_URL, RUN_DIR, bearer, make_mailbox_user
from tests.waiting import eventually

pytestmark = pytest.mark.e2e
BODY_MARKER = "confidential-body-" + uuid.uuid4().hex[:8]


@pytest.fixture
def outbound(namespace, auth_env, tmp_path):
    key = Fernet.generate_key().decode()
    server = SmtpServer.start(tmp_path / "smtp", run_dir=RUN_DIR, imap_port=IMAP_PORT)
    env = {"MAILLINK_NAMESPACE": namespace, "KAFKA_BOOTSTRAP_SERVERS": KAFKA, "MONGODB_URL": MONGODB_URL,
           "MAILLINK_CREDENTIALS_KEY": key, **auth_env, "OUTBOUND_SMTP_CA_FILE": server.ca_file,
           "OUTBOUND_TRACKING_SECRET": "e2e-tracking-secret", "LOG_LEVEL": "DEBUG"}
    procs = ServiceSet()
    svc = procs.start("outbound", 18000 + uuid.uuid4().int % 900, env, RUN_DIR / "e2e-logs" / namespace)
    procs.wait_healthy()
    yield {"url": svc.url, "key": key, "server": server, "namespace": namespace, "log": svc.log_path}
    procs.stop()
    server.stop()


async def connect_account(o, user_id: str, provider: str = "local-test"):
    email, password = make_mailbox_user()
    account = smtp_account(email, password, o["key"], o["server"].port, user_id=user_id, provider=provider)
    await produce(KAFKA, o["namespace"] + Topic.ACCOUNT, [(account.account_id.encode(),
                                                           account.model_dump_json(by_alias=True).encode())])
    return account, password


async def wait_known(client, account, headers, timeout=60):
    r = await eventually(lambda: client.get(f"/accounts/{account.account_id}/signatures", headers=headers),
                         lambda r: r.status_code == 200, timeout)
    assert r.status_code == 200, f"the account never reached outbound's projection: {r.status_code}"


async def wait_state(client, request_id, headers, states=("sent", "failed", "unknown", "cancelled"), timeout=60):
    r = await eventually(lambda: client.get(f"/send/{request_id}", headers=headers),
                         lambda r: r.status_code == 200 and r.json()["state"] in states, timeout, every=0.2)
    assert r.status_code == 200 and r.json()["state"] in states, f"request {request_id} did not reach {states}: {r.text}"
    return r.json()


async def test_send_api_end_to_end(outbound, token):
    o = outbound
    alice = bearer(token("u-alice", "mail:send", "templates:read", "templates:write", company="c-1"))
    async with httpx.AsyncClient(base_url=o["url"], timeout=60) as client:
        account, password = await connect_account(o, "u-alice")
        await wait_known(client, account, alice)
        body = {"request_id": f"r-{uuid.uuid4().hex}", "account_id": account.account_id,
                "to": [{"email": "jan@acme.example", "name": "Jan"}], "subject": "Offer",
                "html": f"<p>{BODY_MARKER} <a href='https://acme.example/x'>x</a></p>", "tracking": True}
        first = await client.post("/send", json=body, headers=alice)
        assert first.status_code == 202, first.text
        again = await client.post("/send", json=body, headers=alice)   # the same request id: no second send
        assert again.status_code == 202
        done = await wait_state(client, body["request_id"], alice)
        assert done["state"] == "sent"
        assert [a["message_id"] for a in o["server"].accepted()].count(done["message_id"]) == 1
        records = await read_topic(KAFKA, o["namespace"] + Topic.MESSAGE_SENT, expect=1)
        sent = [MessageSent.model_validate_json(r.value) for r in records]
        assert [s.request_id for s in sent] == [body["request_id"]] and sent[0].message_key == done["message_key"]

        # Someone else's account, a missing scope, a missing smart field, an oversized message.
        bob = bearer(token("u-bob", "mail:send", company="c-1"))
        assert (await client.post("/send", json={**body, "request_id": "r-bob"}, headers=bob)).status_code == 404
        reader = bearer(token("u-alice", "mail:read"))
        assert (await client.post("/send", json=body, headers=reader)).status_code == 403
        missing = await client.post("/send", headers=alice, json={
            **body, "request_id": f"r-{uuid.uuid4().hex}", "html": "<p>Hi {{ person.first_name }}</p>",
            "context": {"person_id": "p-unknown"}})
        assert missing.status_code == 422 and missing.json()["field"] == "person.first_name"
        assert "person.first_name" in missing.json()["detail"]
        fallback = await client.post("/send", headers=alice, json={
            **body, "request_id": f"r-{uuid.uuid4().hex}", "html": "<p>Hi {{ person.first_name | default('there') }}</p>"})
        assert fallback.status_code == 202
        big = base64.b64encode(b"\0" * (19 * 1024 * 1024)).decode()
        gmail, _ = await connect_account(o, "u-alice", provider="gmail")
        await wait_known(client, gmail, alice)
        refused = await client.post("/send", headers=alice, json={
            **body, "account_id": gmail.account_id, "request_id": f"r-{uuid.uuid4().hex}",
            "attachments": [{"filename": "video.mp4", "content_type": "video/mp4", "data_base64": big}]})
        assert refused.status_code == 413
        assert refused.json()["detail"] == "this message is 26.0 MB; Gmail accepts at most 25 MB"
        injected = await client.post("/send", headers=alice, json={**body, "subject": "x\r\nBcc: all@evil.example"})
        assert injected.status_code == 422

        # Scheduled, then cancelled: never sent.
        later = {**body, "request_id": f"r-{uuid.uuid4().hex}", "send_at": "2099-01-01T00:00:00Z"}
        assert (await client.post("/send", json=later, headers=alice)).json()["state"] == "scheduled"
        cancelled = await client.delete(f"/send/{later['request_id']}", headers=alice)
        assert cancelled.status_code == 200 and cancelled.json()["state"] == "cancelled"
        assert (await client.delete(f"/send/{body['request_id']}", headers=alice)).status_code == 409

        # Templates: private to the owner, shared within the company only.
        mine = (await client.post("/templates", headers=alice, json={"name": "mine", "html": "<p>{{ deal.title }}</p>"})).json()
        shared = (await client.post("/templates", headers=alice, json={"name": "team", "subject": "Hi", "shared": True})).json()
        bob_t = bearer(token("u-bob", "templates:read", "templates:write", company="c-1"))
        eve_t = bearer(token("u-eve", "templates:read", company="c-2"))
        assert {t["id"] for t in (await client.get("/templates", headers=bob_t)).json()} == {shared["id"]}
        assert (await client.get("/templates", headers=eve_t)).json() == []
        assert (await client.delete(f"/templates/{shared['id']}", headers=bob_t)).status_code == 404
        assert (await client.put(f"/templates/{mine['id']}", headers=alice,
                                 json={"name": "mine", "html": "{% for %}"})).status_code == 422
        assert (await client.delete(f"/templates/{mine['id']}", headers=alice)).status_code == 204

    await asyncio.sleep(0.5)
    log = o["log"].read_text()
    assert "sent" in log
    assert BODY_MARKER not in log and password not in log
