"""What happens to a message once DATA is complete: check, pick what to ingest, store, publish.

Order matters for at-least-once: the blob is durable before the event that references it is
published, and the SMTP reply is 250 only after the broker acknowledged the event (commit.py
does both for all messages accepted at the same moment). If anything
fails the reply is 451 and the sending server retries; the retry stores the same blob (same
content, same id) and publishes an event with the same id and message key, so nothing doubles.
"""
import hashlib
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import structlog
from prometheus_client import Counter, Histogram

from maillink_schemas.mime import parse

from .adapters.auth_checks import AuthChecker
from .adapters.directory import Directory
from .domain import refusals, senders
from .domain.authentication import judge
from .domain.forwards import original_of
from .domain.received import Filing, Received, received_bytes
from .domain.refusals import Refusal

log = structlog.get_logger()
Commit = Callable[[str, bytes, Received], Awaitable[None]]

REFUSED = Counter("maillink_bcc_refusals_total", "Mail refused by the Smart Bcc gateway", ["reason"])
ACCEPTED = Counter("maillink_bcc_accepted_total", "Mail accepted and published", ["kind"])
STAGE = Histogram("maillink_bcc_stage_seconds", "Time per step of accepting one message",
                  ["stage"], buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5))
AUTH = Counter("maillink_bcc_auth_results_total", "SPF/DKIM/DMARC results of checked mail", ["check", "result"])
# Labelled children looked up once (a labels() call takes a lock and a dict lookup; ~7 per message).
_AUTH_STAGE, _COMMIT_STAGE = STAGE.labels("auth"), STAGE.labels("commit")
_AUTH_RESULTS: dict[tuple[str, str], Counter] = {}
_ACCEPTED: dict[str, Counter] = {}


@dataclass(frozen=True)
class Arrival:
    peer_ip: str
    helo: str
    mail_from: str
    recipients: list[str]                     # as given at RCPT, all on the sender's company
    deal_id: str | None
    raw: bytes


@dataclass
class IntakeDeps:
    directory: Directory
    commit: Commit  # stores the blob, then publishes the event (commit.GroupCommit.commit)
    checker: AuthChecker | None = None


def refuse(refusal: Refusal, **context) -> str:
    REFUSED.labels(refusal.reason).inc()
    log.info("bcc_refused", reason=refusal.reason, code=refusal.code, **context)
    return refusal.reply


async def accept(arrival: Arrival, deps: IntakeDeps) -> Refusal | None:
    directory = deps.directory
    sender = directory.owner(arrival.mail_from)
    refusal = senders.check_envelope_sender(arrival.mail_from, sender)
    if refusal:
        return refusal
    parsed = parse(arrival.raw)
    from_addresses = [a.email for a in parsed.envelope.from_]
    refusal = senders.check_from(from_addresses, sender, directory.owner)
    if refusal:
        return refusal
    if deps.checker is not None:
        from_domains = [a.rpartition("@")[2] for a in from_addresses]
        domain = from_domains[0]
        started = time.perf_counter()
        try:
            results = await deps.checker.check(arrival.raw, arrival.peer_ip, arrival.mail_from, arrival.helo,
                                               from_domains)
        except Exception as exc:  # noqa: BLE001 - a failed check proves nothing either way: retry later
            log.error("bcc_auth_check_failed", error=repr(exc), mail_from=arrival.mail_from, peer=arrival.peer_ip)
            return refusals.authentication_unavailable(domain)
        _AUTH_STAGE.observe(time.perf_counter() - started)
        for labels in (("spf", results.spf), ("dkim", results.dkim), ("dmarc", results.dmarc)):
            counter = _AUTH_RESULTS.get(labels)
            if counter is None:
                counter = _AUTH_RESULTS[labels] = AUTH.labels(*labels)
            counter.inc()
        refusal = judge(results)
        if refusal:
            return refusal
    kind, raw = "bcc", arrival.raw
    # A forward is the user sending *to* the gateway: its address is in To or Cc. A Bcc copy never
    # shows the gateway there, and is the user's own message even when it forwards something.
    visible = {a.email for a in parsed.envelope.to + parsed.envelope.cc}
    if visible & {r.lower() for r in arrival.recipients}:
        found = original_of(arrival.raw)
        if found:
            kind, raw = f"forward_{found[0]}", found[1]
            parsed = parse(raw)
    filing = Filing(sender.user_id, sender.company_id, arrival.mail_from.lower(),
                    directory.own_addresses(sender.user_id), arrival.deal_id)
    blob_id = hashlib.sha256(raw).hexdigest()
    event = received_bytes(filing, raw, blob_id, parsed)
    try:
        started = time.perf_counter()
        await deps.commit(blob_id, raw, event)
        _COMMIT_STAGE.observe(time.perf_counter() - started)
    except Exception as exc:  # noqa: BLE001 - the sender retries on 451; nothing is lost
        log.error("bcc_store_failed", error=repr(exc), mail_from=arrival.mail_from, peer=arrival.peer_ip)
        return refusals.not_stored()
    accepted = _ACCEPTED.get(kind)
    if accepted is None:
        accepted = _ACCEPTED[kind] = ACCEPTED.labels(kind)
    accepted.inc()
    log.info("bcc_accepted", kind=kind, message_key=event.message_key, user_id=sender.user_id, peer=arrival.peer_ip,
             deal_hint=arrival.deal_id)
    return None
