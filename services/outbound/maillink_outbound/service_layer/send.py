"""Drives one send request through its states (domain/states.py), exactly once.

- The Message-ID is fixed by the request id; `sending` is entered by a claim (with the message key
  and a lease) while MAIL and RCPT are exchanged, and DATA starts only once it is recorded.
- A request in `sending` whose lease ran out (its sender died) goes to recovery.py, never straight
  back to SMTP.
- Where the provider does not file sent mail, the 250 is recorded before the Sent copy is appended,
  so a crash after that point is repaired by appending, not by resending.
"""
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

import structlog
from prometheus_client import Counter

from maillink_schemas.base import deterministic_id, utcnow
from maillink_schemas.accounts import AccountConfigured
from maillink_schemas.outbound import SendRequested, SendState as S, SentCopy
from maillink_schemas.providers import ProviderPreset, preset as preset_of
from maillink_schemas.tracking import TrackingRegistered

from ..adapters.smtp import SmtpFailure
from ..adapters.system_sender import SYSTEM
from .deps import SendDeps
from .outcomes import append_copy, cancel_request, crash_point, fail, files_sent_mail, finish_sent  # noqa: F401
from .prepare import Prepared, Unsendable, build, load, store_uploads
from .recovery import recover
from .sender import sender_account

log = structlog.get_logger()
RETRIES = Counter("maillink_outbound_retries_total", "Send attempts retried after a transient error")


def new_request(cmd: SendRequested, grace_s: float) -> dict:
    now = utcnow()
    scheduled = cmd.send_at is not None and cmd.send_at > now
    return {"_id": cmd.request_id, "account_id": cmd.account_id, "user_id": cmd.user_id,
            "state": (S.SCHEDULED if scheduled else S.PENDING).value,
            "due_at": cmd.send_at if scheduled else now + timedelta(seconds=grace_s),
            "command": cmd.model_dump(mode="json", by_alias=True), "attempts": 0}


async def accept(cmd: SendRequested, deps: SendDeps) -> dict:
    """Stores the request (once per request id) and returns its stored document."""
    try:
        cmd = await store_uploads(cmd, deps.stores.uploads)
    except Unsendable:
        pass  # stored as it is; the attempt fails it with the reason
    doc, created = await deps.requests.create(new_request(cmd, deps.pending_grace_s))
    if not created and doc.get("user_id") != cmd.user_id:
        log.warning("request_id_reused_by_other_user", request_id=cmd.request_id)
    return doc


async def accept_many(cmds: list[SendRequested], deps: SendDeps) -> list[tuple[dict, bool]]:
    """`accept` for the records of one poll, in one insert: (stored document, created) per command."""
    stored = []
    for cmd in cmds:
        try:
            cmd = await store_uploads(cmd, deps.stores.uploads)
        except Unsendable:
            pass  # stored as it is; the attempt fails it with the reason
        stored.append(cmd)
    # A request id twice in one poll: the first is created, the second finds it.
    out = await deps.requests.create_many([new_request(c, deps.pending_grace_s) for c in stored])
    for cmd, (doc, created) in zip(stored, out):
        if not created and doc.get("user_id") != cmd.user_id:
            log.warning("request_id_reused_by_other_user", request_id=cmd.request_id)
    return out


async def advance(request_id: str, deps: SendDeps, doc: dict | None = None) -> None:
    """One step (or the whole way) for one request, whatever state it is in. `doc`: the request as
    just stored by this process, which saves reading it back (a claim re-reads when it must)."""
    doc = doc or await deps.requests.get(request_id)
    if doc is None:
        return
    with structlog.contextvars.bound_contextvars(request_id=request_id, account_id=doc["account_id"]):
        state = S(doc["state"])
        if state == S.SCHEDULED:
            send_at = _utc(doc["due_at"])
            if send_at <= utcnow() and await deps.requests.move(request_id, S.PENDING, due_at=utcnow()):
                await attempt(await deps.requests.get(request_id), deps)
        elif state == S.PENDING:
            await attempt(doc, deps)
        elif state == S.SENDING and _utc(doc.get("lease_until")) <= utcnow():
            if await recover(doc, deps):
                await attempt(await deps.requests.get(request_id), deps)


@dataclass(frozen=True)
class Ready:
    """A pending request made into its exact message, with what is stored on entering `sending`."""
    doc: dict
    cmd: SendRequested
    account: AccountConfigured
    preset: ProviderPreset
    prepared: Prepared
    summary: dict


async def ready(doc: dict, deps: SendDeps) -> Ready | None:
    """Load what the request names and build its message; a request that cannot be sent is failed
    here (None)."""
    cmd = SendRequested.model_validate(doc["command"])
    account = await sender_account(cmd, deps)
    if account is None or not account.enabled or account.user_id != cmd.user_id:
        await fail(doc, deps, S.FAILED, "The account to send from is not connected, or not yours.")
        return None
    preset = preset_of(account.provider)
    tracking = deps.tracking
    if cmd.purpose == SYSTEM:
        # Maillink's own mail: no tracking, no template or signature of a user.
        cmd, tracking = cmd.model_copy(update={"tracking": False, "signature": False, "signature_id": None,
                                               "template_id": None}), None
    try:
        prepared = build(cmd, await load(cmd, account, preset, deps.stores), _second(utcnow()), tracking)
    except Unsendable as exc:
        await fail(doc, deps, S.FAILED, str(exc))
        return None
    c = prepared.composed
    summary = {"message_id": c.envelope.message_id, "message_key": c.message_key, "size": len(c.raw),
               "envelope": c.envelope.model_dump(mode="json", by_alias=True), "snippet": c.snippet,
               "tracked": bool(prepared.tracking_id), "files_sent": files_sent_mail(account, preset)}
    return Ready(doc, cmd, account, preset, prepared, summary)


def tracking_event(r: Ready) -> TrackingRegistered | None:
    """Published before the message leaves, so the first open is never an unknown token."""
    p, c = r.prepared, r.prepared.composed
    if not p.tracking_id:
        return None
    return TrackingRegistered(
        event_id=deterministic_id("tracking", r.cmd.request_id, c.message_key), occurred_at=utcnow(),
        message_key=c.message_key, account_id=r.cmd.account_id, user_id=r.cmd.user_id, recipients=p.recipients,
        links=p.links, tracking_id=p.tracking_id, sent_at=c.envelope.date)


def sending_fields(r: Ready, gen: int, attempts: int, lease_s: float) -> dict:
    """What entering `sending` stores: the claim's generation, the fixed Message-ID (in `sent`), a lease."""
    return {"state": S.SENDING.value, "gen": gen, "sent": r.summary, "attempts": attempts,
            "lease_until": utcnow() + timedelta(seconds=lease_s)}


async def attempt(doc: dict, deps: SendDeps) -> None:
    r = await ready(doc, deps)
    if r is None:
        return
    cmd, account, preset, prepared, summary, c = r.cmd, r.account, r.preset, r.prepared, r.summary, r.prepared.composed
    if (event := tracking_event(r)) is not None:
        await deps.publish(deps.topics["tracking"], event, c.message_key)

    claimed = False

    async def claim() -> bool:
        nonlocal claimed
        # The first try records `sending` in the claim itself (one insert); a contested one goes on
        # with bare claims and writes the step to the request.
        if await deps.requests.claim_step(doc, sending_fields(r, doc.get("gen", 0) + 1, doc.get("attempts", 0) + 1,
                                                              deps.lease_s)):
            claimed = True
            return True
        won = await deps.requests.claim(doc, deps.lease_s)
        if won is None or won[1]["state"] != S.PENDING:
            return False  # another worker has it, or it was cancelled meanwhile
        gen, now = won
        await deps.requests.set(cmd.request_id, S.SENDING, **sending_fields(r, gen, now.get("attempts", 0) + 1,
                                                                             deps.lease_s))
        claimed = True
        return True

    try:
        secret = deps.credentials.secret(account)
        pool = deps.pools.for_account(account, preset, secret)
        reply = await pool.send(prepared.sender.email, prepared.recipients, c.raw, claim)
    except SmtpFailure as exc:
        await smtp_failed(doc, cmd, exc, deps, claimed)
        return
    except ValueError as exc:  # credentials that cannot be decrypted
        await fail(doc, deps, S.FAILED, str(exc))
        return
    if reply is None:
        return  # another worker holds the request
    crash_point("after_250", cmd.request_id, deps.crash_dir)
    await accepted(cmd, account, preset, secret, prepared, summary, deps)


async def accepted(cmd: SendRequested, account, preset, secret: str, prepared, summary: dict, deps: SendDeps) -> None:
    """After the server's 250 to DATA, where the provider does not file sent mail: the 250 is recorded
    before the copy is appended, so a crash in between is repaired by appending, not by resending."""
    copy, folder = SentCopy.PROVIDER, None
    if not summary["files_sent"]:
        await deps.requests.note(cmd.request_id, S.SENDING, smtp_accepted_at=utcnow())
        crash_point("after_record", cmd.request_id, deps.crash_dir)
        copy, folder = SentCopy.MISSING, None   # the system sender has no mailbox
        if cmd.purpose != SYSTEM:
            copy, folder = await append_copy(account, secret, preset, prepared.composed.raw, prepared.bcc, deps)
    await finish_sent(cmd.request_id, cmd, summary, copy, folder, deps)


async def smtp_failed(doc: dict, cmd: SendRequested, exc: SmtpFailure, deps: SendDeps, claimed: bool) -> None:
    """`claimed`: this attempt won the request (it is `sending`, and ours to move back or fail)."""
    request_id, attempts = cmd.request_id, doc.get("attempts", 0) + 1
    if exc.after_data:
        # No reply to DATA: leave it in `sending` with an expired lease; recovery asks the Sent folder.
        await deps.requests.note(request_id, S.SENDING, lease_until=utcnow())
        if await recover(await deps.requests.get(request_id), deps):
            await attempt(await deps.requests.get(request_id), deps)
        return
    current = await deps.requests.get(request_id)
    leaving = S(current["state"])
    if leaving != (S.SENDING if claimed else S.PENDING):
        return  # not ours to change: cancelled meanwhile, or another worker holds it
    if exc.permanent or attempts >= deps.max_attempts:
        reason = exc.reason if exc.permanent else f"{exc.reason} Gave up after {attempts} attempts."
        await fail(current, deps, S.FAILED, reason, exc.code)
        return
    RETRIES.inc()
    delay = deps.backoff_s * 2 ** (attempts - 1)
    log.info("send_retry", attempts=attempts, delay_s=delay, reason=exc.reason)
    await deps.requests.move(request_id, S.PENDING, expect=[leaving], attempts=attempts, last_error=exc.reason,
                             due_at=utcnow() + timedelta(seconds=delay))


def _second(now: datetime) -> datetime:
    return now.replace(microsecond=0)


def _utc(value) -> datetime:
    if value is None:
        return datetime.min.replace(tzinfo=timezone.utc)
    return value if value.tzinfo else value.replace(tzinfo=timezone.utc)
