"""The public listener: GET and HEAD on /o/{token} and /c/{token}, and nothing else, as a lean
asyncio protocol (httptools parses, the answers are bytes made once) on its own port.

Why not uvicorn: under wrk, uvicorn's ASGI layers (scope dicts, message dicts, header regexes,
per-request tasks and flow-control objects) cost more CPU per pixel than nginx's whole request
(docs/tracker.md, Benchmark). This listener does the same HTTP/1.1 work directly: keep-alive,
pipelining answered in order, HEAD without a body, `Connection: close`, X-Forwarded-For only from
trusted proxies, limits on header size and pipelined depth, idle connections closed.

It is the port to expose to the internet: it serves only the two public routes (listed in
maillink_runtime.auth.PUBLIC_ROUTES) and a plain 404 for everything else, so the stats API,
/metrics and /healthz stay on the internal port. Several processes may share the port
(SO_REUSEPORT): the edge keeps no state of its own.

What to answer is decided by `Edge` (edge.py), exactly as for the ASGI route (entrypoints/public.py):
the pixel, a 302 to the registered URL, a plain 404, or a plain 503.
"""
import asyncio
import ipaddress
import os
import time
from collections import deque
from email.utils import formatdate

import httptools
import structlog

from ..edge import Answer, Edge
from .public import GIF, NOT_FOUND_PAGE, UNAVAILABLE_PAGE

log = structlog.get_logger()

MAX_HEAD_BYTES = 16 * 1024  # request line + headers; more is refused (431) and the connection closed
MAX_PIPELINED = 32  # requests read ahead of their answers before reading pauses
IDLE_TIMEOUT_S = 15.0  # a keep-alive connection with nothing in flight is closed after this long

_NO_STORE = b"Cache-Control: no-store, no-cache, must-revalidate, max-age=0\r\n"


def _head(status: bytes, *lines: bytes) -> bytes:
    return b"HTTP/1.1 " + status + b"\r\n" + b"".join(lines) + _NO_STORE


# Everything but the Date line and the end of the head, made once.
_PIXEL = _head(b"200 OK", b"Content-Type: image/gif\r\n", b"Content-Length: %d\r\n" % len(GIF))
_NOT_FOUND = _head(b"404 Not Found", b"Content-Type: text/plain; charset=utf-8\r\n",
                   b"Content-Length: %d\r\n" % len(NOT_FOUND_PAGE))
_UNAVAILABLE = _head(b"503 Service Unavailable", b"Content-Type: text/plain; charset=utf-8\r\n",
                     b"Content-Length: %d\r\n" % len(UNAVAILABLE_PAGE), b"Retry-After: 5\r\n")
_REDIRECT = b"HTTP/1.1 302 Found\r\nContent-Length: 0\r\n" + _NO_STORE
_BAD = {400: b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
        431: b"HTTP/1.1 431 Request Header Fields Too Large\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"}
_CLOSE = b"Connection: close\r\n"


class _Clock:
    """The Date header, formatted once a second rather than per request."""

    def __init__(self) -> None:
        self.second, self.line = 0, b""
        self._pixels: tuple[bytes, bytes] = (b"", b"")

    def date_line(self) -> bytes:
        now = int(time.time())
        if now != self.second:
            self.second, self.line = now, b"Date: " + formatdate(now, usegmt=True).encode() + b"\r\n"
            # The pixel's whole answer, (Connection: close, keep-alive), made once a second.
            self._pixels = (_PIXEL + _CLOSE + self.line + b"\r\n" + GIF, _PIXEL + self.line + b"\r\n" + GIF)
        return self.line

    def pixel(self, keep_alive: bool) -> bytes:
        self.date_line()
        return self._pixels[keep_alive]


def trusted_proxies(spec: str | None = None) -> tuple[bool, tuple]:
    """Which peers may say who the client is (X-Forwarded-For): uvicorn's FORWARDED_ALLOW_IPS,
    same meaning and default (loopback), so both listeners agree. Returns (trust everyone, networks)."""
    spec = os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1") if spec is None else spec
    items = [item.strip() for item in spec.split(",") if item.strip()]
    if "*" in items:
        return True, ()
    networks = []
    for item in items:
        try:
            networks.append(ipaddress.ip_network(item, strict=False))
        except ValueError:
            log.warning("forwarded_allow_ips_item_ignored", item=item)  # e.g. a unix socket path
    return False, tuple(networks)


class _Trust:
    def __init__(self, spec: str | None = None) -> None:
        self.everyone, self.networks = trusted_proxies(spec)
        self._cache: dict[str, bool] = {}

    def __call__(self, host: str) -> bool:
        if self.everyone:
            return True
        known = self._cache.get(host)
        if known is None:
            try:
                address = ipaddress.ip_address(host)
                known = any(address in network for network in self.networks)
            except ValueError:
                known = False
            if len(self._cache) > 10_000:
                self._cache.clear()
            self._cache[host] = known
        return known


def client_address(peer: str | None, forwarded_for: bytes | None, trusted: _Trust) -> str | None:
    """The client: the peer, unless the peer is a trusted proxy, then the nearest address in
    X-Forwarded-For that is not itself a trusted proxy (uvicorn's rule)."""
    if not forwarded_for or peer is None or not trusted(peer):
        return peer
    hops = [hop.strip() for hop in forwarded_for.decode("latin-1").split(",")]
    for hop in reversed(hops):
        if hop and not trusted(hop):
            return hop
    return hops[0] or peer


class _Request:
    __slots__ = ("method", "path", "user_agent", "forwarded_for", "keep_alive")


class _Slot:
    """One request's place in its connection's answer order. `waiting`: None (the answer is
    `response`), the future of the pixel's event batch (Edge.open_now: answered with the pixel once
    it is done), or the task of the general path (its result is the answer)."""
    __slots__ = ("waiting", "response", "keep_alive", "settle")

    def __init__(self, waiting, response: bytes, keep_alive: bool, settle=None) -> None:
        self.waiting, self.response, self.keep_alive, self.settle = waiting, response, keep_alive, settle


class PublicProtocol(asyncio.Protocol):
    """One connection. Requests are parsed as bytes arrive and answered strictly in order.

    The pixel's common case runs inside the parser's callback, with no task or coroutine: the
    token, the registration and the verdict are already known (Edge.open_now), the event is appended
    to its batch, and the answer is written from a callback when the batch is acknowledged. Anything
    else (a first sight of a token, HEAD, clicks) runs as a task through Edge.open / Edge.click.
    Either way the answer takes its place in `_slots`, which is written in request order."""

    def __init__(self, server: "PublicServer") -> None:
        self._server, self._edge = server, server.edge
        self._parser = httptools.HttpRequestParser(self)
        self._transport: asyncio.Transport | None = None
        self._peer: str | None = None
        self._slots: deque[_Slot] = deque()
        self._paused = False
        self._closing = False
        self._url = b""
        self._ua: bytes = b""
        self._xff: bytes | None = None
        self._head_bytes = 0
        self.last_active = time.monotonic()

    # asyncio.Protocol
    def connection_made(self, transport) -> None:
        self._transport = transport
        peer = transport.get_extra_info("peername")
        self._peer = peer[0] if peer else None
        self._server.connections.add(self)

    def connection_lost(self, exc) -> None:
        self._closing = True
        self._server.connections.discard(self)

    def data_received(self, data: bytes) -> None:
        self.last_active = time.monotonic()
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            self._refuse(400)
        except httptools.HttpParserError:  # httptools wraps what a callback raises (_TooLarge) in it
            self._refuse(431 if self._head_bytes > MAX_HEAD_BYTES else 400)

    # httptools callbacks
    def on_message_begin(self) -> None:
        self._url, self._ua, self._xff, self._head_bytes = b"", b"", None, 0

    def on_url(self, url: bytes) -> None:
        self._url += url
        self._count(len(url))

    def on_header(self, name: bytes, value: bytes) -> None:
        self._count(len(name) + len(value))
        lower = name.lower()
        if lower == b"user-agent":
            self._ua = value
        elif lower == b"x-forwarded-for":
            self._xff = value if self._xff is None else self._xff + b"," + value

    def on_message_complete(self) -> None:
        if self._closing:
            return
        method = self._parser.get_method()
        path = self._url.split(b"?", 1)[0]
        # While the listener stops, what was read is still answered, then the connection closes.
        keep_alive = self._parser.should_keep_alive() and not self._server.stopping
        slot = None
        if method == b"GET" and path[:3] == b"/o/" and len(path) > 3 and b"/" not in path[3:]:
            client = client_address(self._peer, self._xff, self._server.trusted)
            decided = self._edge.open_now(path[3:].decode("latin-1"), self._ua, client)
            if isinstance(decided, asyncio.Future):
                slot = _Slot(decided, b"", keep_alive, self._edge.open_settled)
            elif decided is not None:
                slot = _Slot(None, self._answer_now(decided, keep_alive), keep_alive)
        if slot is None:
            request = _Request()
            request.method, request.path = method, path
            request.user_agent, request.forwarded_for, request.keep_alive = self._ua, self._xff, keep_alive
            slot = _Slot(self._server.spawn(self._answer(request)), b"", keep_alive)
        self._slots.append(slot)
        if len(self._slots) >= MAX_PIPELINED and not self._paused:
            self._paused = True
            self._transport.pause_reading()
        if slot.waiting is None:
            self._write_ready()
        else:
            slot.waiting.add_done_callback(self._on_done)

    def _count(self, n: int) -> None:
        self._head_bytes += n
        if self._head_bytes > MAX_HEAD_BYTES:
            raise _TooLarge

    def _refuse(self, status: int) -> None:
        if not self._closing:
            self._closing = True
            self._transport.write(_BAD[status])
            self._transport.close()

    def _on_done(self, _future) -> None:
        self._write_ready()

    def _write_ready(self) -> None:
        """Writes the answers that are ready, in request order, up to the first that is not; counts
        each pixel as its batch settles, even when the connection has gone meanwhile."""
        slots = self._slots
        while slots:
            slot = slots[0]
            waiting = slot.waiting
            if waiting is not None and not waiting.done():
                break
            slots.popleft()
            response = slot.response
            if slot.settle is not None:
                slot.settle(waiting)
                response = self._server.clock.pixel(slot.keep_alive)
            elif waiting is not None:
                exc = waiting.exception() if not waiting.cancelled() else asyncio.CancelledError()
                if exc is not None:  # one connection's failure must not leak; it is closed
                    log.error("public_request_failed", error=repr(exc))
                    self.close()
                    continue
                response = waiting.result()
            if self._closing:
                continue
            self._transport.write(response)
            if not slot.keep_alive:
                self._closing = True
                self._transport.close()
            self.last_active = time.monotonic()
        if self._paused and len(slots) < MAX_PIPELINED // 2 and not self._closing:
            self._paused = False
            self._transport.resume_reading()

    def _answer_now(self, answer: Answer, keep_alive: bool) -> bytes:
        if answer.found:
            return self._server.clock.pixel(keep_alive)
        return _NOT_FOUND + self._ending(keep_alive) + NOT_FOUND_PAGE

    def _ending(self, keep_alive: bool) -> bytes:
        return (b"" if keep_alive else _CLOSE) + self._server.clock.date_line() + b"\r\n"

    async def _answer(self, request: _Request) -> bytes:
        path, method = request.path, request.method
        head_only = method == b"HEAD"
        ending = self._ending(request.keep_alive)
        # The same shape as the ASGI route: one non-empty segment after /o/ or /c/, nothing else.
        # The path is not percent-decoded: a token is base64url, and an encoded one is not canonical.
        if (len(path) > 3 and path[0] == 47 and path[2] == 47 and path[1] in b"oc" and b"/" not in path[3:]
                and (head_only or method == b"GET")):
            token = path[3:].decode("latin-1")
            user_agent = request.user_agent.decode("latin-1")
            client = client_address(self._peer, request.forwarded_for, self._server.trusted)
            if path[1] == 111:  # "o"
                answer: Answer = await self._edge.open(token, method.decode(), user_agent, client)
                if answer.found:
                    return _PIXEL + ending + (b"" if head_only else GIF)
            else:
                answer = await self._edge.click(token, method.decode(), user_agent, client)
                if answer.found and answer.location is not None:
                    location = answer.location.encode("ascii")
                    # safe_target() admitted printable ASCII only; checked again here because a
                    # header line is built from it.
                    if location.isascii() and all(32 < c < 127 for c in location):
                        return _REDIRECT + b"Location: " + location + b"\r\n" + ending
                if answer.unavailable:
                    return _UNAVAILABLE + ending + (b"" if head_only else UNAVAILABLE_PAGE)
        return _NOT_FOUND + ending + (b"" if head_only else NOT_FOUND_PAGE)

    def pending(self) -> list:
        return [slot.waiting for slot in self._slots if slot.waiting is not None and not slot.waiting.done()]

    def close(self) -> None:
        if not self._closing:
            self._closing = True
            self._transport.close()

    def close_if_idle(self, now: float, idle_s: float) -> None:
        if not self._slots and now - self.last_active > idle_s and not self._closing:
            self._closing = True
            self._transport.close()


class _TooLarge(Exception):
    pass


class PublicServer:
    """Owns the listening socket, the open connections and the requests in flight."""

    def __init__(self, edge: Edge, host: str, port: int, *, reuse_port: bool = True,
                 idle_timeout_s: float = IDLE_TIMEOUT_S, forwarded_allow_ips: str | None = None) -> None:
        self.edge, self.host, self.port, self._reuse_port = edge, host, port, reuse_port
        self.clock, self.trusted = _Clock(), _Trust(forwarded_allow_ips)
        self.connections: set[PublicProtocol] = set()
        self._tasks: set[asyncio.Task] = set()
        self.stopping = False
        self._idle_timeout_s = idle_timeout_s
        self._server: asyncio.base_events.Server | None = None
        self._sweeper: asyncio.Task | None = None

    async def start(self) -> int:
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(lambda: PublicProtocol(self), self.host, self.port,
                                                reuse_port=self._reuse_port, backlog=4096)
        self.port = self._server.sockets[0].getsockname()[1]
        self._sweeper = asyncio.create_task(self._sweep())
        log.info("public_listener_started", host=self.host, port=self.port)
        return self.port

    def spawn(self, coro) -> asyncio.Task:
        """A request's task (the general path); kept so that stop() can wait for what is in flight."""
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def stop(self, drain_s: float = 10.0) -> None:
        """No new connections; requests already read are answered (their events published) before
        the caller stops the publisher; then every connection is closed."""
        if self._server is None:
            return
        self.stopping = True
        self._server.close()
        for connection in list(self.connections):
            connection.close_if_idle(float("inf"), 0.0)
        if self._sweeper is not None:
            self._sweeper.cancel()
        deadline = time.monotonic() + drain_s
        while time.monotonic() < deadline:
            # The general path's tasks and the pixels' batches: the caller stops the publisher
            # only once what was read has been answered.
            pending = set(self._tasks).union(*(c.pending() for c in self.connections))
            if not pending:
                break
            await asyncio.wait(pending, timeout=max(0.0, deadline - time.monotonic()))
            await asyncio.sleep(0)  # the answers' callbacks run
        for connection in list(self.connections):
            connection.close()
        self._server = None

    async def _sweep(self) -> None:
        while True:
            await asyncio.sleep(min(self._idle_timeout_s / 3, 5.0))
            now = time.monotonic()
            for connection in list(self.connections):
                connection.close_if_idle(now, self._idle_timeout_s)

