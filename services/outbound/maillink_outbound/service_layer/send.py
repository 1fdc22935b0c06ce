"""Drives one send request through its states (domain/states.py), exactly once.

Rules, in the order they matter:
- The Message-ID is fixed by the request id when the request is stored; `sending` is entered
  (a conditional update, with the message key and a lease) after RCPT and right before DATA.
- A request in `sending` that its sender no longer holds (lease over: the process died) is
  recovered, never resent blindly: the Sent folder is searched for its Message-ID first.
  Found: it was sent. Not found: where the provider files everything it accepts, it was never
  accepted, so it goes back to `pending`; elsewhere the server's 250 may have come and gone
  unrecorded, so it becomes `unknown` (reported in words) unless the 250 was recorded.
- Where the provider does not file sent mail, the 250 is recorded before the Sent copy is
  appended, so a crash after that point is repaired by appending, not by resending.
- Events are published before the state that reports them is committed; a crash in between
  publishes them again with the same event id (consumers deduplicate on it).
"""
import asyncio
import os
import signal
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

import structlog
from prometheus_client import Counter

from maillink_schemas.base import deterministic_id, utcnow
from maillink_schemas.mail import Envelope
from maillink_schemas.outbound import MessageSent, SendFailed, SendRequested, SendState as S, SentCopy
from maillink_schemas.providers import ProviderPreset, preset as preset_of
from maillink_schemas.tracking import TrackingRegistered

from ..adapters.sent_folder import ImapUnavailable
from ..adapters.smtp import SmtpFailure
from .prepare import Tracking, Unsendable, build, load

log = structlog.get_logger()
ENDED = Counter("maillink_outbound_requests_total", "Send requests that reached a final state", ["state"])
RETRIES = Counter("maillink_outbound_retries_total", "Send attempts retried after a transient error")


@dataclass
class SendDeps:
    requests: object            # adapters.requests.RequestStore
    accounts: object            # adapters.accounts.AccountStore
    credentials: object         # adapters.accounts.Credentials
    stores: object              # templates, signatures, crm, replies
    pools: object               # service_layer.pools.Pools
    sent_folder: object         # adapters.sent_folder.SentFolder
    publish: Callable[[str, object, str], Awaitable[None]]   # (topic name, event, key)
    topics: dict[str, str]      # "sent", "failed", "tracking" -> topic
    tracking: Tracking | None
    lease_s: float = 300.0
    max_attempts: int = 5
    backoff_s: float = 2.0
    crash_dir: str | None = None  # test seam for the crash test (see crash_point)


def new_request(cmd: SendRequested) -> dict:
    now = utcnow()
    scheduled = cmd.send_at is not None and cmd.send_at > now
    return {"_id": cmd.request_id, "account_id": cmd.account_id, "user_id": cmd.user_id,
            "state": (S.SCHEDULED if scheduled else S.PENDING).value,
            "due_at": cmd.send_at if scheduled else now + timedelta(seconds=30),
            "command": cmd.model_dump(mode="json", by_alias=True), "attempts": 0}


async def accept(cmd: SendRequested, deps: SendDeps) -> dict:
    """Stores the request (once per request id) and returns its stored document."""
    from .prepare import store_uploads
    try:
        cmd = await store_uploads(cmd, deps.stores.uploads)
    except Unsendable:
        pass  # stored as it is; the attempt fails it with the reason
    doc, created = await deps.requests.create(new_request(cmd))
    if not created and doc.get("user_id") != cmd.user_id:
        log.warning("request_id_reused_by_other_user", request_id=cmd.request_id)
    return doc


async def advance(request_id: str, deps: SendDeps) -> None:
    """One step (or the whole way) for one request, whatever state it is in."""
    doc = await deps.requests.get(request_id)
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
            await recover(doc, deps)


async def attempt(doc: dict, deps: SendDeps) -> None:
    cmd = SendRequested.model_validate(doc["command"])
    account = await deps.accounts.get(cmd.account_id)
    if account is None or not account.enabled or account.user_id != cmd.user_id:
        await fail(doc, deps, S.FAILED, "The account to send from is not connected, or not yours.")
        return
    preset = preset_of(account.provider)
    try:
        prepared = build(cmd, await load(cmd, account, preset, deps.stores), _second(utcnow()), deps.tracking)
    except Unsendable as exc:
        await fail(doc, deps, S.FAILED, str(exc))
        return
    c = prepared.composed
    files_sent = files_sent_mail(account, preset)
    summary = {"message_id": c.envelope.message_id, "message_key": c.message_key, "size": len(c.raw),
               "envelope": c.envelope.model_dump(mode="json", by_alias=True), "snippet": c.snippet,
               "tracked": bool(prepared.tracking_id), "files_sent": files_sent}
    if prepared.tracking_id:
        # Registered before the message leaves, so the first open is never an unknown token.
        await deps.publish(deps.topics["tracking"], TrackingRegistered(
            event_id=deterministic_id("tracking", cmd.request_id, c.message_key), occurred_at=utcnow(),
            message_key=c.message_key, account_id=cmd.account_id, user_id=cmd.user_id,
            recipients=prepared.recipients, links=prepared.links, tracking_id=prepared.tracking_id,
            sent_at=c.envelope.date), c.message_key)

    async def claim() -> bool:
        won = await deps.requests.claim(doc, deps.lease_s)
        if won is None or won[1]["state"] != S.PENDING:
            return False  # another worker has it, or it was cancelled meanwhile
        gen, now = won
        await deps.requests.set(cmd.request_id, S.SENDING, gen=gen, sent=summary, attempts=now.get("attempts", 0) + 1,
                                lease_until=utcnow() + timedelta(seconds=deps.lease_s))
        return True

    try:
        secret = deps.credentials.secret(account)
        pool = deps.pools.for_account(account, preset, secret)
        reply = await pool.send(prepared.sender.email, prepared.recipients, c.raw, claim)
    except SmtpFailure as exc:
        await _smtp_failed(doc, cmd, exc, deps)
        return
    except ValueError as exc:  # credentials that cannot be decrypted
        await fail(doc, deps, S.FAILED, str(exc))
        return
    if reply is None:
        return  # another worker holds the request
    crash_point("after_250", cmd.request_id, deps.crash_dir)
    copy, folder = SentCopy.PROVIDER, None
    if not files_sent:
        await deps.requests.note(cmd.request_id, S.SENDING, smtp_accepted_at=utcnow())
        crash_point("after_record", cmd.request_id, deps.crash_dir)
        copy, folder = await _append(account, secret, preset, c.raw, prepared.bcc, deps)
    await _finish(cmd.request_id, cmd, summary, copy, folder, deps)


async def recover(doc: dict, deps: SendDeps) -> None:
    """A `sending` request whose sender is gone: decide from the Sent folder, never resend blindly."""
    cmd = SendRequested.model_validate(doc["command"])
    summary = doc.get("sent") or {}
    account = await deps.accounts.get(cmd.account_id)
    if account is None:
        return  # the account projection will come back; until then nothing can be decided
    preset = preset_of(account.provider)
    # Take the request over (a claim and a new lease), so a second recoverer leaves it alone.
    won = await deps.requests.claim(doc, deps.lease_s)
    if won is None or won[1]["state"] != S.SENDING:
        return
    gen, doc = won
    await deps.requests.set(cmd.request_id, S.SENDING, gen=gen, lease_until=utcnow() + timedelta(seconds=deps.lease_s))
    try:
        secret = deps.credentials.secret(account)
        found, folder = await deps.sent_folder.find(account, secret, preset, summary["message_id"])
    except (ImapUnavailable, ValueError) as exc:
        log.warning("recovery_postponed", error=str(exc))
        return  # the lease runs out again and the next sweep asks again
    log.info("recovered", found=found, accepted=bool(doc.get("smtp_accepted_at")), files_sent=summary.get("files_sent"))
    if found:
        copy = SentCopy.PROVIDER if summary.get("files_sent") else SentCopy.APPENDED
        await _finish(cmd.request_id, cmd, summary, copy, folder, deps)
    elif doc.get("smtp_accepted_at"):
        # The 250 was recorded, the copy never made it: append it now. The bytes are rebuilt from the
        # request, so the copy's key is recomputed only if rendering gave the same message.
        try:
            got = await load(cmd, account, preset, deps.stores)
            prepared = build(cmd, got, _utc_dt(summary["envelope"]["date"]), deps.tracking)
            copy, folder = await _append(account, secret, preset, prepared.composed.raw, prepared.bcc, deps)
        except Unsendable:
            copy, folder = SentCopy.MISSING, None
        await _finish(cmd.request_id, cmd, summary, copy, folder, deps)
    elif summary.get("files_sent"):
        # The provider files everything it accepts, and it is not there: it was never accepted.
        await deps.requests.move(cmd.request_id, S.PENDING, expect=[S.SENDING], due_at=utcnow())
        await attempt(await deps.requests.get(cmd.request_id), deps)
    else:
        await fail(doc, deps, S.UNKNOWN, "Sending was interrupted after the message was handed to the mail "
                   "server, and this provider does not keep a copy of sent mail, so it cannot be told whether "
                   "it was sent. It was not sent again, to avoid a duplicate: please check with the recipient.")


async def _append(account, secret, preset: ProviderPreset, raw: bytes, bcc, deps: SendDeps):
    from ..domain.compose import with_bcc
    try:
        return SentCopy.APPENDED, await deps.sent_folder.append(account, secret, preset, with_bcc(raw, bcc))
    except ImapUnavailable as exc:
        # The message has left; a missing Sent copy is reported, never a reason to resend.
        log.warning("sent_copy_missing", error=str(exc))
        return SentCopy.MISSING, None


async def _finish(request_id: str, cmd: SendRequested, summary: dict, copy: SentCopy, folder: str | None,
                  deps: SendDeps) -> None:
    envelope = Envelope.model_validate(summary["envelope"])
    await deps.stores.replies.remember(summary["message_key"], cmd.account_id, envelope)
    await deps.publish(deps.topics["sent"], MessageSent(
        event_id=deterministic_id("sent", request_id), occurred_at=utcnow(), request_id=request_id,
        message_key=summary["message_key"], account_id=cmd.account_id, user_id=cmd.user_id,
        message_id=summary["message_id"], envelope=envelope, snippet=summary.get("snippet", ""),
        size=summary["size"], tracked=summary.get("tracked", False), sent_copy=copy, sent_folder=folder,
        reply_to_message=cmd.reply_to_message, purpose=cmd.purpose, sent_at=envelope.date or utcnow()),
        cmd.account_id)
    if await deps.requests.move(request_id, S.SENT, expect=[S.SENDING], sent_copy=copy.value):
        ENDED.labels("sent").inc()
        log.info("sent", sent_copy=copy.value)


async def _smtp_failed(doc: dict, cmd: SendRequested, exc: SmtpFailure, deps: SendDeps) -> None:
    request_id, attempts = cmd.request_id, doc.get("attempts", 0) + 1
    if exc.after_data:
        # No reply to DATA: leave it in `sending` with an expired lease; recovery asks the Sent folder.
        await deps.requests.note(request_id, S.SENDING, lease_until=utcnow())
        await recover(await deps.requests.get(request_id), deps)
        return
    current = await deps.requests.get(request_id)
    leaving = S(current["state"])
    if exc.permanent or attempts >= deps.max_attempts:
        reason = exc.reason if exc.permanent else f"{exc.reason} Gave up after {attempts} attempts."
        await fail(current, deps, S.FAILED, reason, exc.code)
        return
    RETRIES.inc()
    delay = deps.backoff_s * 2 ** (attempts - 1)
    log.info("send_retry", attempts=attempts, delay_s=delay, reason=exc.reason)
    await deps.requests.move(request_id, S.PENDING, expect=[leaving], attempts=attempts, last_error=exc.reason,
                             due_at=utcnow() + timedelta(seconds=delay))


async def fail(doc: dict, deps: SendDeps, state: S, reason: str, code: int | None = None) -> None:
    request_id = doc["_id"]
    await deps.publish(deps.topics["failed"], SendFailed(
        event_id=deterministic_id("send-failed", request_id, state.value), occurred_at=utcnow(),
        request_id=request_id, account_id=doc["account_id"], user_id=doc["user_id"], state=state, reason=reason,
        smtp_code=code, message_id=(doc.get("sent") or {}).get("message_id")), doc["account_id"])
    if await deps.requests.move(request_id, state, reason=reason, smtp_code=code):
        ENDED.labels(state.value).inc()
        log.info("send_ended", state=state.value, reason=reason)


async def cancel_request(doc: dict, deps: SendDeps) -> bool:
    """Cancels a scheduled or pending request; False when it has already gone further."""
    from ..domain.states import CANCELLABLE
    reason = "Cancelled by the sender."
    won = await deps.requests.claim(doc, deps.lease_s)
    if won is None or S(won[1]["state"]) not in CANCELLABLE:
        return False
    await deps.requests.set(doc["_id"], S.CANCELLED, gen=won[0], reason=reason)
    ENDED.labels("cancelled").inc()
    await deps.publish(deps.topics["failed"], SendFailed(
        event_id=deterministic_id("send-failed", doc["_id"], "cancelled"), occurred_at=utcnow(), request_id=doc["_id"],
        account_id=doc["account_id"], user_id=doc["user_id"], state=S.CANCELLED, reason=reason), doc["account_id"])
    return True


def files_sent_mail(account, preset: ProviderPreset) -> bool:
    override = account.smtp.files_sent if account.smtp else None
    return preset.files_sent_mail if override is None else override


def crash_point(name: str, request_id: str, crash_dir: str | None) -> None:
    """Test seam for the crash test: SIGKILL this process at `name` for the request ids planned
    there (each once). Inert unless OUTBOUND_TEST_CRASH_DIR is set."""
    if not crash_dir:
        return
    planned = Path(crash_dir) / name / request_id
    if planned.exists():
        planned.rename(planned.with_suffix(".done"))
        os.kill(os.getpid(), signal.SIGKILL)


def _second(now: datetime) -> datetime:
    return now.replace(microsecond=0)


def _utc(value) -> datetime:
    if value is None:
        return datetime.min.replace(tzinfo=timezone.utc)
    return value if value.tzinfo else value.replace(tzinfo=timezone.utc)


def _utc_dt(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))
