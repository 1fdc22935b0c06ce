"""Recovering a request found in `sending` whose sender is gone (its lease ran out): the account's
Sent folder is searched for the request's Message-ID before anything is resent.

- found: it was sent;
- not found where the provider files everything it accepts: it was never accepted, send it again;
- not found elsewhere, but the server's 250 had been recorded: append the copy, it was sent;
- not found elsewhere, no 250 recorded: `unknown`, reported in words, never resent.
"""
from datetime import datetime, timedelta

import structlog

from maillink_schemas.base import utcnow
from maillink_schemas.outbound import SendRequested, SendState as S, SentCopy
from maillink_schemas.providers import preset as preset_of

from ..adapters.sent_folder import ImapUnavailable
from ..adapters.system_sender import SYSTEM
from .deps import SendDeps
from .outcomes import append_copy, fail, finish_sent
from .prepare import Unsendable, build, load
from .sender import sender_account

log = structlog.get_logger()


async def recover(doc: dict, deps: SendDeps) -> bool:
    """A `sending` request whose sender is gone: decided from the Sent folder, never resent blindly.
    True when it must be sent again now (it is back in `pending`)."""
    cmd = SendRequested.model_validate(doc["command"])
    summary = doc.get("sent") or {}
    account = await sender_account(cmd, deps)
    if account is None:
        return False  # the account projection will come back; until then nothing can be decided
    preset = preset_of(account.provider)
    # Take the request over (a claim and a new lease), so a second recoverer leaves it alone.
    won = await deps.requests.claim(doc, deps.lease_s)
    if won is None or won[1]["state"] != S.SENDING:
        return False
    gen, doc = won
    await deps.requests.set(cmd.request_id, S.SENDING, gen=gen, lease_until=utcnow() + timedelta(seconds=deps.lease_s))
    try:
        secret = deps.credentials.secret(account)
        found, folder = False, None   # the system sender has no mailbox: only a recorded 250 tells
        if cmd.purpose != SYSTEM:
            found, folder = await deps.sent_folder.find(account, secret, preset, summary["message_id"])
    except (ImapUnavailable, ValueError) as exc:
        log.warning("recovery_postponed", error=str(exc))
        return False  # the lease runs out again and the next sweep asks again
    log.info("recovered", found=found, accepted=bool(doc.get("smtp_accepted_at")), files_sent=summary.get("files_sent"))
    if found:
        copy = SentCopy.PROVIDER if summary.get("files_sent") else SentCopy.APPENDED
        await finish_sent(cmd.request_id, cmd, summary, copy, folder, deps)
    elif doc.get("smtp_accepted_at"):
        # The 250 was recorded, the copy never made it: append it now. The bytes are rebuilt from the
        # request, so the copy's key is recomputed only if rendering gave the same message.
        copy, folder = SentCopy.MISSING, None   # so it stays for the system sender, which has no mailbox
        if cmd.purpose != SYSTEM:
            try:
                got = await load(cmd, account, preset, deps.stores)
                prepared = build(cmd, got, _utc_dt(summary["envelope"]["date"]), deps.tracking)
                copy, folder = await append_copy(account, secret, preset, prepared.composed.raw, prepared.bcc, deps)
            except Unsendable:
                pass
        await finish_sent(cmd.request_id, cmd, summary, copy, folder, deps)
    elif summary.get("files_sent"):
        # The provider files everything it accepts, and it is not there: it was never accepted.
        await deps.requests.move(cmd.request_id, S.PENDING, expect=[S.SENDING], due_at=utcnow())
        return True
    else:
        await fail(doc, deps, S.UNKNOWN, "Sending was interrupted after the message was handed to the mail "
                   "server, and this provider does not keep a copy of sent mail, so it cannot be told whether "
                   "it was sent. It was not sent again, to avoid a duplicate: please check with the recipient.")
    return False


def _utc_dt(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))
