"""The tracker as a real process on the real broker and store: registrations consumed into its own
collection, the stats API and its permissions, machine opens told apart through real requests,
milestones published once, and no counted request lost when the process is stopped under load."""
import asyncio
import json
import time
import uuid
from datetime import datetime, timedelta, timezone

import httpx
import pytest

from maillink_devtools.kafka_tools import produce, read_topic
from maillink_devtools.processes import ServiceSet
from maillink_schemas import tracking_token as tt
from maillink_schemas.tracking import TrackedLink, TrackingRegistered
from tests.conftest import KAFKA, MONGODB_URL, RUN_DIR, bearer

pytestmark = pytest.mark.e2e

GMAIL_PROXY = "Mozilla/5.0 (Windows NT 5.1; rv:11.0) Gecko Firefox/11.0 (via ggpht.com GoogleImageProxy)"
CHROME = ("Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 "
          "Safari/537.36")


def start_tracker(namespace: str, auth_env: dict, procs: ServiceSet, **extra: str) -> str:
    env = {**auth_env, "MAILLINK_NAMESPACE": namespace, "KAFKA_BOOTSTRAP_SERVERS": KAFKA, "MONGODB_URL": MONGODB_URL,
           **extra}
    port = 17000 + uuid.uuid4().int % 900 * 10 + 3
    svc = procs.start("tracker", port, env, RUN_DIR / "e2e-logs" / namespace)
    procs.wait_healthy()
    return svc.url


@pytest.fixture
def ring(auth_env) -> tt.Keyring:
    """The keys the tracker process gets (outbound would mint with the same)."""
    return tt.parse_keys(auth_env["MAILLINK_TRACKING_KEYS"], timedelta(days=30))


@pytest.fixture
def tracker(namespace, auth_env):
    procs = ServiceSet()
    url = start_tracker(namespace, auth_env, procs)
    yield url
    procs.stop()


def register(namespace: str, links: list[str], user: str = "u-sender", sent_ago: timedelta = timedelta(hours=1)) -> str:
    key = uuid.uuid4().hex
    event = TrackingRegistered(event_id=uuid.uuid4().hex, occurred_at=datetime.now(timezone.utc), message_key=key,
                               account_id="acc-1", user_id=user, recipients=["jan@acme.example"],
                               links=[TrackedLink(index=i, url=u) for i, u in enumerate(links)],
                               sent_at=datetime.now(timezone.utc) - sent_ago)
    asyncio.run(produce(KAFKA, f"{namespace}mail.tracking.registered.v1", [(key.encode(), event.model_dump_json().encode())]))
    return key


def wait_for(read, done, timeout: float = 30):
    deadline = time.monotonic() + timeout
    while True:
        value = read()
        if done(value) or time.monotonic() > deadline:
            return value
        time.sleep(0.3)


def stats(url: str, key: str, headers: dict) -> httpx.Response:
    return httpx.get(f"{url}/messages/{key}/tracking", headers=headers)


def events(namespace: str, name: str, expect: int | None = None) -> list[dict]:
    records = asyncio.run(read_topic(KAFKA, f"{namespace}mail.tracking.{name}.v1", expect=expect, timeout=20))
    return [json.loads(r.value) for r in records]


def test_registrations_stats_permissions_and_machine_opens(tracker, namespace, token, ring):
    sender = bearer(token("u-sender", "tracking:read"))
    key = register(namespace, ["https://acme.example/offer", "https://acme.example/pricing"])
    # The registration arrives through Kafka into the tracker's own collection.
    assert wait_for(lambda: stats(tracker, key, sender).status_code, lambda s: s == 200) == 200
    assert stats(tracker, key, {}).status_code == 401
    assert stats(tracker, key, bearer(token("u-other", "tracking:read"))).status_code == 403
    assert stats(tracker, key, bearer(token("u-sender", "mail:read"))).status_code == 403
    assert stats(tracker, "no-such-message", sender).status_code == 404

    pixel = f"{tracker}/o/{tt.mint(ring, key, 'open')}"
    # Apple MPP: the request comes from Apple's egress range (through the local proxy header, which
    # the server trusts from loopback only, as a load balancer in front of it would send it).
    assert httpx.get(pixel, headers={"X-Forwarded-For": "172.224.224.5", "User-Agent": "Mozilla/5.0"}).status_code == 200
    assert httpx.get(pixel, headers={"User-Agent": GMAIL_PROXY, "X-Forwarded-For": "66.249.84.10"}).status_code == 200
    assert httpx.head(pixel, headers={"User-Agent": CHROME}).status_code == 200
    assert httpx.get(f"{tracker}/o/{tt.mint(ring, key, 'open', sender_view=True)}").status_code == 200
    click = httpx.get(f"{tracker}/c/{tt.mint(ring, key, 'click', 1)}", headers={"User-Agent": CHROME})
    assert click.status_code == 302 and click.headers["location"] == "https://acme.example/pricing"
    bad = httpx.get(f"{tracker}/c/{tt.mint(ring, key, 'click', 5)}")
    assert bad.status_code == 404 and bad.text == "Not found.\n" and "location" not in bad.headers

    body = wait_for(lambda: stats(tracker, key, sender).json(), lambda b: b["opens_human"] + b["opens_machine"] == 2
                    and sum(c["human"] + c["machine"] for c in b["clicks"]) == 1)
    assert (body["opens_human"], body["opens_machine"], body["head_requests"]) == (1, 1, 1)
    assert body["signals"]["apple_mpp"] == 1 and body["signals"]["google_image_proxy"] == 1
    assert body["clicks"] == [{"link_index": 0, "url": "https://acme.example/offer", "human": 0, "machine": 0},
                              {"link_index": 1, "url": "https://acme.example/pricing", "human": 1, "machine": 0}]

    opened = events(namespace, "opened", expect=2)
    assert sorted(e["classification"] for e in opened) == ["human", "machine"]
    assert {e["network"] for e in opened} == {"172.224.224.0/24", "66.249.84.0/24"}
    assert all("172.224.224.5" not in json.dumps(e) for e in opened)
    milestones = events(namespace, "milestone", expect=2)
    assert sorted(m["milestone"] for m in milestones) == ["first_human_click", "first_human_open"]
    assert all(m["user_id"] == "u-sender" for m in milestones)

    # A second human open is counted, but "first human open" is not published again.
    httpx.get(pixel, headers={"User-Agent": CHROME})
    wait_for(lambda: stats(tracker, key, sender).json(), lambda b: b["opens_human"] == 2)
    assert len(events(namespace, "milestone", expect=3)) == 2


@pytest.mark.parametrize("listener", ["internal", "public"])
def test_no_counted_request_is_lost_when_the_process_stops_under_load(namespace, auth_env, ring, listener):
    # Both listeners: the ASGI route on the internal port, and the lean public listener, which
    # answers what it has read, then closes, before the producer flushes (entrypoints/public_server.py).
    procs = ServiceSet()
    public_port = 17000 + uuid.uuid4().int % 900 * 10 + 5
    extra = {"TRACKER_PUBLIC_PORT": str(public_port), "TRACKER_PUBLIC_HOST": "127.0.0.1"} if listener == "public" else {}
    url = start_tracker(namespace, auth_env, procs, TRACKER_AGGREGATE="false", **extra)
    key = register(namespace, ["https://acme.example/"])
    base = f"http://127.0.0.1:{public_port}" if listener == "public" else url
    pixel = f"{base}/o/{tt.mint(ring, key, 'open')}"
    answered, loaded = 0, None

    async def load() -> None:
        nonlocal answered
        async with httpx.AsyncClient(timeout=10) as client:
            async def one():
                nonlocal answered
                while True:
                    try:
                        if (await client.get(pixel)).status_code == 200:
                            answered += 1
                    except httpx.HTTPError:
                        return  # the server went away
            await asyncio.gather(*[one() for _ in range(20)])
        loaded.set()

    async def stop_midway() -> None:
        while answered < 50 and not loaded.is_set():  # under load, however slow the machine is
            await asyncio.sleep(0.05)
        await asyncio.to_thread(procs.stop)  # SIGTERM: uvicorn drains, then the producer flushes

    async def both():
        nonlocal loaded
        loaded = asyncio.Event()
        await asyncio.gather(load(), stop_midway())

    asyncio.run(both())
    assert answered >= 50
    opened = events(namespace, "opened", expect=answered)
    ids = [e["event_id"] for e in opened]
    # Every answered pixel has its event; an event without an answer is a request cut off in flight.
    assert len(ids) == len(set(ids))
    assert answered <= len(ids) <= answered + 20
