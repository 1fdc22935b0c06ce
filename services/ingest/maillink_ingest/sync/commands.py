"""Sync-back: mailbox commands (archive, delete, mark read/unread, move) applied to the server.

load (command log, account, sync-back setting, stored locations) -> plan (domain/sync_back.py)
-> apply over a short IMAP session of its own -> record the new locations -> remember the result.
- Idempotent: a command id already applied gets its stored result again (same event id), and the
  mailbox is not touched twice. A crash between the IMAP change and `log.done` re-runs the
  command: the moved copy's old location then fails verification, its new one (recorded right
  after the move) is already where the command wants it, so the re-run changes nothing.
- Only when the owner's sync-back setting is on (mail.settings.v1); otherwise `skipped`.
- Every location is verified on the server (UIDVALIDITY and the UID) before it is acted on; a
  stale one is left to sync (its expunge is noticed there), never guessed at.
- A server we cannot reach raises, so the consumer retries (and dead-letters after its retries).
"""
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from typing import Protocol

import aioimaplib
import structlog
from prometheus_client import Counter

from maillink_schemas.accounts import AccountConfigured
from maillink_schemas.base import deterministic_id, utcnow
from maillink_schemas.mail import MailboxLocation
from maillink_schemas.mailbox import CommandOutcome, MailboxCommandCompleted
from maillink_schemas.matcher import MailboxCommand
from maillink_schemas.providers import preset

from ..adapters.command_log import CommandLog
from ..adapters.locations import Location, LocationStore
from ..adapters.sync_back import SyncBackSettings
from ..domain.sync_back import Step, Targets, plan, special_folder
from ..imap import mailbox_ops
from ..imap.connection import close_session, list_folders, select
from ..imap.errors import AuthenticationFailed, FolderMissing, ProtocolError
from . import gmail

log = structlog.get_logger()
COMMANDS = Counter("maillink_ingest_mailbox_commands_total", "Mailbox commands by action and outcome",
                   ["action", "outcome"])


class Accounts(Protocol):
    async def get(self, account_id: str) -> AccountConfigured | None: ...


@dataclass(frozen=True)
class CommandDeps:
    accounts: Accounts
    settings: SyncBackSettings
    locations: LocationStore
    log: CommandLog
    connect: Callable[[AccountConfigured], Awaitable[aioimaplib.IMAP4]]
    use_move: bool = True  # False forces COPY + UID EXPUNGE (tests of the fallback)


async def handle(cmd: MailboxCommand, deps: CommandDeps) -> MailboxCommandCompleted:
    command_id = cmd.command_id or cmd.event_id
    if known := await deps.log.result(command_id):
        return known
    with structlog.contextvars.bound_contextvars(command_id=command_id, account_id=cmd.account_id,
                                                 action=cmd.action.value):
        outcome, error, where = await _decide_and_apply(cmd, deps)
        log.info("mailbox_command", outcome=outcome.value, error=error)
    result = MailboxCommandCompleted(
        event_id=deterministic_id("mailbox-command", command_id), occurred_at=utcnow(), command_id=command_id,
        account_id=cmd.account_id, message_key=cmd.message_key, action=cmd.action, outcome=outcome, error=error,
        locations=where)
    await deps.log.done(result)
    COMMANDS.labels(cmd.action.value, outcome.value).inc()
    return result


async def _decide_and_apply(cmd: MailboxCommand, deps: CommandDeps):
    account = await deps.accounts.get(cmd.account_id)
    if account is None:
        return CommandOutcome.FAILED, "This mailbox account is not connected (any more).", []
    if not await deps.settings.enabled(account.user_id):
        return CommandOutcome.SKIPPED, "Sync-back is off: the mailbox itself was not changed.", []
    stored = {_place(loc): loc for loc in await deps.locations.for_message(account.account_id, cmd.message_key)}
    known = list(stored) or list(cmd.locations)
    if not known:
        return CommandOutcome.NOT_FOUND, "The message's place in the mailbox is not known.", []
    try:
        client = await deps.connect(account)
    except AuthenticationFailed as exc:
        return CommandOutcome.FAILED, str(exc), known
    try:
        return await _apply(client, account, cmd, known, stored, deps)
    except (FolderMissing, ProtocolError) as exc:
        return CommandOutcome.FAILED, str(exc), known
    finally:
        await close_session(client)


async def _apply(client, account: AccountConfigured, cmd: MailboxCommand, known: list[MailboxLocation],
                 stored: dict[MailboxLocation, Location], deps: CommandDeps):
    listed = [(f.name, f.flags) for f in await list_folders(client)]
    folders = preset(account.provider).folders
    labels = gmail.offers_labels(client.protocol.capabilities)
    targets = Targets(archive=special_folder(listed, "\\Archive", folders.archive or "Archive"),
                      trash=special_folder(listed, "\\Trash", folders.trash),
                      all_mail=special_folder(listed, "\\All", "") or None if labels else None)
    live = [loc for loc in known if await _verified(client, loc)]
    if not live:
        return CommandOutcome.NOT_FOUND, "The message is no longer in the mailbox.", []
    steps = plan(cmd.action, live, targets, cmd.folder)
    names = {name for name, _ in listed}
    if cmd.folder and any(s.move_to == cmd.folder or s.copy_to == cmd.folder for s in steps) \
            and cmd.folder not in names:
        return CommandOutcome.FAILED, f"The folder “{cmd.folder}” does not exist in the mailbox.", live
    for missing in {s.move_to for s in steps if s.move_to} - names:
        await mailbox_ops.create(client, missing)  # e.g. no Archive folder yet: made, as mail clients do
    moved = {}
    for step in steps:
        moved[step.location] = await _run(client, account, step, stored.get(step.location), deps)
    where = [moved.get(loc, loc) for loc in live]
    return CommandOutcome.DONE, None, [loc for loc in where if loc is not None]


async def _verified(client, loc: MailboxLocation) -> bool:
    # Moved, expunged, or its folder reset: not acted on. The stored entry stays for sync, which
    # notices the expunge itself and publishes it (sync/changes.py).
    try:
        selected = await select(client, loc.folder)
    except FolderMissing:
        return False
    return selected.uidvalidity == loc.uidvalidity and await mailbox_ops.uid_exists(client, loc.uid)


async def _run(client, account: AccountConfigured, step: Step, stored: Location | None,
               deps: CommandDeps) -> MailboxLocation | None:
    loc = step.location
    await select(client, loc.folder)
    if step.store:
        await mailbox_ops.store(client, loc.uid, step.store)
    if step.copy_to:
        await mailbox_ops.copy(client, loc.uid, step.copy_to)
    if not step.move_to:
        return loc
    target = await mailbox_ops.move(client, loc.uid, step.move_to, use_move=deps.use_move)
    if target is None:
        return None  # the server did not say the new UID; the target folder's sync records it
    new = MailboxLocation(folder=step.move_to, uidvalidity=target[0], uid=target[1])
    if stored is not None:
        # The same message (same key, Message-ID, blob) at its new place, so the next command finds
        # it at once; the old place is left to sync, which reports the message expunged from there.
        await deps.locations.record(account.account_id, [replace(stored, folder=new.folder,
                                                                  uidvalidity=new.uidvalidity, uid=new.uid)])
    return new


def _place(loc: Location) -> MailboxLocation:
    return MailboxLocation(folder=loc.folder, uidvalidity=loc.uidvalidity, uid=loc.uid)
