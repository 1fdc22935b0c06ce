"""Gmail: sync `[Gmail]/All Mail` once, by label, instead of every label's folder.

In Gmail folders are labels, so one message sits in INBOX, in "Work" and in All Mail at once;
syncing each folder would fetch it once per label. When the server offers X-GM-EXT-1:
- `choose` replaces the folder plan with one plan for the \\All folder, carrying the selected
  labels (the account's folder selection, translated: INBOX -> \\Inbox, the \\Sent folder ->
  \\Sent, "Work" -> Work; "all folders" -> every label but drafts);
- `LabelSync` asks for X-GM-MSGID, X-GM-THRID and X-GM-LABELS with the sizes (one round trip, no
  change to what FolderSync fetches), keeps only messages that carry a selected label, and
  annotates each event: labels, `provider_message_id` (X-GM-MSGID: stable across labels and
  UIDVALIDITY changes), `provider_thread_id` (X-GM-THRID), and outgoing for \\Sent.
Servers without X-GM-EXT-1 get domain/folders.choose unchanged.
"""
import re
from dataclasses import dataclass, field

import aioimaplib

from maillink_runtime.imap.mailbox_names import decode_name, rejoin_literals
from maillink_runtime.imap.strings import read_astring
from maillink_schemas.accounts import FolderSelection
from maillink_schemas.mail import Direction, MessageReceived

from ..domain.folders import FolderPlan, choose as choose_folders
from ..imap.connection import _ok
from ..imap.fetch import uid_set

CAPABILITY = "X-GM-EXT-1"
ITEMS = "(UID RFC822.SIZE X-GM-MSGID X-GM-THRID X-GM-LABELS)"
DRAFT, SENT, INBOX = "\\Draft", "\\Sent", "\\Inbox"
# Special-use flags of Gmail's system folders and the label each stands for in X-GM-LABELS.
_FLAG_LABELS = {"\\Sent": SENT, "\\Flagged": "\\Starred", "\\Important": "\\Important", "\\Drafts": DRAFT}
_NUM = {name: re.compile(rb"\b" + name.encode() + rb" (\d+)") for name in ("UID", "RFC822.SIZE", "X-GM-MSGID",
                                                                           "X-GM-THRID")}
_LABELS = re.compile(rb"\bX-GM-LABELS \(")


@dataclass(frozen=True)
class GmailMeta:
    msgid: str
    thrid: str
    labels: tuple[str, ...]


def offers_labels(capabilities) -> bool:
    return CAPABILITY in {c.upper() for c in capabilities}


def choose(capabilities, listed: list[tuple[str, frozenset[str]]],
           selection: FolderSelection) -> tuple[list[FolderPlan], list[str]]:
    """The folders to sync: All Mail by label on Gmail, else the account's folders."""
    all_mail = next((name for name, flags in listed if "\\All" in flags), None)
    if not offers_labels(capabilities) or all_mail is None:
        return choose_folders(listed, selection)
    if selection.all_folders:
        return [FolderPlan(all_mail, is_sent=False, by_label=True)], []
    labels, missing = wanted_labels(listed, selection.folders)
    return ([FolderPlan(all_mail, is_sent=False, by_label=True, labels=frozenset(labels))] if labels else []), missing


def wanted_labels(listed: list[tuple[str, frozenset[str]]], folders: list[str]) -> tuple[set[str], list[str]]:
    flags_of = {name: flags for name, flags in listed}
    labels, missing = set(), []
    for wanted in folders:
        if wanted.upper() == "INBOX":
            labels.add(INBOX)
        elif wanted.lower() in {"sent", "\\sent"}:
            labels.add(SENT)  # "Sent" means the server's sent folder, whatever it is called
        elif wanted in flags_of:
            special = next((_FLAG_LABELS[f] for f in flags_of[wanted] if f in _FLAG_LABELS), None)
            labels.add(special or wanted)  # a user label's folder name is the label itself
        else:
            missing.append(wanted)
    return labels, missing


def parse_meta(line: bytes) -> tuple[int, int, GmailMeta] | None:
    """(uid, size, meta) from one FETCH response; Gmail orders the items as it likes."""
    nums = {name: m.group(1) for name, rx in _NUM.items() if (m := rx.search(line))}
    if "UID" not in nums or "RFC822.SIZE" not in nums:
        return None
    return int(nums["UID"]), int(nums["RFC822.SIZE"]), GmailMeta(
        (nums.get("X-GM-MSGID") or b"").decode(), (nums.get("X-GM-THRID") or b"").decode(), parse_labels(line))


def parse_labels(line: bytes) -> tuple[str, ...]:
    m = _LABELS.search(line)
    if not m:
        return ()
    labels, pos = [], m.end()
    while pos < len(line) and line[pos:pos + 1] != b")":
        if line[pos:pos + 1] == b" ":
            pos += 1
            continue
        raw, pos = read_astring(line, pos)
        # System labels (\Inbox, \Sent, ...) are atoms; user labels are modified UTF-7 like folder names.
        labels.append(raw.decode("ascii", "replace") if raw.startswith(b"\\") else (decode_name(raw) or
                                                                                   raw.decode("utf-8", "replace")))
    return tuple(labels)


@dataclass
class LabelSync:
    """One folder pass on All Mail: which UIDs carry a selected label, and what to add to their events."""

    labels: frozenset[str] | None  # None: every label but drafts
    metas: dict[int, GmailMeta] = field(default_factory=dict)
    # UIDs present on the server but deliberately not synced (no selected label, or a draft): a cursor
    # may pass them like delivered ones; they are not losses for reconciliation to repair.
    skipped: set[int] = field(default_factory=set)

    def wanted(self, meta: GmailMeta) -> bool:
        if DRAFT in meta.labels and (self.labels is None or DRAFT not in self.labels):
            return False  # drafts are unfinished: never synced unless asked for by name
        return self.labels is None or bool(self.labels & set(meta.labels))

    async def sizes(self, client: aioimaplib.IMAP4, uids: list[int]) -> dict[int, int]:
        response = await client.uid("fetch", uid_set(uids), ITEMS)
        _ok(response, "UID FETCH")
        sizes = {}
        for line in rejoin_literals(response.lines[:-1]):
            if not (found := parse_meta(line)):
                continue
            uid, size, meta = found
            if self.wanted(meta):
                sizes[uid], self.metas[uid] = size, meta
            else:
                self.skipped.add(uid)
        return sizes

    def annotate(self, event: MessageReceived) -> MessageReceived:
        meta = self.metas.get(event.location.uid) if event.location else None
        if meta is None:
            return event
        update = {"labels": list(meta.labels), "provider_message_id": meta.msgid or None,
                  "provider_thread_id": meta.thrid or event.provider_thread_id}
        if SENT in meta.labels:
            update["direction"] = Direction.OUTGOING
        return event.model_copy(update=update)


def strategy_for(plan: FolderPlan) -> LabelSync | None:
    """FolderSync's hook: a LabelSync for a Gmail All Mail plan, else None (plain folder sync)."""
    return LabelSync(plan.labels) if plan.by_label else None
