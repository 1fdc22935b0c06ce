"""The whole pipeline, with every service a real process and every server real:

Dovecot (APPEND) -> ingest -> Kafka -> matcher -> FerretDB / query API, with an independent
consumer (kcat) reading mail.message.linked.v1 the way another internal service would.
"""
import hashlib
import json
import subprocess
import uuid
from datetime import datetime, timedelta, timezone

import httpx
import pytest
from cryptography.fernet import Fernet
from prometheus_client.parser import text_string_to_metric_families

from maillink_devtools.imap_load import append
from maillink_devtools.mailgen import Mail
from maillink_devtools.processes import ServiceSet
from maillink_runtime import mongo
from maillink_schemas.crm import DealUpserted, PersonUpserted
from tests.conftest import IMAP_HOST, IMAP_PORT, KAFKA, MONGODB_URL, RUN_DIR, bearer, promtool_check_metrics
from maillink_devtools.kafka_tools import produce, read_topic, wait_group_caught_up
from tests.waiting import wait_for

pytestmark = pytest.mark.e2e


def kcat_read(topic: str, expect: int, timeout: float = 60) -> list[dict]:
    """Reads a topic with kcat, an independent client, until `expect` records (then a little longer)."""
    def read() -> list[dict]:
        out = subprocess.run(["kcat", "-C", "-b", KAFKA, "-t", topic, "-o", "beginning", "-e", "-q"],
                             capture_output=True, text=True, timeout=30).stdout
        return [json.loads(line) for line in out.splitlines() if line.strip()]
    return wait_for(read, lambda records: len(records) >= expect, timeout, every=0.5)


def metric(base_url: str, name: str) -> float:
    """Sum of a counter's samples, read from /metrics with Prometheus' own text parser."""
    text = httpx.get(f"{base_url}/metrics").text
    return sum(sample.value for family in text_string_to_metric_families(text) for sample in family.samples
               if sample.name == name)


def conversation(me: str, jan: str, eva: str) -> tuple[list[bytes], list[bytes]]:
    """A realistic exchange: Jan writes, Alice replies (Sent), Eva joins in Cc; plus a newsletter."""
    now = datetime.now(timezone.utc)
    at = [now - timedelta(hours=h) for h in (3, 2, 1, 4)]
    inbox = [
        Mail(sender=jan, sender_name="Jan Novák", to=[me], subject="Pricing for 50 seats",
             body="Hi Alice, could you send the pricing for 50 seats?", message_id="<p1@acme.cz>", date=at[0]),
        Mail(sender=jan, to=[me], cc=[eva], subject="Re: Pricing for 50 seats", body="Adding Eva from finance.",
             message_id="<p3@acme.cz>", in_reply_to="<p2@example.com>", references=["<p1@acme.cz>", "<p2@example.com>"],
             date=at[2]),
        Mail(sender="news@saas.example", to=[me], subject="Our November newsletter", body="News.",
             message_id="<n1@saas.example>", extra_headers={"List-Unsubscribe": "<mailto:unsub@saas.example>"}, date=at[3]),
    ]
    sent = [Mail(sender=me, to=[jan], subject="Re: Pricing for 50 seats", body="Here it is: 40 EUR per seat.",
                 message_id="<p2@example.com>", in_reply_to="<p1@acme.cz>", references=["<p1@acme.cz>"], date=at[1])]
    return [m.to_bytes() for m in inbox], [m.to_bytes() for m in sent]


@pytest.fixture
def services(namespace, auth_env):
    env = {**auth_env, "MAILLINK_NAMESPACE": namespace, "KAFKA_BOOTSTRAP_SERVERS": KAFKA, "MONGODB_URL": MONGODB_URL,
           "MAILLINK_CREDENTIALS_KEY": Fernet.generate_key().decode(), "INGEST_POLL_INTERVAL_S": "1",
           "MAILLINK_HANDLER_RETRIES": "2"}
    base = 18100 + uuid.uuid4().int % 800 * 10  # ports of their own, so a running `make run` is no obstacle
    procs = ServiceSet()
    procs.start("ingest", base + 1, env, RUN_DIR / "e2e-logs" / namespace)
    procs.start("matcher", base + 2, {**env, "MATCHER_BLOB_URLS": json.dumps({"ingest": f"http://127.0.0.1:{base + 1}"})},
                RUN_DIR / "e2e-logs" / namespace)
    procs.wait_healthy()
    yield procs
    procs.stop()


async def test_mail_flows_from_imap_to_linked_conversations_exactly_once(services, namespace, mailbox, token):
    ingest, matcher = services.running["ingest"].url, services.running["matcher"].url
    alice = bearer(token("u-alice", "accounts:write", "accounts:read", "mail:read"))
    colleague = bearer(token("u-other", "mail:read"))
    me, password = mailbox
    jan, eva = "jan@acme.cz", "eva@acme.cz"
    linked_topic, received_topic = f"{namespace}mail.message.linked.v1", f"{namespace}mail.message.received.v1"
    group = f"{namespace}maillink-matcher"

    # The CRM publishes its records; wait until matcher has its projection.
    await produce(KAFKA, f"{namespace}crm.persons.v1", [
        (b"p-jan", PersonUpserted(person_id="p-jan", name="Jan Novák", emails=[jan]).model_dump_json().encode()),
        (b"p-eva", PersonUpserted(person_id="p-eva", name="Eva", emails=[eva]).model_dump_json().encode())])
    await produce(KAFKA, f"{namespace}crm.deals.v1", [
        (b"d-1", DealUpserted(deal_id="d-1", title="ACME 50 seats", person_ids=["p-jan"]).model_dump_json().encode())])
    await wait_group_caught_up(KAFKA, group, f"{namespace}crm.persons.v1")
    await wait_group_caught_up(KAFKA, group, f"{namespace}crm.deals.v1")

    inbox, sent = conversation(me, jan, eva)
    append(IMAP_HOST, IMAP_PORT, me, password, "INBOX", inbox)
    append(IMAP_HOST, IMAP_PORT, me, password, "Sent", sent)

    response = httpx.post(f"{ingest}/accounts", headers=alice, json={
        "email": me, "password": password, "imap_host": IMAP_HOST, "imap_port": IMAP_PORT,
        "security": "plain"})
    assert response.status_code == 202, response.text
    account_id = response.json()["account_id"]

    linked = kcat_read(linked_topic, 4)
    keys = [r["message_key"] for r in linked]
    assert len(keys) == 4 and len(set(keys)) == 4
    by_subject = {(r["subject"], r["direction"]): r for r in linked}
    newsletter = by_subject[("Our November newsletter", "incoming")]
    assert newsletter["person_ids"] == [] and newsletter["deal_id"] is None
    pricing = [r for r in linked if "Pricing" in r["subject"]]
    assert len({r["thread_id"] for r in pricing}) == 1  # one conversation across INBOX and Sent
    assert all(r["deal_id"] == "d-1" for r in pricing)    # the one open deal of the matched person
    assert {p for r in pricing for p in r["person_ids"]} == {"p-jan", "p-eva"}

    # The person's conversations from the query API: one thread, three messages, newest first, each once.
    view = httpx.get(f"{matcher}/persons/p-jan/conversations", headers=colleague).json()
    assert len(view["threads"]) == 1
    messages = view["threads"][0]["messages"]
    assert len(messages) == 3 and len({m["message_key"] for m in messages}) == 3
    assert [m["direction"] for m in messages] == ["incoming", "outgoing", "incoming"]  # newest first
    assert messages[-1]["subject"] == "Pricing for 50 seats"
    assert httpx.get(f"{matcher}/deals/d-1/conversations", headers=alice).json()["threads"]

    status = wait_for(lambda: httpx.get(f"{ingest}/accounts/{account_id}", headers=alice).json(),
                      lambda s: s["state"] == "synced")
    assert status["messages_synced"] == 4 and status["error"] is None
    assert {f["folder"]: f["synced"] for f in status["folders"]} == {"INBOX": 3, "Sent": 1}
    assert metric(ingest, "maillink_ingest_messages_total") == 4
    for url in (ingest, matcher):  # after real traffic, so every labelled series is there to lint
        assert promtool_check_metrics(httpx.get(f"{url}/metrics").text) == ""
    assert metric(matcher, "maillink_matcher_messages_linked_total") == 4
    assert httpx.get(f"{matcher}/healthz").json() == {"status": "ok", "checks": {"kafka": "ok", "store": "ok"}}

    # The claim-check: the raw MIME behind an event is served, byte for byte, by its owner: to a
    # trusted service with blobs:read, and to a viewer through the link the query API signed for them.
    service = bearer(token(None, "blobs:read", subject="crm-archive"))
    first = json.loads((await read_topic(KAFKA, received_topic, expect=4))[0].value)
    blob = httpx.get(f"{ingest}/blobs/{first['raw']['blob_id']}", headers=service)
    assert blob.status_code == 200 and hashlib.sha256(blob.content).hexdigest() == first["raw"]["blob_id"]
    assert httpx.get(f"{ingest}/blobs/{'0' * 64}", headers=service).status_code == 404
    link = messages[0]["raw_url"]
    assert link.startswith(f"{ingest}/blobs/") and "sig=" in link
    viewed = httpx.get(link, headers=colleague)
    assert viewed.status_code == 200 and hashlib.sha256(viewed.content).hexdigest() in link
    assert httpx.get(link, headers=alice).status_code == 403                       # made for u-other, not alice
    assert httpx.get(link.split("?")[0], headers=colleague).status_code == 403    # no link, no blob scope

    # 1) Re-run the sync from scratch: ingest's stored state deleted. 2) Redeliver every received event.
    # Deleted while ingest is stopped: a pass running at that moment saves the state it loaded before
    # the deletion, and that folder is then never synced again (a flaky 5 of 8 events in CI).
    client = mongo.connect(MONGODB_URL)
    try:
        services.stop("ingest")
        await client[f"{namespace.replace('.', '_')}maillink_ingest"]["folder_state"].delete_many({})
        services.start_again("ingest")
        services.wait_healthy()
        resynced = await read_topic(KAFKA, received_topic, expect=8, timeout=60)
        assert len(resynced) == 8  # ingest published everything a second time
        await produce(KAFKA, received_topic, [(r.key, r.value) for r in resynced[:4]])
        await wait_group_caught_up(KAFKA, group, received_topic, timeout=60)
        stored = await client[f"{namespace.replace('.', '_')}maillink_matcher"]["messages"].count_documents({})
    finally:
        await client.close()
    assert stored == 4
    assert len(kcat_read(linked_topic, 5, timeout=5)) == 4  # nothing duplicated downstream

    # A poison message is parked with its reason and blocks nothing behind it.
    await produce(KAFKA, received_topic, [(account_id.encode(), b'{"event_id": "broken"}')])
    append(IMAP_HOST, IMAP_PORT, me, password, "INBOX", [Mail(sender=eva, to=[me], subject="Budget approved",
                                                              body="Go ahead.", message_id="<b1@acme.cz>").to_bytes()])
    assert any(r["subject"] == "Budget approved" for r in kcat_read(linked_topic, 5))
    dead = kcat_read(f"{received_topic}.dlq", 1)
    assert dead[0]["error_type"] == "undecodable" and "occurred_at" in dead[0]["error"]


def test_account_api_refuses_unsafe_or_malformed_requests(services, token):
    ingest = services.running["ingest"].url
    user = bearer(token("u", "accounts:write", "accounts:read"))
    remote_plain = httpx.post(f"{ingest}/accounts", headers=user, json={
        "email": "a@example.com", "password": "p", "imap_host": "imap.example.com",
        "imap_port": 143, "security": "plain"})
    assert remote_plain.status_code == 422 and "only allowed to a local test server" in remote_plain.text
    bad_email = httpx.post(f"{ingest}/accounts", headers=user, json={"email": "not-an-address", "password": "p",
                                                                      "imap_host": "127.0.0.1"})
    assert bad_email.status_code == 422 and "email" in bad_email.text
    assert httpx.get(f"{ingest}/accounts/nope", headers=user).status_code == 404


def test_every_service_reports_health_and_a_dead_store_is_degraded(namespace, auth_env):
    procs = ServiceSet()
    base = 19000 + uuid.uuid4().int % 500 * 10
    env = {**auth_env, "MAILLINK_NAMESPACE": namespace, "KAFKA_BOOTSTRAP_SERVERS": KAFKA, "MONGODB_URL": MONGODB_URL,
           "MAILLINK_CREDENTIALS_KEY": Fernet.generate_key().decode()}
    try:
        for i, name in enumerate(("tracker", "outbound", "bcc_gateway")):
            procs.start(name, base + i, env, RUN_DIR / "e2e-logs" / namespace)
        procs.wait_healthy()
        for svc in procs.running.values():
            assert metric(svc.url, "python_info") == 1  # /metrics is valid Prometheus text
            assert promtool_check_metrics(httpx.get(f"{svc.url}/metrics").text) == "", svc.name
        dead = ServiceSet()
        dead.start("tracker", base + 7, {**env, "MONGODB_URL": "mongodb://127.0.0.1:1/"}, RUN_DIR / "e2e-logs" / namespace)
        try:
            health = wait_for(lambda: _health(f"http://127.0.0.1:{base + 7}"), lambda h: h is not None)
            status, body = health
            assert status == 503 and body["status"] == "degraded" and body["checks"]["kafka"] == "ok"
            assert body["checks"]["store"].startswith("unreachable")
        finally:
            dead.stop()
    finally:
        procs.stop()


def _health(url: str):
    try:
        response = httpx.get(f"{url}/healthz", timeout=10)
        return response.status_code, response.json()
    except httpx.HTTPError:
        return None
