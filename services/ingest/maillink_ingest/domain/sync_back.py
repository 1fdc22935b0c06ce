"""What a mailbox command (sync-back) changes on the server, decided without I/O.

- archive: the message leaves INBOX for the archive folder (the server's \\Archive, else the
  preset's name). A copy outside INBOX is already "archived" and stays where it is.
- delete: every copy not yet in Trash moves to Trash (never expunged for good: the user can still
  restore it in the mail client, as with a delete there).
- mark_read / mark_unread: \\Seen on every copy.
- move: one copy (the INBOX one if there is one) moves to the named folder.
Gmail (All Mail synced by label, sync/gmail.py): archive removes the \\Inbox label; delete moves
to [Gmail]/Trash (Gmail's documented way to delete over IMAP); move adds the target label and
removes \\Inbox (COPY to a label's folder adds that label).
"""
from dataclasses import dataclass

from maillink_schemas.mail import MailboxLocation
from maillink_schemas.matcher import MailboxAction as A

SEEN_ON, SEEN_OFF = "+FLAGS.SILENT (\\Seen)", "-FLAGS.SILENT (\\Seen)"
UNLABEL_INBOX = "-X-GM-LABELS (\\Inbox)"


@dataclass(frozen=True)
class Step:
    location: MailboxLocation
    move_to: str | None = None   # UID MOVE (or COPY + \Deleted + UID EXPUNGE) to this folder
    copy_to: str | None = None   # UID COPY (Gmail: adds the label)
    store: str | None = None     # UID STORE item and value, e.g. +FLAGS.SILENT (\Seen)


@dataclass(frozen=True)
class Targets:
    archive: str
    trash: str
    all_mail: str | None = None  # Gmail's \All folder when the account is synced by label


def special_folder(listed: list[tuple[str, frozenset[str]]], flag: str, fallback: str) -> str:
    """The folder the server marks with a special-use `flag` (RFC 6154), else the preset's name."""
    return next((name for name, flags in listed if flag in flags), fallback)


def plan(action: A, locations: list[MailboxLocation], targets: Targets, folder: str | None = None) -> list[Step]:
    gmail = [loc for loc in locations if targets.all_mail and loc.folder == targets.all_mail]
    if gmail:
        return _gmail(action, gmail[0], targets, folder)
    if action in (A.MARK_READ, A.MARK_UNREAD):
        return [Step(loc, store=SEEN_ON if action == A.MARK_READ else SEEN_OFF) for loc in locations]
    if action == A.ARCHIVE:
        return [Step(loc, move_to=targets.archive) for loc in locations if loc.folder.upper() == "INBOX"]
    if action == A.DELETE:
        return [Step(loc, move_to=targets.trash) for loc in locations if loc.folder != targets.trash]
    if action == A.MOVE:
        if not folder or any(loc.folder == folder for loc in locations):
            return []
        inbox = [loc for loc in locations if loc.folder.upper() == "INBOX"]
        return [Step((inbox or locations)[0], move_to=folder)] if locations else []
    raise ValueError(f"unknown mailbox action {action!r}")


def _gmail(action: A, loc: MailboxLocation, targets: Targets, folder: str | None) -> list[Step]:
    if action in (A.MARK_READ, A.MARK_UNREAD):
        return [Step(loc, store=SEEN_ON if action == A.MARK_READ else SEEN_OFF)]
    if action == A.ARCHIVE:
        return [Step(loc, store=UNLABEL_INBOX)]
    if action == A.DELETE:
        return [Step(loc, move_to=targets.trash)]
    if action == A.MOVE:
        return [Step(loc, copy_to=folder), Step(loc, store=UNLABEL_INBOX)] if folder else []
    raise ValueError(f"unknown mailbox action {action!r}")
