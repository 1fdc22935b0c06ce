"""The pixel's fast path (Edge.open_now, used by the public listener): the same answer and the same
event as the general path (Edge.open), and what it may keep between requests (verified tokens,
registrations, verdicts per network and user agent, never per address)."""
import asyncio
import json
from datetime import timedelta

import pytest

from maillink_schemas import tracking_token as tt
from maillink_tracker.domain.classify import Lists, Windows
from maillink_tracker.domain.networks import NetworkSet
from maillink_tracker.edge import NOT_FOUND, PIXEL, Edge, Topics
from test_tracker_edge import KEY, MAX_AGE, RING, TRACKED_KEY, TRACKING_ID, FakeHits, FakePublisher, FakeRegistrations

# 203.0.113.0/24 is split: only its /28 at .16 is "Apple"; 198.51.100.0/24 is Apple as a whole.
APPLE = NetworkSet.of([("203.0.113.16/28", "apple"), ("198.51.100.0/24", "apple")])
UA = b"Mozilla/5.0 (Macintosh) AppleWebKit/605.1.15 (KHTML, like Gecko)"


class CountingRegistrations(FakeRegistrations):
    """Returns the same object for a key, as the real cache does; `known` is what is cached."""

    def __init__(self):
        self.known, self.fetched = {}, 0

    async def get(self, key):
        self.fetched += 1
        self.known[key] = FakeRegistrations.cached(self, key)
        return self.known[key]

    def cached(self, key):
        return self.known.get(key)


def edge(apple: NetworkSet = APPLE, ring=RING) -> tuple[Edge, CountingRegistrations, FakePublisher]:
    registrations, publisher = CountingRegistrations(), FakePublisher()
    return (Edge(ring, MAX_AGE, Lists(apple=apple), Windows(), registrations, FakeHits(), publisher,
                 Topics("opened", "clicked")), registrations, publisher)


def comparable(event: dict) -> dict:
    return {k: v for k, v in event.items() if k not in ("event_id", "occurred_at")}


@pytest.mark.parametrize("message,client", [
    (KEY, "192.0.2.10"), (KEY, "198.51.100.7"), (KEY, "203.0.113.20"), (KEY, "203.0.113.40"),
    (TRACKING_ID, "2001:db8::1"), (KEY, None), (KEY, "::ffff:198.51.100.9")])
async def test_the_fast_path_publishes_the_general_paths_event(message, client):
    fast, registrations, published = edge()
    token = tt.mint(RING, message, "open")
    assert fast.open_now(token, UA, client) is None  # the registration is fetched first
    assert await fast.open(token, "GET", UA.decode(), client) == PIXEL
    answered = fast.open_now(token, UA, client)
    assert isinstance(answered, asyncio.Future) and answered.result() is True
    (_, key1, general), (_, key2, quick) = published.sent
    assert key1 == key2 == (TRACKED_KEY if message == TRACKING_ID else KEY).encode()
    assert comparable(quick) == comparable(general)
    assert quick["event_id"] != general["event_id"] and quick["occurred_at"] >= general["occurred_at"]
    assert registrations.fetched == 1


async def test_a_verdict_is_kept_per_network_only_where_every_address_of_it_gets_the_same():
    fast, registrations, published = edge()
    token = tt.mint(RING, KEY, "open")
    await fast.open(token, "GET", UA.decode(), "192.0.2.1")
    # In the split network, addresses inside and outside Apple's /28 alternate: each is judged anew.
    for client in ("203.0.113.17", "203.0.113.99", "203.0.113.18", "203.0.113.100"):
        fast.open_now(token, UA, client)
    assert [e["signals"] for _, _, e in published.sent[1:]] == [["apple_mpp"], [], ["apple_mpp"], []]
    assert all(e["network"] == "203.0.113.0/24" for _, _, e in published.sent[1:])
    assert all(key[0] != "203.0.113.0/24" for key in fast._verdicts)
    fast.open_now(token, UA, "198.51.100.1")
    fast.open_now(token, UA, "198.51.100.200")  # the whole /24 is Apple's: kept, and right for both
    assert [e["signals"] for _, _, e in published.sent[-2:]] == [["apple_mpp"], ["apple_mpp"]]
    # What is kept names networks, never an address.
    assert all("/" in network for network, _ in fast._verdicts) and ("198.51.100.0/24", UA) in fast._verdicts
    long_agent = b"x" * 600  # a request may carry up to 16 KiB of headers: such user agents are not kept
    fast.open_now(token, long_agent, "192.0.2.1")
    assert published.sent[-1][2]["user_agent_family"] == "other" and ("192.0.2.0/24", long_agent) not in fast._verdicts


async def test_forged_and_sender_view_tokens_are_answered_at_once_without_an_event():
    fast, registrations, published = edge()
    good = tt.mint(RING, KEY, "open")
    forged = good[:-2] + ("AA" if good[-2:] != "AA" else "BA")
    assert fast.open_now(forged, UA, "192.0.2.1") is NOT_FOUND
    assert fast.open_now(tt.mint(RING, KEY, "click", 0), UA, "192.0.2.1") is NOT_FOUND  # a click token is no pixel
    assert fast.open_now(tt.mint(RING, KEY, "open", sender_view=True), UA, "192.0.2.1") == PIXEL
    assert published.sent == [] and registrations.fetched == 0
    assert forged not in fast._opens  # refused tokens are not kept


async def test_an_expired_token_is_refused_even_after_it_was_verified_on_an_earlier_day():
    fast, registrations, _ = edge()
    token = tt.mint(RING, KEY, "open")
    await fast.open(token, "GET", UA.decode(), "192.0.2.1")
    assert isinstance(fast.open_now(token, UA, "192.0.2.1"), asyncio.Future) and token in fast._opens
    fast._day -= 1  # as if what it knows had been learnt yesterday: today it is verified again
    fast._second = -1
    fast._max_age = timedelta(days=-2)  # and today the token is too old
    assert fast.open_now(token, UA, "192.0.2.1") is NOT_FOUND


async def test_a_keyring_with_a_grace_of_part_of_a_day_keeps_no_token():
    ring = tt.Keyring(RING.keys, timedelta(hours=36))
    fast, _, published = edge(ring=ring)
    token = tt.mint(ring, KEY, "open")
    await fast.open(token, "GET", UA.decode(), "192.0.2.1")
    assert isinstance(fast.open_now(token, UA, "192.0.2.1"), asyncio.Future)
    assert fast._opens == {} and len(published.sent) == 2


def counted(outcome: str) -> float:
    from prometheus_client import REGISTRY
    return REGISTRY.get_sample_value("tracker_requests_total", {"kind": "open", "outcome": outcome}) or 0.0


async def test_each_pixel_is_counted_as_its_batch_settles():
    fast, _, _ = edge()
    loop = asyncio.get_running_loop()
    before = {o: counted(o) for o in ("counted", "queued", "unpublished")}
    for result in (True, False, ConnectionError("gone")):
        answered = loop.create_future()
        answered.set_exception(result) if isinstance(result, Exception) else answered.set_result(result)
        fast.open_settled(answered)
    assert {o: counted(o) - before[o] for o in before} == {"counted": 1, "queued": 1, "unpublished": 1}


def test_same_for_network():
    from ipaddress import ip_address
    assert not APPLE.same_for_network(ip_address("203.0.113.200"))
    assert APPLE.same_for_network(ip_address("198.51.100.200")) and APPLE.same_for_network(ip_address("192.0.2.1"))
    v6 = NetworkSet.of([("2001:db8:1:2::/64", "x"), ("2001:db9::/32", "y")])
    assert not v6.same_for_network(ip_address("2001:db8:1:ffff::1"))
    assert v6.same_for_network(ip_address("2001:db9:5::1")) and v6.same_for_network(ip_address("2001:db8:2::1"))
