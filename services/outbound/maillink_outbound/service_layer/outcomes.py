"""How a request ends, and the facts published about it: sent (with the Sent copy), failed, unknown,
cancelled. Events go out before the state that reports them is committed; a crash in between
publishes them again with the same event id."""
import os
import signal
from pathlib import Path

import structlog
from prometheus_client import Counter

from maillink_schemas.base import deterministic_id, utcnow
from maillink_schemas.mail import Envelope
from maillink_schemas.outbound import MessageSent, SendFailed, SendRequested, SendState as S, SentCopy
from maillink_schemas.providers import ProviderPreset

from ..adapters.sent_folder import ImapUnavailable
from ..adapters.system_sender import SYSTEM
from ..domain.compose import with_bcc
from ..domain.states import CANCELLABLE
from .deps import SendDeps

log = structlog.get_logger()
ENDED = Counter("maillink_outbound_requests_total", "Send requests that reached a final state", ["state"])


async def append_copy(account, secret, preset: ProviderPreset, raw: bytes, bcc, deps: SendDeps):
    try:
        return SentCopy.APPENDED, await deps.sent_folder.append(account, secret, preset, with_bcc(raw, bcc))
    except ImapUnavailable as exc:
        # The message has left; a missing Sent copy is reported, never a reason to resend.
        log.warning("sent_copy_missing", error=str(exc))
        return SentCopy.MISSING, None


def sent_event(request_id: str, cmd: SendRequested, summary: dict, copy: SentCopy, folder: str | None,
               envelope: Envelope | None = None) -> MessageSent:
    """`envelope`: the one the message was built with, when at hand (else read back from the summary)."""
    envelope = envelope or Envelope.model_validate(summary["envelope"])
    return MessageSent(
        event_id=deterministic_id("sent", request_id), occurred_at=utcnow(), request_id=request_id,
        message_key=summary["message_key"], account_id=cmd.account_id, user_id=cmd.user_id,
        message_id=summary["message_id"], envelope=envelope, snippet=summary.get("snippet", ""),
        size=summary["size"], tracked=summary.get("tracked", False), sent_copy=copy, sent_folder=folder,
        reply_to_message=cmd.reply_to_message, purpose=cmd.purpose, sent_at=envelope.date or utcnow())


async def finish_sent(request_id: str, cmd: SendRequested, summary: dict, copy: SentCopy, folder: str | None,
                      deps: SendDeps) -> None:
    if cmd.purpose != SYSTEM:   # maillink's own mail is nobody's conversation: nothing to link
        await deps.publish(deps.topics["sent"], sent_event(request_id, cmd, summary, copy, folder), cmd.account_id)
    # The sender (or the recoverer) holds this request's claim: nobody else changes it now.
    await deps.requests.set(request_id, S.SENT, sent_copy=copy.value)
    ENDED.labels("sent").inc()
    log.info("sent", sent_copy=copy.value)


async def finish_sent_many(done: list[tuple[SendRequested, dict, dict, Envelope]], deps: SendDeps) -> None:
    """`finish_sent` for requests the provider filed itself (no copy to append): the events in one
    go (acks awaited), then their `sent` in one insert (outcome records, adapters/requests.py). Each
    comes with the `sending` step its claim recorded, which the record carries on."""
    if not done:
        return
    await deps.publish_many(deps.topics["sent"], [
        (cmd.account_id, sent_event(cmd.request_id, cmd, summary, SentCopy.PROVIDER, None, envelope))
        for cmd, summary, _, envelope in done if cmd.purpose != SYSTEM])
    await deps.requests.record_many([(cmd.request_id, {**step, "state": S.SENT.value, "account_id": cmd.account_id,
                                                        "sent_copy": SentCopy.PROVIDER.value})
                                     for cmd, _, step, _ in done])
    ENDED.labels("sent").inc(len(done))
    log.info("sent_batch", requests=len(done), sent_copy=SentCopy.PROVIDER.value)


async def fail(doc: dict, deps: SendDeps, state: S, reason: str, code: int | None = None) -> None:
    request_id = doc["_id"]
    if (doc.get("command") or {}).get("purpose") == SYSTEM:
        # Maillink's own mail: not a send of the user's to report to the CRM; logged and counted below.
        if await deps.requests.move(request_id, state, reason=reason, smtp_code=code):
            ENDED.labels(state.value).inc()
            log.warning("system_send_ended", state=state.value, reason=reason)
        return
    await deps.publish(deps.topics["failed"], SendFailed(
        event_id=deterministic_id("send-failed", request_id, state.value), occurred_at=utcnow(),
        request_id=request_id, account_id=doc["account_id"], user_id=doc["user_id"], state=state, reason=reason,
        smtp_code=code, message_id=(doc.get("sent") or {}).get("message_id")), doc["account_id"])
    if await deps.requests.move(request_id, state, reason=reason, smtp_code=code):
        ENDED.labels(state.value).inc()
        log.info("send_ended", state=state.value, reason=reason)


async def cancel_request(doc: dict, deps: SendDeps) -> bool:
    """Cancels a scheduled or pending request; False when it has already gone further."""
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
