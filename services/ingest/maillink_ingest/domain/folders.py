"""Which server folders an account syncs. Pure."""
from dataclasses import dataclass

from collections.abc import Iterable

from maillink_schemas.accounts import FolderSelection
from maillink_schemas.mail import ExpungeReason

# Never synced even with "all folders": drafts are unfinished, trash and spam are not conversations.
_SKIP_FLAGS = {"\\Trash", "\\Junk", "\\Drafts", "\\Noselect", "\\NonExistent"}


@dataclass(frozen=True)
class FolderPlan:
    name: str
    is_sent: bool
    # Gmail (sync/gmail.py): All Mail synced by label; `labels` are the selected ones (None: all but drafts).
    by_label: bool = False
    labels: frozenset[str] | None = None


def choose(listed: list[tuple[str, frozenset[str]]], selection: FolderSelection) -> tuple[list[FolderPlan], list[str]]:
    """Returns the folders to sync and the requested names the server does not have."""
    by_name = {name: flags for name, flags in listed}
    sent_names = {name for name, flags in listed if "\\Sent" in flags}
    if selection.all_folders:
        names = [name for name, flags in listed if not flags & _SKIP_FLAGS]
        missing = []
    else:
        names, missing = [], []
        for wanted in selection.folders:
            # "Sent" means the server's sent folder, whatever it is called (Sent Items, [Gmail]/Sent Mail…).
            actual = wanted if wanted in by_name else (
                next(iter(sorted(sent_names)), None) if wanted.lower() in {"sent", "\\sent"} else None)
            if wanted.upper() == "INBOX":
                actual = next((n for n in by_name if n.upper() == "INBOX"), None)
            (names.append(actual) if actual else missing.append(wanted))
    unique = list(dict.fromkeys(names))
    return [FolderPlan(n, n in sent_names or n.lower() == "sent") for n in unique], missing


@dataclass(frozen=True)
class Retired:
    """A folder that has stored sync state but is no longer synced; its messages are reported gone."""
    folder: str
    reason: ExpungeReason


def retired(stored: Iterable[str], planned: Iterable[str], listed: Iterable[str]) -> list[Retired]:
    """The folders with stored state that this pass no longer syncs.

    Still on the server: the account's selection dropped it (or Gmail's label sync replaced it).
    Not listed any more: it is gone from the server for good; a folder created again under that name
    is a new mailbox (a new UIDVALIDITY), so the old locations are dead either way. A selected folder
    that is missing stays a folder problem in the status as well (session.py).
    """
    planned, listed = set(planned), set(listed)
    return [Retired(name, ExpungeReason.FOLDER_UNSELECTED if name in listed else ExpungeReason.FOLDER_VANISHED)
            for name in sorted(set(stored)) if name not in planned]
