"""The public endpoints' decisions, through the real HTTP routes and the real Edge, with in-memory
stand-ins for the tracker's own store and publisher interfaces (the real ones are exercised by
tests/integration/test_tracker_service.py and the e2e browser test)."""
import asyncio
import json
from datetime import datetime, timedelta, timezone

import httpx
from fastapi import FastAPI

from maillink_schemas import tracking_token as tt
from maillink_tracker.adapters.registrations import Registration
from maillink_tracker.domain.classify import Lists, Windows
from maillink_tracker.edge import Edge, Topics
from maillink_tracker.entrypoints.public import GIF, PublicEndpoints

RING = tt.parse_keys("1:2020-01-01:unit-test-tracking-key-0123456789", timedelta(days=30))
MAX_AGE = timedelta(days=400)
SENT = datetime.now(timezone.utc) - timedelta(days=1)
GOOD = {0: "https://acme.example/offer?id=7", 1: "https://acme.example/pricing", 2: "http://docs.acme.example/a#b"}
# What a broken or hostile registration could hold; the edge must never redirect to any of it.
EVIL = {0: "javascript:alert(1)", 1: "//evil.example/", 2: "https://good.example\r\nSet-Cookie: a=b",
        3: "https://user@evil.example/", 4: "https:/evil.example", 5: "https://evil.example\\@good.example"}
MESSAGES = {"6495eefcada4258efd5dc52ae000a870": GOOD, "m-evil": EVIL, "a" * 64: {7: "https://long.example/"}}
# Outbound's tokens carry a tracking id; the registration maps it to the message key.
TRACKING_ID, TRACKED_KEY = "3f0c2b1e9d8a7f6e5d4c3b2a19087f6e", "9d2c7a41be08f3d6c5a4b3928170f6e5"


class FakeRegistrations:
    async def get(self, key: str) -> Registration | None:
        return self.cached(key)

    def cached(self, key: str) -> Registration | None:
        if key == TRACKING_ID:
            return Registration(TRACKED_KEY, "acc-2", "u-2", dict(GOOD), SENT, SENT)
        links = MESSAGES.get(key)
        return Registration(key, "acc-1", "u-1", dict(links), SENT, SENT) if links is not None else None


class FakeHits:
    def __init__(self):
        self.heads, self.past = [], ()

    async def history(self, _key):
        return self.past

    async def record_head(self, *args):
        self.heads.append(args)


class FakePublisher:
    def __init__(self):
        self.sent = []

    async def publish(self, topic, key, value):
        self.sent.append((topic, key, json.loads(value)))
        return True

    def enqueue(self, topic, key, value):
        self.sent.append((topic, key, json.loads(value)))
        answered = asyncio.get_running_loop().create_future()
        answered.set_result(True)
        return answered


def make(opened_before=True):
    hits, publisher = FakeHits(), FakePublisher()
    if opened_before:
        from maillink_tracker.domain.classify import Past
        hits.past = (Past("open", SENT + timedelta(hours=1)),)
    edge = Edge(RING, MAX_AGE, Lists(), Windows(), FakeRegistrations(), hits, publisher, Topics("opened", "clicked"))
    app = FastAPI()
    app.router.redirect_slashes = False
    app.add_middleware(PublicEndpoints, edge=edge)
    client = httpx.AsyncClient(transport=httpx.ASGITransport(app, client=("203.0.113.77", 5555)), base_url="http://t")
    return client, edge, hits, publisher


KEY = "6495eefcada4258efd5dc52ae000a870"


async def test_the_pixel_is_a_43_byte_gif_never_cached_never_a_cookie_and_one_event():
    client, _, _, publisher = make()
    response = await client.get(f"/o/{tt.mint(RING, KEY, 'open')}", headers={"User-Agent": "Mozilla/5.0 Firefox/133.0"})
    assert response.status_code == 200 and response.content == GIF and len(GIF) == 43
    assert response.headers["content-type"] == "image/gif" and "no-store" in response.headers["cache-control"]
    assert "set-cookie" not in response.headers
    [(topic, key, event)] = publisher.sent
    assert (topic, key) == ("opened", KEY.encode())
    assert event["network"] == "203.0.113.0/24" and event["user_agent_family"] == "Firefox"
    assert event["account_id"] == "acc-1" and event["classification"] == "human"
    assert "203.0.113.77" not in json.dumps(event) and "Firefox/133" not in json.dumps(event)


async def test_a_click_redirects_to_its_registered_url_only():
    client, _, _, publisher = make()
    for index, url in GOOD.items():
        response = await client.get(f"/c/{tt.mint(RING, KEY, 'click', index)}")
        assert response.status_code == 302 and response.headers["location"] == url
    assert [e["link_index"] for _, _, e in publisher.sent] == [0, 1, 2]
    assert (await client.get(f"/c/{tt.mint(RING, KEY, 'click', 3)}")).status_code == 404  # no such link
    assert (await client.get(f"/c/{tt.mint(RING, 'unknown-message', 'click', 0)}")).status_code == 404
    assert (await client.get(f"/c/{tt.mint(RING, KEY, 'open')}")).status_code == 404  # an open token is no click


async def test_a_tracking_id_token_counts_for_the_registered_message_key():
    client, _, hits, publisher = make()
    assert (await client.get(f"/o/{tt.mint(RING, TRACKING_ID, 'open')}")).status_code == 200
    response = await client.get(f"/c/{tt.mint(RING, TRACKING_ID, 'click', 1)}")
    assert response.status_code == 302 and response.headers["location"] == GOOD[1]
    assert [(topic, key, e["message_key"], e["tracking_id"], e["account_id"]) for topic, key, e in publisher.sent] == [
        ("opened", TRACKED_KEY.encode(), TRACKED_KEY, TRACKING_ID, "acc-2"),
        ("clicked", TRACKED_KEY.encode(), TRACKED_KEY, TRACKING_ID, "acc-2")]
    await client.head(f"/o/{tt.mint(RING, TRACKING_ID, 'open')}")
    assert hits.heads[-1][1] == TRACKED_KEY


async def test_unsafe_registered_urls_are_never_redirected_to():
    client, *_ = make()
    for index in EVIL:
        response = await client.get(f"/c/{tt.mint(RING, 'm-evil', 'click', index)}")
        assert response.status_code == 404 and response.text == "Not found.\n"
        assert response.headers["content-type"].startswith("text/plain") and "location" not in response.headers


async def test_head_is_answered_and_recorded_as_a_scanner_signal_not_counted():
    client, _, hits, publisher = make()
    response = await client.head(f"/c/{tt.mint(RING, KEY, 'click', 1)}", headers={"User-Agent": "Barracuda Sentinel (EE)"})
    assert response.status_code == 302 and response.headers["location"] == GOOD[1]
    pixel = await client.head(f"/o/{tt.mint(RING, KEY, 'open')}")
    assert pixel.status_code == 200
    assert publisher.sent == [] and len(hits.heads) == 2
    assert hits.heads[0][1:5] == (KEY, "click", 1, "203.0.113.0/24") and hits.heads[0][5] == "Barracuda"
    assert hits.heads[1][1:4] == (KEY, "open", -1)  # the pixel's HEAD is never taken for a link's


async def test_the_senders_own_views_are_answered_and_ignored():
    client, _, hits, publisher = make()
    assert (await client.get(f"/o/{tt.mint(RING, KEY, 'open', sender_view=True)}")).content == GIF
    response = await client.get(f"/c/{tt.mint(RING, KEY, 'click', 0, sender_view=True)}")
    assert response.status_code == 302 and response.headers["location"] == GOOD[0]
    assert publisher.sent == [] and hits.heads == []


async def test_forged_tampered_and_expired_tokens_get_a_plain_404():
    client, _, _, publisher = make()
    good = tt.mint(RING, KEY, "click", 0)
    other_ring = tt.parse_keys("1:2020-01-01:another-secret-entirely-012345", timedelta(days=30))
    old = tt.mint(RING, KEY, "click", 0, now=datetime.now(timezone.utc) - timedelta(days=500))
    for token in (good[:-1] + ("A" if good[-1] != "A" else "B"), tt.mint(other_ring, KEY, "click", 0), old,
                  "not-a-token-at-all-xxxxxxxx"):
        for prefix in ("/c/", "/o/"):
            response = await client.get(prefix + token)
            assert response.status_code == 404 and response.text == "Not found.\n", (prefix, token)
    assert publisher.sent == []


async def test_a_click_publishes_its_classification():
    client, _, _, publisher = make(opened_before=False)
    await client.get(f"/c/{tt.mint(RING, KEY, 'click', 0)}")
    assert publisher.sent[0][2]["classification"] == "machine"
    assert publisher.sent[0][2]["signals"] == ["click_without_open"]


async def test_when_kafka_is_slow_the_reader_still_gets_the_redirect():
    client, edge, _, _ = make()

    class Slow(FakePublisher):
        async def publish(self, topic, key, value):
            raise asyncio.TimeoutError  # what a broken producer could raise

    edge._publisher = Slow()
    response = await client.get(f"/c/{tt.mint(RING, KEY, 'click', 0)}")
    assert response.status_code == 302 and response.headers["location"] == GOOD[0]


class DownRegistrations:
    async def get(self, key):
        raise ConnectionError("store down")


class DownHits(FakeHits):
    async def history(self, _key):
        raise ConnectionError("store down")

    async def record_head(self, *args):
        raise ConnectionError("store down")


async def test_a_store_outage_costs_no_open_and_never_turns_into_a_redirect():
    client, edge, _, publisher = make()
    edge._registrations = DownRegistrations()
    pixel = await client.get(f"/o/{tt.mint(RING, KEY, 'open')}")
    assert pixel.status_code == 200 and pixel.content == GIF
    assert publisher.sent[0][2]["account_id"] is None  # counted, without the sender's name
    click = await client.get(f"/c/{tt.mint(RING, KEY, 'click', 0)}")
    assert click.status_code == 503 and "location" not in click.headers and click.text == "Try again shortly.\n"


async def test_without_the_history_the_history_rules_stay_silent():
    client, edge, _, publisher = make()
    edge._hits = DownHits()
    click = await client.get(f"/c/{tt.mint(RING, KEY, 'click', 0)}")
    assert click.status_code == 302 and click.headers["location"] == GOOD[0]
    assert publisher.sent[0][2]["classification"] == "human" and publisher.sent[0][2]["signals"] == []
    head = await client.head(f"/c/{tt.mint(RING, KEY, 'click', 0)}")
    assert head.status_code == 302  # the signal is lost, the answer is the same


def responses(status: int) -> float:
    from prometheus_client import REGISTRY
    return REGISTRY.get_sample_value("tracker_responses_total", {"status": str(status)}) or 0.0


async def test_answers_are_counted_by_status_and_a_failure_that_escapes_counts_as_500():
    client, edge, _, _ = make()
    before = {s: responses(s) for s in (200, 302, 404, 500, 503)}
    await client.get(f"/o/{tt.mint(RING, KEY, 'open')}")
    await client.get(f"/c/{tt.mint(RING, KEY, 'click', 0)}")
    await client.get("/o/forged-token")
    edge._registrations = DownRegistrations()
    await client.get(f"/c/{tt.mint(RING, KEY, 'click', 0)}")
    edge._keyring = None  # a bug: token verification itself blows up
    try:
        await client.get(f"/o/{tt.mint(RING, KEY, 'open')}")
    except Exception:  # noqa: BLE001 - the in-process transport re-raises what uvicorn would turn into a 500
        pass
    after = {s: responses(s) - before[s] for s in before}
    assert after == {200: 1, 302: 1, 404: 1, 500: 1, 503: 1}
