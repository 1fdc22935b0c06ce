"""The mailbox's single writer: received, sent and expunged messages, thread commands and re-checks,
one batch at a time. load -> decide (pure: domain/threads.place, domain/resolve.resolve) -> apply.

It is the only writer of messages, threads and thread_refs; every topic it reads is keyed by
account id, so each mailbox has exactly one writer at a time (see entrypoints/consumers.py).

Handlers are idempotent, so it's okay to be killed between the end of the handler and the commit,
or between any two writes: the outbox (one document per mailbox) lists every message whose new
revision is written but not yet published, and the next batch of that mailbox publishes them
again. Event ids derive from (message key, revision), so a repeated publish is recognisable
downstream.
"""
import time

import structlog

from maillink_schemas.mail import MessageExpunged, MessageReceived
from maillink_schemas.matcher import RecheckRequested, ThreadCommand
from maillink_schemas.outbound import MessageSent

from .mail_apply import Applying
from .mail_state import MailDeps
from .sent import as_received

__all__ = ["MailDeps", "MailBatch", "handle_mail"]
log = structlog.get_logger()


class MailBatch(Applying):
    """load (mail_state) -> decide (mail_decide) -> apply (mail_apply), for one batch."""


async def handle_mail(items: list, deps: MailDeps) -> None:
    # The facts clock before any fact is read: the same token after writing means none moved.
    token = await deps.clock.sync() if deps.clock is not None else None
    # Outbound's sent event is a sighting of the same record as ingest's Sent copy (handlers/sent.py);
    # mail maillink sends itself (purpose "system", e.g. a Smart Bcc confirmation) is no conversation.
    sent = {i.message_key for i in items if isinstance(i, MessageSent)}
    items = [as_received(i) if isinstance(i, MessageSent) else i for i in items
             if not isinstance(i, MessageSent) or i.purpose == "user"]
    batch = MailBatch(deps)
    started = time.perf_counter()
    await batch.preload(items)
    loaded = time.perf_counter()
    for item in items:
        with structlog.contextvars.bound_contextvars(account_id=getattr(item, "account_id", None),
                                                     message_key=getattr(item, "message_key", None)):
            if isinstance(item, MessageReceived):
                await batch.receive(item)
                if item.message_key in sent and not batch.docs[item.message_key]["raw"]:
                    batch.docs[item.message_key]["source"] = "outbound"
            elif isinstance(item, MessageExpunged):
                batch.expunge(item)
            elif isinstance(item, ThreadCommand):
                await batch.command(item)
            elif isinstance(item, RecheckRequested):
                await batch.recheck(item)
    await batch.settle()
    decided = time.perf_counter()
    await batch.commit(token)
    # Where a batch's time goes (the benchmark's re-link breakdown reads these).
    log.info("mail_batch", records=len(items), messages=len(batch.touched), read_s=round(loaded - started, 3),
             resolve_s=round(decided - loaded, 3), **{f"{k}_s": round(v, 3) for k, v in batch.timings.items()},
             **getattr(deps.store, "timings", {}))
