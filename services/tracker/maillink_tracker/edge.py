"""What the public endpoints do with a request, apart from HTTP: verify the token, decide whether
and how to count it, publish its one event, and say what to answer.

Order matters and is deliberate:
1. the token (pure HMAC check): anything forged, tampered, expired or unknown gets a 404;
2. the sender's own view: answered, never counted;
3. a click's target: only the URL registered for that message and link index, checked again by
   `safe_target`; no registration or no such link is a 404, never a redirect;
4. HEAD: answered like GET but recorded as a scanner signal, not as an open or click;
5. GET: classified, published (the answer waits for Kafka's ack, see adapters/publisher.py).
The full IP address lives only in this function's locals; events and records get its network.

`open_now` is the same decision for the pixel's common case without awaiting anything (the public
listener calls it from its parser callback): from a token verified earlier the same UTC day, a
cached registration and a verdict kept per network and user agent. When any of these must be
fetched, it answers None and the caller takes `open`.
"""
import asyncio
import itertools
import time
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Literal

import structlog
from prometheus_client import Counter

from maillink_schemas.tracking_token import Keyring, TokenClaims, read

from .adapters import event_bytes
from .adapters.hits import HitStore
from .adapters.publisher import EventPublisher
from .adapters.registrations import Registration, RegistrationStore
from .domain.classify import Context, Hit, Lists, Windows, classify
from .domain.networks import anonymise, parse_ip
from .domain.redirects import safe_target
from .domain.user_agents import family

log = structlog.get_logger()
REQUESTS = Counter("tracker_requests_total", "Public tracking requests by outcome", ["kind", "outcome"])

_COUNTERS: dict = {}  # (kind, outcome) -> the labelled counter, looked up once
Outcome = Literal["counted", "queued", "head", "sender_view", "not_found", "unpublished", "store_unavailable"]


@dataclass(frozen=True)
class Answer:
    found: bool
    location: str | None = None  # for clicks: the registered URL
    unavailable: bool = False  # the store could not be asked: 503, try again


NOT_FOUND = Answer(False)
PIXEL = Answer(True)
_FAST_CACHE = 50_000  # entries of each of open_now's caches (tokens; networks x user agents)
_KEPT_USER_AGENT = 512  # longer user agents (real ones are shorter) are classified every time, never kept
UNAVAILABLE = Answer(False, unavailable=True)


@dataclass(frozen=True)
class Topics:
    opened: str
    clicked: str


class Edge:
    def __init__(self, keyring: Keyring, max_age: timedelta, lists: Lists, windows: Windows,
                 registrations: RegistrationStore, hits: HitStore, publisher: EventPublisher, topics: Topics) -> None:
        self._keyring, self._max_age, self._lists, self._windows = keyring, max_age, lists, windows
        self._registrations, self._hits, self._publisher, self._topics = registrations, hits, publisher, topics
        # Event ids: unique per request, fixed before the first publish attempt, so the producer's
        # retries (idempotent) and any replay carry the same id.
        # A random 64-bit prefix per process and a counter: 32 hex characters like deterministic_id's,
        # without hashing on the hot path.
        self._instance = uuid.uuid4().hex[:16]
        self._seq = itertools.count()
        self._event_prefix = self._instance.encode()
        # The pixel's fast path (open_now): what it learnt, kept for the UTC day it learnt it on
        # (a token's validity and the keys' grace change only at midnight UTC, see tracking_token).
        self._day = -1
        self._opens: dict[str, tuple] = {}  # token -> (claims, registration, key, event head, event tail)
        self._verdicts: dict[tuple[str, bytes], bytes] = {}  # (network, user agent) -> the event's verdict part
        # Whole days only: a token's validity then cannot change within a UTC day.
        self._keep_tokens = (keyring.grace % timedelta(days=1) == timedelta(0)
                             and all(k.active_from.timestamp() % 86400 == 0 for k in keyring.keys))
        self._second, self._second_part = -1, b""

    def _claims(self, token: str, kind: str, now: datetime) -> TokenClaims | None:
        claims = read(self._keyring, token, max_age=self._max_age, now=now)
        return claims if claims is not None and claims.kind == kind else None

    async def open(self, token: str, method: str, user_agent: str, client_ip: str | None) -> Answer:
        now = datetime.now(timezone.utc)
        claims = self._claims(token, "open", now)
        if claims is None:
            return self._done("open", "not_found", NOT_FOUND)
        if claims.sender_view:
            return self._done("open", "sender_view", Answer(True))
        ip = parse_ip(client_ip)
        network = anonymise(ip) if ip else "unknown"
        registration = await self._registration_or_none(claims.message_key)
        message_key, tracking_id = _keys(claims, registration)
        if method == "HEAD":
            await self._head(claims, message_key, network, user_agent, now)
            return self._done("open", "head", Answer(True))
        verdict = classify(Hit("open", method, user_agent, ip, network, now), Context(), self._lists, self._windows)
        event = event_bytes.opened(
            self._event_id(), now, message_key, registration.account_id if registration else None,
            registration.user_id if registration else None, verdict.user_agent_family, network,
            verdict.classification, verdict.signals, tracking_id)
        return self._done("open", await self._publish(self._topics.opened, message_key, event), Answer(True))

    def open_now(self, token: str, user_agent: bytes, client_ip: str | None) -> "Answer | asyncio.Future | None":
        """A pixel GET decided without awaiting anything, for the public listener's hot path: the
        same outcome as `open()`, from what is already known (a verified token, a cached
        registration, the verdict for this client and user agent). Returns the answer when no
        event is due (a 404, the sender's view), the future of the event's batch when one is
        (answer with the pixel once it is done, after `open_settled(future)`), or None when
        something must be fetched first: then the caller uses `open()`."""
        ns = time.time_ns()
        second = ns // 1_000_000_000
        if second != self._second:
            if second // 86400 != self._day:
                self._day = second // 86400
                self._opens.clear()
            self._second, self._second_part = second, event_bytes.second_part(second)
        known = self._opens.get(token)
        if known is None:
            claims = self._claims(token, "open", datetime.fromtimestamp(second, timezone.utc))
            if claims is None:
                return self._done("open", "not_found", NOT_FOUND)  # never kept: forged tokens are unbounded
            known = (claims, None, b"", b"", b"")
        claims, registration = known[0], known[1]
        if claims.sender_view:
            self._remember(token, known)
            return self._done("open", "sender_view", PIXEL)
        cached = self._registrations.cached(claims.message_key)
        if cached is None:
            return None  # the store is asked first (open() fills the cache)
        if cached is not registration:
            message_key, tracking_id = _keys(claims, cached)
            head, tail = event_bytes.message_parts(message_key, cached.account_id, cached.user_id, tracking_id)
            known = (claims, cached, message_key.encode(), head, tail)
            self._remember(token, known)
        ip = parse_ip(client_ip)
        network = anonymise(ip) if ip else "unknown"
        verdict = self._verdicts.get((network, user_agent))
        if verdict is None:
            verdict = self._verdict_of(ip, network, user_agent)
        event = event_bytes.assemble(b"%s%016x" % (self._event_prefix, next(self._seq)), self._second_part,
                                     ns // 1000 % 1_000_000, known[3], verdict, known[4])
        try:
            answered = self._publisher.enqueue(self._topics.opened, known[2], event)
        except Exception as exc:  # noqa: BLE001 - the reader still gets the pixel
            log.error("tracking_event_unpublished", message_key=claims.message_key, error=repr(exc))
            return self._done("open", "unpublished", PIXEL)
        return answered  # None: the topic's partitions are not known yet; open() learns them

    def open_settled(self, answered: asyncio.Future) -> None:
        """Counts a pixel whose event's batch (from `open_now`) is done, as `open()` counts it."""
        exc = answered.exception()
        if exc is not None:
            log.error("tracking_event_unpublished", error=repr(exc))
            self._done("open", "unpublished", PIXEL)
        else:
            self._done("open", "counted" if answered.result() else "queued", PIXEL)

    def _remember(self, token: str, known: tuple) -> None:
        if not self._keep_tokens:
            return
        if len(self._opens) >= _FAST_CACHE:
            self._opens.clear()
        self._opens[token] = known

    def _verdict_of(self, ip, network: str, user_agent: bytes) -> bytes:
        # An open's verdict depends on the address and the user agent only (REQUEST_RULES; the
        # history rules are about clicks). It is kept per (network, user agent), never per address
        # (the full address is not kept past its request), and only where the range lists give
        # every address of the network the same answer.
        ua = user_agent.decode("latin-1")
        verdict = classify(Hit("open", "GET", ua, ip, network, datetime.now(timezone.utc)), Context(), self._lists,
                           self._windows)
        part = event_bytes.verdict_part(verdict.user_agent_family, network, verdict.classification, verdict.signals)
        if len(user_agent) <= _KEPT_USER_AGENT and (ip is None or (
                self._lists.apple.same_for_network(ip) and self._lists.rewriters.same_for_network(ip))):
            if len(self._verdicts) >= _FAST_CACHE:
                self._verdicts.clear()
            self._verdicts[(network, user_agent)] = part
        return part

    async def click(self, token: str, method: str, user_agent: str, client_ip: str | None) -> Answer:
        now = datetime.now(timezone.utc)
        claims = self._claims(token, "click", now)
        if claims is None:
            return self._done("click", "not_found", NOT_FOUND)
        try:
            registration = await self._registrations.get(claims.message_key)
        except Exception as exc:  # noqa: BLE001 - without the registration there is no target
            log.error("tracking_store_unavailable", message_key=claims.message_key, error=repr(exc))
            return self._done("click", "store_unavailable", UNAVAILABLE)
        target = safe_target(registration.links.get(claims.link_index)) if registration else None
        if target is None:
            return self._done("click", "not_found", NOT_FOUND)
        answer = Answer(True, target)
        if claims.sender_view:
            return self._done("click", "sender_view", answer)
        ip = parse_ip(client_ip)
        network = anonymise(ip) if ip else "unknown"
        message_key, tracking_id = _keys(claims, registration)
        if method == "HEAD":
            await self._head(claims, message_key, network, user_agent, now)
            return self._done("click", "head", answer)
        verdict = classify(Hit("click", method, user_agent, ip, network, now, claims.link_index),
                           await self._context(registration), self._lists, self._windows)
        event = event_bytes.clicked(
            self._event_id(), now, message_key, registration.account_id, registration.user_id,
            verdict.user_agent_family, network, verdict.classification, verdict.signals, tracking_id,
            claims.link_index, target)
        return self._done("click", await self._publish(self._topics.clicked, message_key, event), answer)

    async def _registration_or_none(self, message_key: str) -> Registration | None:
        # The pixel does not need the registration (it only names the sender in the event): a store
        # that is down must not cost the open.
        try:
            return await self._registrations.get(message_key)
        except Exception as exc:  # noqa: BLE001
            log.warning("tracking_registration_unreadable", message_key=message_key, error=repr(exc))
            return None

    async def _context(self, registration: Registration) -> Context:
        try:
            history = await self._hits.history(registration.message_key)
        except Exception as exc:  # noqa: BLE001 - the history rules stay silent (classify.Context)
            log.warning("tracking_history_unreadable", message_key=registration.message_key, error=repr(exc))
            history = None
        return Context(sent_at=registration.delivered_at, link_count=len(registration.links), history=history)

    async def _head(self, claims: TokenClaims, message_key: str, network: str, user_agent: str,
                    now: datetime) -> None:
        # The pixel's HEAD is recorded under link index -1, so it is never taken for a link's.
        index = claims.link_index if claims.kind == "click" else -1
        try:
            await self._hits.record_head(self._event_id(), message_key, claims.kind, index,
                                         network, family(user_agent), now)
        except Exception as exc:  # noqa: BLE001 - a signal lost; the answer is still the same
            log.warning("tracking_head_unrecorded", message_key=message_key, error=repr(exc))

    def _event_id(self) -> str:
        return f"{self._instance}{next(self._seq):016x}"

    async def _publish(self, topic: str, message_key: str, event: bytes) -> Outcome:
        """`event`: the contract's JSON (adapters/event_bytes.py), keyed by the message key."""
        try:
            acked = await self._publisher.publish(topic, message_key.encode(), event)
        except Exception as exc:  # noqa: BLE001 - the reader still gets the pixel or the redirect
            log.error("tracking_event_unpublished", message_key=message_key, error=repr(exc))
            return "unpublished"
        return "counted" if acked else "queued"

    @staticmethod
    def _done(kind: str, outcome: Outcome, answer: Answer) -> Answer:
        counter = _COUNTERS.get((kind, outcome))
        if counter is None:
            counter = _COUNTERS[(kind, outcome)] = REQUESTS.labels(kind, outcome)
        counter.inc()
        return answer


def _keys(claims: TokenClaims, registration: Registration | None) -> tuple[str, str | None]:
    """(the message key, the tracking id) an event carries. A token carries outbound's tracking id
    (or, minted by older code and tests, the message key itself); the registration maps it to the
    message key. Without the registration, only the token's id is known."""
    if registration is None or registration.message_key == claims.message_key:
        return claims.message_key, None
    return registration.message_key, claims.message_key
