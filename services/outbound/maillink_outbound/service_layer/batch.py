"""Group commit: pending requests sent as a batch, each state change of the whole batch in one
store command (adapters/requests.py has the figures), so the store is not paid per message.

The rules of send.py hold for every request of a batch:
- the Message-ID is fixed and `sending` (with it, and a lease) is stored for the whole batch before
  any DATA starts, in the claims that win it (adapters/requests.py);
- a request whose claim is contested (another worker, a claim left by a dead process) leaves the
  batch and goes through send.advance alone, as does everything after a send that did not simply
  succeed (SMTP errors, a copy to append, the crash seam);
- `sent` is committed only after `mail.message.sent.v1` is acknowledged.

load + decide (send.ready: cached reads, then the pure build) -> apply: tracking registered (acks
awaited) -> claims carrying `sending` (one insert) -> SMTP, concurrently through the accounts' pools
-> sent events (acks awaited) -> `sent` (one store command per 40 requests).
"""
import asyncio
import time

import structlog

from maillink_schemas.outbound import SendState as S

from ..adapters.smtp import SmtpFailure
from .deps import SendDeps
from .outcomes import crash_point, fail, finish_sent_many
from .send import Ready, accepted, ready, sending_fields, smtp_failed, tracking_event

log = structlog.get_logger()


async def send_batch(docs: list[dict], deps: SendDeps) -> list[dict]:
    """Sends pending requests together; returns those it did not take (contested claims), for
    send.advance one by one."""
    clock = _Clock()
    batch = []
    for doc in docs:
        if (r := await ready(doc, deps)) is not None:
            batch.append(r)
        # Building is CPU work that never waits (cached reads): without a pause between messages a batch
        # holds the event loop ~50 ms, and every SMTP reply of the other batches waits behind it (a
        # transaction is three round trips; with 8 batches they took 7 ms each against 0.9 ms alone).
        await asyncio.sleep(0)
    clock.lap("build")
    if not batch:
        return []
    tracked = [(r.prepared.composed.message_key, e) for r in batch if (e := tracking_event(r)) is not None]
    if tracked:
        await deps.publish_many(deps.topics["tracking"], tracked)
    clock.lap("tracking")
    steps = {r.doc["_id"]: sending_fields(r, r.doc.get("gen", 0) + 1, r.doc.get("attempts", 0) + 1, deps.lease_s)
             for r in batch}
    won = await deps.requests.claim_many([(r.doc, steps[r.doc["_id"]]) for r in batch])
    mine = [r for r in batch if r.doc["_id"] in won]
    clock.lap("claims")
    # Each won claim carries its `sending` step (Message-ID, summary, lease): DATA may start.
    results = await asyncio.gather(*(_smtp(r, deps) for r in mine))
    clock.lap("smtp")
    simple = []
    for r, (reply, secret, error) in zip(mine, results):
        if error is not None:
            await _failed(r, error, deps)
            continue
        crash_point("after_250", r.cmd.request_id, deps.crash_dir)
        if r.summary["files_sent"]:
            simple.append(r)
        else:
            await accepted(r.cmd, r.account, r.preset, secret, r.prepared, r.summary, deps)
    clock.lap("others")
    await finish_sent_many([(r.cmd, r.summary, steps[r.doc["_id"]], r.prepared.composed.envelope) for r in simple], deps)
    clock.lap("sent")
    log.info("batch_timing", requests=len(docs), **clock.ms)
    return [r.doc for r in batch if r.doc["_id"] not in won]


class _Clock:
    """Where a batch's time goes (milliseconds per phase), for the log: the figures docs/outbound.md quotes."""

    def __init__(self) -> None:
        self.ms: dict[str, int] = {}
        self._t = time.perf_counter()

    def lap(self, phase: str) -> None:
        now = time.perf_counter()
        self.ms[f"{phase}_ms"] = round((now - self._t) * 1000)
        self._t = now


async def _recorded() -> bool:
    return True   # the batch's claim and `sending` were stored before any DATA


async def _smtp(r: Ready, deps: SendDeps) -> tuple[str | None, str | None, Exception | None]:
    try:
        secret = deps.credentials.secret(r.account)
        pool = deps.pools.for_account(r.account, r.preset, secret)
        reply = await pool.send(r.prepared.sender.email, r.prepared.recipients, r.prepared.composed.raw, _recorded)
        return reply, secret, None
    except (SmtpFailure, ValueError) as exc:
        return None, None, exc


async def _failed(r: Ready, error: Exception, deps: SendDeps) -> None:
    if isinstance(error, SmtpFailure):
        await smtp_failed(r.doc, r.cmd, error, deps, claimed=True)
    else:  # credentials that cannot be decrypted
        await fail(r.doc, deps, S.FAILED, str(error))
