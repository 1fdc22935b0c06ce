"""Fetching whole messages with UID FETCH, and decoding aioimaplib's response lines.

aioimaplib returns, per message, the line that opens the FETCH (ending in the literal's size),
the literal itself as a bytearray, then the closing line. Item order is the server's choice, so
metadata is looked for on both the opening and the closing line.

Quirks handled here, because each one used to lose mail silently:
- a FETCH item may carry its body as a quoted string or NIL instead of a literal (servers do this
  for empty or unavailable bodies): it is reported as `bodiless`, never skipped without a trace;
- a server may leave a requested UID out of the answer altogether (expunged meanwhile, or a bug):
  the caller compares what it asked for with `FetchAnswer.seen` and what was delivered;
- a server may answer NO for a whole set because of one message (Gmail: "Some messages could not
  be FETCHed"): `FetchRefused` lets the caller narrow it down to that message.
"""
import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

import aioimaplib

from .connection import _ok
from .errors import ProtocolError

ITEMS = "(UID FLAGS INTERNALDATE RFC822.SIZE BODY.PEEK[])"
_UID = re.compile(rb"\bUID (\d+)")
_FLAGS = re.compile(rb"\bFLAGS \(([^)]*)\)")
_MODSEQ = re.compile(rb"\bMODSEQ \((\d+)\)")
_INTERNALDATE = re.compile(rb'\bINTERNALDATE "([^"]+)"')
_SIZE = re.compile(rb"\bRFC822\.SIZE (\d+)")
_FETCH_LINE = re.compile(rb"^\d+ FETCH \(")
_MESSAGE_ID = re.compile(rb"(?im)^Message-ID:\s*<([^<>\s]+)>")
_QUOTED_BODY = re.compile(rb'\bBODY\[[^\]]*\] "((?:[^"\\]|\\.)*)"')


class FetchRefused(ProtocolError):
    """The server answered NO (or BAD) to a UID FETCH."""


@dataclass(frozen=True)
class Fetched:
    uid: int
    flags: tuple[str, ...]
    internal_date: datetime | None
    raw: bytes


@dataclass
class FetchAnswer:
    messages: list[Fetched] = field(default_factory=list)
    bodiless: list[int] = field(default_factory=list)  # answered, but without the message's content

    def __iter__(self):  # iterating an answer iterates its messages, as the plain list it replaced
        return iter(self.messages)

    def __len__(self) -> int:
        return len(self.messages)


@dataclass(frozen=True)
class FlagsSeen:
    uid: int
    flags: tuple[str, ...]
    modseq: int | None


def uid_set(uids: list[int]) -> str:
    """Compact UID set, e.g. [1,2,3,7] -> '1:3,7' (keeps command lines short)."""
    ranges, start, prev = [], None, None
    for uid in sorted(uids):
        if start is None:
            start = prev = uid
        elif uid == prev + 1:
            prev = uid
        else:
            ranges.append(f"{start}:{prev}" if start != prev else str(start))
            start = prev = uid
    if start is not None:
        ranges.append(f"{start}:{prev}" if start != prev else str(start))
    return ",".join(ranges)


async def fetch_sizes(client: aioimaplib.IMAP4, uids: list[int]) -> dict[int, int]:
    response = await client.uid("fetch", uid_set(uids), "(UID RFC822.SIZE)")
    _ok(response, "UID FETCH")
    sizes = {}
    for line in response.lines:
        if isinstance(line, (bytes, bytearray)) and (u := _UID.search(line)) and (s := _SIZE.search(line)):
            sizes[int(u.group(1))] = int(s.group(1))
    return sizes


async def fetch_messages(client: aioimaplib.IMAP4, uids: list[int]) -> FetchAnswer:
    response = await client.uid("fetch", uid_set(uids), ITEMS)
    if response.result != "OK":
        raise FetchRefused(f"The server refused to send message(s) {uid_set(uids)}: "
                           f"{b' '.join(map(bytes, response.lines))[:200].decode(errors='replace')}")
    return parse_fetch_answer(response.lines)


async def fetch_flags(client: aioimaplib.IMAP4, uids: list[int] | str, changed_since: int | None = None
                      ) -> list[FlagsSeen]:
    """FLAGS (and MODSEQ with CONDSTORE) of a UID set; `changed_since` only asks for what changed."""
    modifier = f" (CHANGEDSINCE {changed_since})" if changed_since else ""
    response = await client.uid("fetch", uids if isinstance(uids, str) else uid_set(uids), f"(UID FLAGS){modifier}")
    _ok(response, "UID FETCH FLAGS")
    return parse_flag_lines(response.lines)


async def fetch_message_ids(client: aioimaplib.IMAP4, uids: list[int] | str) -> dict[int, str | None]:
    """Message-ID per UID, from the header alone (cheap: a few dozen bytes per message)."""
    response = await client.uid("fetch", uids if isinstance(uids, str) else uid_set(uids),
                                "(UID BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)])")
    _ok(response, "UID FETCH MESSAGE-ID")
    return {m.uid: (found.group(1).decode(errors="replace") if (found := _MESSAGE_ID.search(m.raw)) else None)
            for m in parse_fetch_answer(response.lines).messages}


def parse_flag_lines(lines: list) -> list[FlagsSeen]:
    out = []
    for line in lines:
        line = bytes(line) if isinstance(line, (bytes, bytearray)) else b""
        if _FETCH_LINE.match(line) and (u := _UID.search(line)) and (f := _FLAGS.search(line)):
            m = _MODSEQ.search(line)
            out.append(FlagsSeen(int(u.group(1)), tuple(f.group(1).decode().split()), int(m.group(1)) if m else None))
    return out


def parse_fetch_lines(lines: list) -> list[Fetched]:
    return parse_fetch_answer(lines).messages


def parse_fetch_answer(lines: list) -> FetchAnswer:
    answer, i = FetchAnswer(), 0
    while i < len(lines):
        line = lines[i]
        if isinstance(line, bytes) and _FETCH_LINE.match(line):
            if i + 1 < len(lines) and isinstance(lines[i + 1], bytearray):
                meta = line + (bytes(lines[i + 2]) if i + 2 < len(lines) else b"")
                _add(answer, meta, bytes(lines[i + 1]))
                i += 3
                continue
            # No literal: the body came quoted, as NIL, or not at all.
            quoted = _QUOTED_BODY.search(line)
            _add(answer, line, _unquote(quoted.group(1)) if quoted else None)
        i += 1
    return answer


def _add(answer: FetchAnswer, meta: bytes, raw: bytes | None) -> None:
    uid = _UID.search(meta)
    if not uid:
        return
    if raw is None:
        answer.bodiless.append(int(uid.group(1)))
        return
    flags, idate = _FLAGS.search(meta), _INTERNALDATE.search(meta)
    answer.messages.append(Fetched(int(uid.group(1)), tuple(flags.group(1).decode().split()) if flags else (),
                                   _internaldate(idate.group(1).decode()) if idate else None, raw))


def _unquote(value: bytes) -> bytes:
    return re.sub(rb"\\(.)", rb"\1", value)


_MONTHS = {name: number for number, name in enumerate(
    ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"), 1)}
_ZONES: dict[str, timezone] = {}


def _internaldate(value: str) -> datetime | None:
    """INTERNALDATE ("dd-Mon-yyyy hh:mm:ss +zzzz", the day may be space-padded) as strptime reads it
    with "%d-%b-%Y %H:%M:%S %z", without strptime's cost (one per fetched message); anything else
    goes to strptime itself (tests/unit/test_imap_parsing.py compares the two)."""
    try:
        day, month, rest = value.split("-", 2)
        year, clock, zone = rest.split(" ")
        hour, minute, second = clock.split(":")
        tz = _ZONES.get(zone)
        if tz is None:
            if len(zone) != 5 or zone[0] not in "+-" or not zone[1:].isdigit():
                raise ValueError(zone)
            offset = timedelta(hours=int(zone[1:3]), minutes=int(zone[3:5]))
            tz = _ZONES.setdefault(zone, timezone(-offset if zone[0] == "-" else offset))
        if not (len(year) == 4 and len(hour) == len(minute) == len(second) == 2 and len(day) in (1, 2)
                and (year + hour + minute + second + day.lstrip(" ")).isascii()
                and (year + hour + minute + second + day.lstrip(" ")).isdigit()):
            raise ValueError(value)
        return datetime(int(year), _MONTHS[month], int(day), int(hour), int(minute), int(second), tzinfo=tz)
    except (ValueError, KeyError):
        try:
            return datetime.strptime(value, "%d-%b-%Y %H:%M:%S %z")
        except ValueError:
            return None
