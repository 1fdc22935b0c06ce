"""The metrics, read the way operators read them: Debian's real Prometheus scrapes the five
services (real processes) with maillink's alert rules loaded, N messages go from an IMAP mailbox
through ingest and matcher, and Prometheus' HTTP API must then report exactly N received and N
linked, every service up, no dead letter and the matcher's consumer lag back at 0; and the
tracker's answers, counted by status, match the requests sent to it."""
import json
import shutil
import socket
import subprocess
import time
import uuid
from datetime import datetime, timedelta, timezone

import httpx
import pytest
import yaml
from cryptography.fernet import Fernet

from maillink_devtools.imap_load import append
from maillink_devtools.mailgen import Mail
from maillink_devtools.processes import ServiceSet
from tests.conftest import IMAP_HOST, IMAP_PORT, KAFKA, MONGODB_URL, ROOT, RUN_DIR, bearer

pytestmark = pytest.mark.e2e
N = 20
DEPLOY_NAMES = {"ingest": "ingest", "matcher": "matcher", "tracker": "tracker", "outbound": "outbound",
                "bcc_gateway": "bcc-gateway"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def services(namespace, auth_env):
    base = 20100 + uuid.uuid4().int % 700 * 10
    env = {**auth_env, "MAILLINK_NAMESPACE": namespace, "KAFKA_BOOTSTRAP_SERVERS": KAFKA, "MONGODB_URL": MONGODB_URL,
           "MAILLINK_CREDENTIALS_KEY": Fernet.generate_key().decode(), "INGEST_POLL_INTERVAL_S": "1",
           "BCC_GATEWAY_SMTP_PORT": str(base + 9), "MATCHER_BLOB_URLS": json.dumps({"ingest": f"http://127.0.0.1:{base + 1}"})}
    procs, logs = ServiceSet(), RUN_DIR / "e2e-logs" / namespace
    try:
        for i, name in enumerate(DEPLOY_NAMES, start=1):
            procs.start(name, base + i, env, logs)
        procs.wait_healthy(timeout=90)
        yield procs
    finally:
        procs.stop()


@pytest.fixture
def prometheus(services, tmp_path):
    """Debian's prometheus, scraping every second, with deploy/prometheus/alerts.yml loaded."""
    config = {"global": {"scrape_interval": "1s", "evaluation_interval": "1s"}, "rule_files": ["alerts.yml"],
              "scrape_configs": [{"job_name": "maillink", "static_configs": [
                  {"targets": [f"127.0.0.1:{svc.port}"], "labels": {"service": DEPLOY_NAMES[name]}}
                  for name, svc in services.running.items()]}]}
    (tmp_path / "prometheus.yml").write_text(yaml.safe_dump(config))
    shutil.copy(ROOT / "deploy/prometheus/alerts.yml", tmp_path)
    port = free_port()
    log = open(tmp_path / "prometheus.log", "wb")
    proc = subprocess.Popen(["prometheus", f"--config.file={tmp_path / 'prometheus.yml'}",
                             f"--storage.tsdb.path={tmp_path / 'data'}", f"--web.listen-address=127.0.0.1:{port}"],
                            stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            assert proc.poll() is None, (tmp_path / "prometheus.log").read_text()[-3000:]
            try:
                if httpx.get(f"{url}/-/ready", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, "prometheus not ready"
            time.sleep(0.3)
        yield url
    finally:
        proc.terminate()
        proc.wait(30)
        log.close()


def query(url: str, promql: str) -> dict[tuple, float]:
    """An instant query through the HTTP API: {label values: value}."""
    body = httpx.get(f"{url}/api/v1/query", params={"query": promql}, timeout=10).json()
    assert body["status"] == "success", body
    return {tuple(sorted(r["metric"].items())): float(r["value"][1]) for r in body["data"]["result"]}


def scalar(url: str, promql: str) -> float | None:
    result = query(url, promql)
    return next(iter(result.values())) if result else None


def wait_for(read, done, timeout: float = 120):
    deadline = time.monotonic() + timeout
    while True:
        value = read()
        if done(value) or time.monotonic() > deadline:
            return value
        time.sleep(1)


def test_prometheus_counts_exactly_the_messages_sent_through(services, prometheus, namespace, mailbox, token):
    me, password = mailbox
    now = datetime.now(timezone.utc)
    mails = [Mail(sender=f"client{i}@acme.example", to=[me], subject=f"Order {i}", body=f"Message number {i}.",
                  message_id=f"<m{i}.{uuid.uuid4().hex}@acme.example>", date=now - timedelta(minutes=i)).to_bytes()
             for i in range(N)]
    assert append(IMAP_HOST, IMAP_PORT, me, password, "INBOX", mails) == N
    ingest = services.running["ingest"].url
    created = httpx.post(f"{ingest}/accounts", headers=bearer(token("u-prom", "accounts:write")), json={
        "email": me, "password": password, "imap_host": IMAP_HOST, "imap_port": IMAP_PORT, "security": "plain"})
    assert created.status_code == 202, created.text

    up = wait_for(lambda: query(prometheus, 'up{job="maillink"}'), lambda r: len(r) == 5 and all(v == 1 for v in r.values()))
    assert sorted(dict(k)["service"] for k in up) == sorted(DEPLOY_NAMES.values()) and set(up.values()) == {1}

    linked = wait_for(lambda: scalar(prometheus, 'sum(maillink_matcher_messages_linked_total{service="matcher"})'),
                      lambda v: v is not None and v >= N)
    received = scalar(prometheus, 'sum(maillink_ingest_messages_total{service="ingest"})')
    assert (received, linked) == (N, N)
    assert scalar(prometheus, 'sum(maillink_ingest_messages_total{service="ingest", direction="incoming"})') == N
    assert scalar(prometheus, 'sum(maillink_ingest_accounts{service="ingest", state="synced"})') == 1
    assert not any(query(prometheus, "maillink_messages_dead_lettered_total").values())

    group, topic = f"{namespace}maillink-matcher", f"{namespace}mail.message.received.v1"
    lag = wait_for(lambda: scalar(prometheus, f'sum(maillink_consumer_lag{{group="{group}", topic="{topic}"}})'),
                   lambda v: v == 0, timeout=60)
    assert lag == 0  # reported (not absent) and caught up
    tracker = services.running["tracker"].url
    for i in range(7):  # tokens that do not verify: a plain 404 each
        assert httpx.get(f"{tracker}/o/not-a-token-{i}").status_code == 404
    answered = wait_for(lambda: scalar(prometheus, 'sum(tracker_responses_total{service="tracker", status="404"})'),
                        lambda v: v == 7, timeout=30)
    assert answered == 7
    assert scalar(prometheus, 'sum(tracker_requests_total{service="tracker", outcome="not_found"})') == 7
    firing = httpx.get(f"{prometheus}/api/v1/alerts").json()["data"]["alerts"]
    assert [a["labels"]["alertname"] for a in firing if a["state"] == "firing"] == []
    time.sleep(3)  # a few more scrapes: the counters stay exactly at N (nothing counted twice)
    assert scalar(prometheus, 'sum(maillink_ingest_messages_total{service="ingest"})') == N
    assert scalar(prometheus, 'sum(maillink_matcher_messages_linked_total{service="matcher"})') == N
