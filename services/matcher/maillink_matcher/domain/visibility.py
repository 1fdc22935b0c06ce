"""Who may see a message. Pure; every query is built from it (adapters/queries.py), and a
property test holds the two together (tests/integration/test_matcher_visibility_property.py).

- The owner sees their own mail (blocked mail too, in the Mail tab's "ignored" filter).
- Private mail is invisible to every other user, admins included, under any circumstances.
- Shared mail is visible to users of the owner's company who can see every record the message
  is linked to; a message linked to nothing is not a "linked conversation" and stays the owner's.
- Deleted and expunged mail is visible to nobody.
"""
from dataclasses import dataclass

from .facts import Record


@dataclass(frozen=True)
class Viewer:
    user_id: str
    company_id: str | None
    groups: frozenset[str] = frozenset()
    visible_record_ids: frozenset[str] = frozenset()
    is_admin: bool = False


@dataclass(frozen=True)
class Shown:
    """What can_see needs of a message."""
    owner: str
    company_id: str | None
    status: str
    visibility: str
    linked: tuple[tuple[str, str], ...]   # (kind, id) of every linked record


def may_see_record(viewer: Viewer, record: Record | None) -> bool:
    if record is None:        # not (or no longer) in the CRM: nobody but the owner can vouch for it
        return False
    return (record.group is None or record.group in viewer.groups or record.record_id in viewer.visible_record_ids
            or viewer.is_admin)


def can_see(viewer: Viewer, message: Shown, records: dict[tuple[str, str], Record]) -> bool:
    if message.status in ("deleted", "expunged"):
        return False
    if message.owner == viewer.user_id:
        return True
    if message.status != "active" or message.visibility != "shared" or not message.linked:
        return False
    if viewer.company_id is None or viewer.company_id != message.company_id:
        return False
    return all(may_see_record(viewer, records.get(ref)) for ref in message.linked)
