"""Folders no longer synced (unselected, or gone from the server): their messages are reported as
no longer synced, then their locations and folder state are forgotten.

Which folders: domain/folders.retired (pure). Each location becomes a MessageExpunged with a
`reason`; a location already seen gone on the server (expunge pending, sync/changes.py) keeps the
reason "expunged" and the time it went. The matcher removes a message only once no synced folder
holds it, so a message that also sits in a synced folder stays.

Idempotent and crash-safe: events first, then the locations, then the folder state last, so a crash
anywhere leaves the folder state behind and the next full pass repeats the whole step. The repeat
publishes the same event ids, because they derive from the folder state (its latest pass), not from
the clock; a later retirement of the same folder (selected again, synced, unselected again) gets new
ids, so a consumer that de-duplicates by id never swallows it.
"""
from datetime import datetime, timezone

import structlog

from maillink_schemas.base import deterministic_id
from maillink_schemas.mail import ExpungeReason, MailboxLocation, MessageExpunged
from maillink_schemas.topics import Topic

from ..adapters.folder_state import FolderState, FolderStateStore
from ..domain.folders import Retired
from .delivery import Delivery

log = structlog.get_logger()


async def retire(account_id: str, folders: list[Retired], states: list[FolderState], store: FolderStateStore,
                 delivery: Delivery, now: datetime | None = None) -> int:
    """Returns how many locations were reported gone."""
    now = now or datetime.now(timezone.utc)
    by_name = {s.folder: s for s in states}
    reported = 0
    for item in folders:
        generation = str(getattr(by_name.get(item.folder), "pass_started_at", None) or "")
        locations = await delivery.locations.whole_folder(account_id, item.folder) if delivery.locations else []
        await delivery.emit(Topic.MESSAGE_EXPUNGED, [(account_id, MessageExpunged(
            event_id=deterministic_id("expunged", account_id, loc.folder, str(loc.uidvalidity), str(loc.uid),
                                      item.reason.value, generation),
            occurred_at=_aware(loc.gone_at) if loc.gone_at else now, message_key=loc.message_key,
            account_id=account_id, location=MailboxLocation(folder=loc.folder, uidvalidity=loc.uidvalidity,
                                                            uid=loc.uid),
            reason=ExpungeReason.EXPUNGED if loc.gone_at else item.reason)) for loc in locations])
        if delivery.locations:
            await delivery.locations.forget(account_id, locations)
        await store.delete(account_id, item.folder)
        log.info("folder_retired", folder=item.folder, reason=item.reason.value, locations=len(locations))
        reported += len(locations)
    return reported


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=timezone.utc)
