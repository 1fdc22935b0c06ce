"""CONDSTORE/QRESYNC (RFC 7162): SELECT that also reports what changed since a known MODSEQ.

`SELECT box (QRESYNC (uidvalidity modseq))` answers, besides the usual data, `VANISHED (EARLIER)
<uid set>` for UIDs expunged since that MODSEQ and `n FETCH (UID u FLAGS (..) MODSEQ (m))` for
messages whose flags changed. It needs `ENABLE QRESYNC` once per session first. With a wrong
UIDVALIDITY the server simply reports no changes, so the uidinvalid step still sees the change.
"""
import re
from dataclasses import dataclass, field

import aioimaplib

from maillink_runtime.imap.mailbox_names import mailbox_arg

from .connection import _EXISTS, _SELECT_CODE, Selected
from .errors import FolderMissing, ProtocolError
from .fetch import FlagsSeen, parse_flag_lines

_VANISHED = re.compile(rb"^VANISHED \(EARLIER\) ([0-9:,]+)")


@dataclass(frozen=True)
class QresyncSelected:
    selected: Selected
    vanished: list[tuple[int, int]] = field(default_factory=list)  # UID ranges, possibly with never-used UIDs
    changed: list[FlagsSeen] = field(default_factory=list)


def supports_qresync(client: aioimaplib.IMAP4) -> bool:
    caps = client.protocol.capabilities
    return "QRESYNC" in caps and "ENABLE" in caps


async def enable_qresync(client: aioimaplib.IMAP4) -> bool:
    """Once per session. ENABLE is only legal before the first SELECT (RFC 5161): a session that
    already selected a folder keeps the plain fallback until it reconnects."""
    if (known := getattr(client, "_maillink_qresync", None)) is not None:
        return known
    ok = False
    if client.protocol.state == aioimaplib.AUTH:
        response = await client.enable("QRESYNC")
        ok = response.result == "OK" and any(b"QRESYNC" in bytes(line) for line in response.lines)
    client._maillink_qresync = ok
    return ok


async def select_qresync(client: aioimaplib.IMAP4, folder: str, uidvalidity: int, modseq: int) -> QresyncSelected:
    # Without a known MODSEQ plain CONDSTORE is enough: it makes the server report HIGHESTMODSEQ.
    params = f"(QRESYNC ({uidvalidity} {modseq}))" if uidvalidity and modseq else "(CONDSTORE)"
    response = await client.select(f"{mailbox_arg(folder)} {params}")
    if response.result != "OK":
        raise FolderMissing(f"The folder “{folder}” no longer exists on the server (or cannot be opened).")
    codes, exists, vanished = {}, 0, []
    for line in response.lines:
        line = bytes(line)
        for name, value in _SELECT_CODE.findall(line):
            codes[name.decode()] = int(value)
        if m := _EXISTS.match(line):
            exists = int(m.group(1))
        if m := _VANISHED.match(line):
            vanished.extend(parse_ranges(m.group(1).decode()))
    if "UIDVALIDITY" not in codes:
        raise ProtocolError(f"The server did not report UIDVALIDITY for “{folder}”.")
    selected = Selected(codes["UIDVALIDITY"], codes.get("UIDNEXT", 0), exists, codes.get("HIGHESTMODSEQ"))
    return QresyncSelected(selected, vanished, parse_flag_lines(response.lines))


def parse_ranges(value: str) -> list[tuple[int, int]]:
    out = []
    for part in value.split(","):
        low, _, high = part.partition(":")
        a, b = int(low), int(high or low)
        out.append((min(a, b), max(a, b)))
    return out
