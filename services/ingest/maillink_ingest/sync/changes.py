"""What happened to delivered messages since the last pass: flag changes and expunges.

With QRESYNC the SELECT itself reports them (VANISHED (EARLIER), and FETCH lines with MODSEQ).
Without it (or before a MODSEQ is known) the plain fallback asks: UID SEARCH over the delivered
UIDs (what is missing was expunged or moved away) and UID FETCH FLAGS over them, compared with the
stored flags.

A move between two synced folders must never look like a delete. The destination folder reports
the message as new (a received event with the new location, same message key); the source
reports it gone. So an expunge is published only once every other folder of the account has
begun a pass after the expunge was seen: by then a move's destination has delivered the new
location, and the matcher sees it before the old one goes. Until then the location is kept with
`gone_at` (adapters/locations.py). Received and expunged events travel on different topics, so
this orders them by time (a pass later), not by offset.
"""
from datetime import datetime, timedelta, timezone

from maillink_schemas.base import deterministic_id
from maillink_schemas.mail import MailboxLocation, MessageChanged, MessageExpunged
from maillink_schemas.topics import Topic

from ..adapters.folder_state import FolderState
from ..adapters.locations import Location
from ..domain import uid_ranges
from ..imap.connection import uid_search
from ..imap.fetch import fetch_flags

# \Recent belongs to one session, not to the message: never a change.
_SESSION_FLAGS = {"\\Recent"}
# A folder whose last pass is older than this is not being synced any more; it does not hold back expunges.
STALE_FOLDER = timedelta(hours=1)


ranges_arg = uid_ranges.format

async def apply(p, state: FolderState) -> None:
    if not state.delivered or not p.delivery.locations:
        return
    delivered = set(uid_ranges.to_uids(state.delivered))
    # Quirk: a server that lost its MODSEQs (restored, or its index rebuilt) reports a HIGHESTMODSEQ
    # below the stored one and answers "changed since" with nothing: ask the plain way then.
    if p.qresync and state.highestmodseq and (p.selected.highestmodseq or 0) >= state.highestmodseq:
        gone = sorted(u for low, high in p.vanished for u in delivered if low <= u <= high)
        seen = p.changed
    else:
        present = set(await uid_search(p.client, f"UID {ranges_arg(state.delivered)}"))
        gone = sorted(delivered - present)
        seen = await fetch_flags(p.client, ranges_arg(state.delivered))
    # New messages show up among QRESYNC's changes too; only delivered ones can have changed.
    seen = [s for s in seen if s.uid in delivered]
    if not gone and not seen:
        return  # the common case after a push: nothing to look up
    locations = await p.delivery.locations.at(p.account.account_id, p.folder.name, state.uidvalidity,
                                              sorted({*gone, *(s.uid for s in seen)}))
    changed = [(loc, tuple(f for f in s.flags if f not in _SESSION_FLAGS), s.modseq) for s in seen
               if s.uid not in gone and (loc := locations.get(s.uid))
               and _norm(s.flags) != _norm(loc.flags)]
    await p.delivery.emit(Topic.MESSAGE_CHANGED, [(p.account.account_id, _changed(p, loc, flags, modseq))
                                                  for loc, flags, modseq in changed])
    await p.delivery.locations.set_flags(p.account.account_id, [(loc, flags) for loc, flags, _ in changed])
    await note_gone(p, state, [locations[u] for u in gone if u in locations], gone)


async def note_gone(p, state: FolderState, locations: list[Location], uids: list[int]) -> None:
    if uids or locations:
        # Also when the locations were marked before (a pass repeated after a crash): the
        # expunges may still be unpublished.
        state.expunges_pending = True
    await p.delivery.locations.mark_gone(p.account.account_id, locations, p.now)
    state.delivered = uid_ranges.remove(state.delivered, uids)


async def publish_settled_expunges(p, state: FolderState) -> None:
    if not p.delivery.locations or not state.expunges_pending:
        return
    pending = await p.delivery.locations.gone(p.account.account_id, p.folder.name)
    if not pending:
        state.expunges_pending = False
        return
    others = [s for s in await p.sync.states.for_account(p.account.account_id) if s.folder != p.folder.name]
    settled = [loc for loc in pending if all(_passed_since(s, _aware(loc.gone_at), p.now) for s in others)]
    await p.delivery.emit(Topic.MESSAGE_EXPUNGED, [(p.account.account_id, MessageExpunged(
        event_id=deterministic_id("expunged", p.account.account_id, loc.folder, str(loc.uidvalidity), str(loc.uid)),
        occurred_at=_aware(loc.gone_at), message_key=loc.message_key, account_id=p.account.account_id,
        location=MailboxLocation(folder=loc.folder, uidvalidity=loc.uidvalidity, uid=loc.uid))) for loc in settled])
    await p.delivery.locations.forget(p.account.account_id, settled)
    state.expunges_pending = len(settled) < len(pending)


def _passed_since(other: FolderState, when: datetime, now: datetime) -> bool:
    started = _aware(other.pass_started_at) if other.pass_started_at else None
    return started is None or started > when or now - started > STALE_FOLDER


def _changed(p, loc: Location, flags: tuple[str, ...], modseq: int | None) -> MessageChanged:
    return MessageChanged(
        event_id=deterministic_id("changed", p.account.account_id, loc.folder, str(loc.uidvalidity), str(loc.uid),
                                  " ".join(sorted(flags)), str(modseq or "")),
        occurred_at=p.now, message_key=loc.message_key, account_id=p.account.account_id,
        location=MailboxLocation(folder=loc.folder, uidvalidity=loc.uidvalidity, uid=loc.uid), flags=list(flags),
        seen="\\Seen" in flags, flagged="\\Flagged" in flags, answered="\\Answered" in flags, modseq=modseq)


def _norm(flags) -> frozenset[str]:
    return frozenset(f for f in flags if f not in _SESSION_FLAGS)


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=timezone.utc)
