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
"""
import itertools
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
