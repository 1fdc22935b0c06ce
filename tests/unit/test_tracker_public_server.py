"""The lean public listener (entrypoints/public_server.py) over real TCP: the same answers as the
ASGI route (test_tracker_edge.py), its own HTTP/1.1 handling (keep-alive, pipelining in order,
HEAD, Connection: close, malformed and oversized requests, X-Forwarded-For only from a trusted
peer), and the open-redirect property through its parser (the long run of the fuzz is
test_tracker_redirect_fuzz.py against the same Edge)."""
import asyncio
import http.client
import os
import re
import socket
import threading
from urllib.parse import quote

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from maillink_schemas import tracking_token as tt
from maillink_tracker.entrypoints.public import GIF
from maillink_tracker.entrypoints.public_server import PublicServer, _Trust, client_address
from test_tracker_edge import EVIL, GOOD, KEY, MESSAGES, RING, make
from test_tracker_redirect_fuzz import VALID, token_texts

EXAMPLES = max(200, int(os.environ.get("TRACKER_FUZZ_EXAMPLES", "1500")) // 5)


class Running:
    """The listener on its own event loop in a thread, as in the service (one loop, many connections)."""

    def __init__(self, forwarded_allow_ips: str = "127.0.0.1") -> None:
        _, self.edge, self.hits, self.publisher = make()
        self.seen: list[str] = []
        click = self.edge.click

        async def recording_click(token, *args):
            self.seen.append(token)
            return await click(token, *args)

        self.edge.click = recording_click
        self.loop = asyncio.new_event_loop()
        self.server = PublicServer(self.edge, "127.0.0.1", 0, forwarded_allow_ips=forwarded_allow_ips)
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.port = asyncio.run_coroutine_threadsafe(self.server.start(), self.loop).result(10)

    def stop(self) -> None:
        asyncio.run_coroutine_threadsafe(self.server.stop(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)

    def raw(self, data: bytes, timeout: float = 5) -> bytes:
        """Sends `data`, returns everything the server answers until it closes or goes quiet."""
        with socket.create_connection(("127.0.0.1", self.port), timeout=timeout) as s:
            s.sendall(data)
            s.settimeout(0.5)
            chunks = []
            while True:
                try:
                    chunk = s.recv(65536)
                except TimeoutError:
                    break
                if not chunk:
                    break
                chunks.append(chunk)
            return b"".join(chunks)


@pytest.fixture(scope="module")
def server():
    running = Running()
    yield running
    running.stop()


def get(server: Running, path: str, method: str = "GET", headers: dict | None = None) -> http.client.HTTPResponse:
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=5)
    conn.request(method, path, headers=headers or {})
    response = conn.getresponse()
    response.body = response.read()
    conn.close()
    return response


def test_the_pixel_the_redirect_and_the_404(server):
    server.publisher.sent.clear()
    pixel = get(server, f"/o/{tt.mint(RING, KEY, 'open')}", headers={"User-Agent": "Mozilla/5.0 Firefox/133.0"})
    assert pixel.status == 200 and pixel.body == GIF and pixel.getheader("Content-Type") == "image/gif"
    assert "no-store" in pixel.getheader("Cache-Control") and pixel.getheader("Set-Cookie") is None
    assert pixel.getheader("Date")
    click = get(server, f"/c/{tt.mint(RING, KEY, 'click', 1)}")
    assert click.status == 302 and click.getheader("Location") == GOOD[1] and click.body == b""
    assert [(t, e["user_agent_family"]) for t, _, e in server.publisher.sent] == [("opened", "Firefox"),
                                                                                   ("clicked", "none")]
    for path in ("/", "/healthz", "/metrics", "/o/", "/o/x/y", f"/c/{tt.mint(RING, KEY, 'open')}",
                 f"/c/{tt.mint(RING, KEY, 'click', 9)}", f"/x/{tt.mint(RING, KEY, 'open')}",
                 "/messages/" + KEY + "/tracking"):
        response = get(server, path)
        assert response.status == 404 and response.body == b"Not found.\n", path
        assert response.getheader("Location") is None
    assert get(server, f"/o/{tt.mint(RING, KEY, 'open')}", method="POST").status == 404


def test_unsafe_registrations_and_encoded_tokens_never_redirect(server):
    for index in EVIL:
        response = get(server, f"/c/{tt.mint(RING, 'm-evil', 'click', index)}")
        assert response.status == 404 and response.getheader("Location") is None
    token = tt.mint(RING, KEY, "click", 0)
    encoded = "".join(f"%{ord(c):02X}" for c in token)  # not canonical: refused, not decoded
    assert get(server, f"/c/{encoded}").status == 404
    assert get(server, f"/c/{token}?next=//evil.example").getheader("Location") == GOOD[0]  # query ignored


def test_head_is_answered_without_a_body_and_not_counted(server):
    server.publisher.sent.clear()
    heads = len(server.hits.heads)
    answer = server.raw(f"HEAD /o/{tt.mint(RING, KEY, 'open')} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n".encode())
    assert answer.startswith(b"HTTP/1.1 200 OK\r\n") and b"Content-Length: 43\r\n" in answer
    assert answer.endswith(b"\r\n\r\n") and b"Connection: close\r\n" in answer  # no body after the head
    assert server.publisher.sent == [] and len(server.hits.heads) == heads + 1


def test_keep_alive_and_pipelined_requests_are_answered_in_order(server):
    pixel, click = f"/o/{tt.mint(RING, KEY, 'open')}", f"/c/{tt.mint(RING, KEY, 'click', 2)}"
    requests = b"".join(f"GET {p} HTTP/1.1\r\nHost: t\r\n\r\n".encode() for p in (pixel, "/nope", click, pixel))
    answer = server.raw(requests + f"GET {click} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n".encode())
    statuses = re.findall(rb"HTTP/1\.1 (\d{3}) ", answer)  # a GIF body runs straight into the next answer
    assert statuses == [b"200", b"404", b"302", b"200", b"302"]
    assert answer.count(GIF) == 2 and answer.count(f"Location: {GOOD[2]}\r\n".encode()) == 2
    # HTTP/1.0 without keep-alive: one answer, then the server closes.
    answer = server.raw(f"GET {pixel} HTTP/1.0\r\n\r\n".encode())
    assert answer.startswith(b"HTTP/1.1 200 OK") and answer.endswith(GIF) and b"Connection: close" in answer


def test_malformed_and_oversized_requests_are_refused_and_closed(server):
    assert server.raw(b"GARBAGE\r\n\r\n").startswith(b"HTTP/1.1 400 ")
    assert server.raw(b"GET /o/x\rHTTP/1.1\r\n\r\n").startswith(b"HTTP/1.1 400 ")
    big = b"GET /o/x HTTP/1.1\r\nHost: t\r\nX-Big: " + b"a" * 20000 + b"\r\n\r\n"
    assert server.raw(big).startswith(b"HTTP/1.1 431 ")
    # A header injected through the token never reaches the answer.
    answer = server.raw(b"GET /c/abc%0d%0aLocation:%20https://evil.example HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
    assert answer.startswith(b"HTTP/1.1 404 ") and b"evil" not in answer


def test_the_client_address_comes_from_x_forwarded_for_only_behind_a_trusted_proxy():
    loopback, anyone = _Trust("127.0.0.1"), _Trust("*")
    assert client_address("127.0.0.1", b"17.58.0.5", loopback) == "17.58.0.5"
    assert client_address("127.0.0.1", b"17.58.0.5, 127.0.0.1", loopback) == "17.58.0.5"
    assert client_address("203.0.113.9", b"17.58.0.5", loopback) == "203.0.113.9"  # not a trusted peer
    assert client_address("203.0.113.9", b"17.58.0.5", anyone) == "17.58.0.5"
    assert client_address("127.0.0.1", None, loopback) == "127.0.0.1"
    assert client_address("127.0.0.1", b"1.2.3.4, 5.6.7.8", _Trust("127.0.0.1, 5.6.7.0/24")) == "1.2.3.4"


def test_the_forwarded_address_is_what_gets_anonymised(server):
    server.publisher.sent.clear()
    get(server, f"/o/{tt.mint(RING, KEY, 'open')}", headers={"X-Forwarded-For": "198.51.100.23"})
    [(_, _, event)] = server.publisher.sent
    assert event["network"] == "198.51.100.0/24"


class Fuzz:
    cases = redirects = 0


@settings(max_examples=EXAMPLES, deadline=None, database=None, suppress_health_check=list(HealthCheck))
@given(text=token_texts(), endpoint=st.sampled_from(["/c/", "/o/", "/c//", "//c/", "/c/../c/"]),
       safe=st.sampled_from(["", "/", "/%", ":/?#[]@!$&'()*+,;=%", "%"]), method=st.sampled_from(["GET", "HEAD"]))
def test_no_redirect_through_the_listener_except_to_a_registered_url(server, text, endpoint, safe, method):
    Fuzz.cases += 1
    server.seen.clear()
    path = (endpoint + quote(text, safe=safe)).encode("utf-8", "surrogateescape")
    answer = server.raw(method.encode() + b" " + path + b" HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
    status = int(answer[9:12])
    head = answer.split(b"\r\n\r\n", 1)[0].decode("latin-1")
    location = [line[10:] for line in head.split("\r\n") if line.lower().startswith("location: ")]
    if 300 <= status < 400:
        Fuzz.redirects += 1
        [token] = server.seen
        assert status == 302 and VALID.get(token) is not None and location == [VALID[token]]
        assert VALID[token] in GOOD.values() or VALID[token] == MESSAGES["a" * 64][7]
    else:
        assert status in (200, 400, 404) and location == [], (path, status)


def test_zz_report_the_listener_fuzz():
    print(f"\npublic listener fuzz: {Fuzz.cases} cases over TCP, {Fuzz.redirects} redirects, all to registered URLs")
    assert Fuzz.cases >= min(EXAMPLES, 100)


class HeldPublisher:
    """The pixels' batches stay unacknowledged until the test settles them, in any order."""

    def __init__(self, loop):
        self.loop, self.held = loop, []

    def enqueue(self, topic, key, value):
        self.held.append(self.loop.create_future())
        return self.held[-1]

    async def publish(self, topic, key, value):
        return await self.enqueue(topic, key, value)


def test_a_pixel_is_answered_only_once_its_event_is_acknowledged_and_pipelined_answers_keep_their_order():
    running = Running()
    try:
        held = HeldPublisher(running.loop)
        running.edge._publisher = held
        pixel = f"/o/{tt.mint(RING, KEY, 'open')}"
        with socket.create_connection(("127.0.0.1", running.port), timeout=5) as s:
            s.sendall(b"".join(f"GET {p} HTTP/1.1\r\nHost: t\r\n\r\n".encode() for p in (pixel, "/nope", pixel, pixel)))
            s.settimeout(0.3)
            for _ in range(40):
                if len(held.held) >= 3:
                    break
                threading.Event().wait(0.05)
            with pytest.raises(TimeoutError):
                s.recv(65536)  # nothing before the first pixel's event is acknowledged

            def settle(i, value):
                running.loop.call_soon_threadsafe(held.held[i].set_result, value)

            settle(2, True)  # the last pixel first: it must still wait for the ones before it
            with pytest.raises(TimeoutError):
                s.recv(65536)
            settle(0, True)
            s.settimeout(2)
            answer = b""
            while answer.count(b"HTTP/1.1 ") < 2:
                answer += s.recv(65536)
            assert re.findall(rb"HTTP/1\.1 (\d{3}) ", answer) == [b"200", b"404"]
            settle(1, False)  # unacknowledged after the wait: answered anyway (counted as queued)
            while answer.count(b"HTTP/1.1 ") < 4:
                answer += s.recv(65536)
            assert re.findall(rb"HTTP/1\.1 (\d{3}) ", answer) == [b"200", b"404", b"200", b"200"]
            assert answer.count(GIF) == 3
    finally:
        running.stop()
