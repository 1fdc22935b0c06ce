"""Fetching whole messages with UID FETCH, and decoding aioimaplib's response lines.

aioimaplib returns, per message, the line that opens the FETCH (ending in the literal's size),
the literal itself as a bytearray, then the closing line. Item order is the server's choice, so
metadata is looked for on both the opening and the closing line.
"""
import re
from dataclasses import dataclass
from datetime import datetime

import aioimaplib

from .connection import _ok

ITEMS = "(UID FLAGS INTERNALDATE RFC822.SIZE BODY.PEEK[])"
_UID = re.compile(rb"\bUID (\d+)")
_FLAGS = re.compile(rb"\bFLAGS \(([^)]*)\)")
_INTERNALDATE = re.compile(rb'\bINTERNALDATE "([^"]+)"')
_SIZE = re.compile(rb"\bRFC822\.SIZE (\d+)")
_FETCH_LINE = re.compile(rb"^\d+ FETCH \(")


@dataclass(frozen=True)
class Fetched:
    uid: int
    flags: tuple[str, ...]
    internal_date: datetime | None
    raw: bytes


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


async def fetch_messages(client: aioimaplib.IMAP4, uids: list[int]) -> list[Fetched]:
    response = await client.uid("fetch", uid_set(uids), ITEMS)
    _ok(response, "UID FETCH")
    return parse_fetch_lines(response.lines)


def parse_fetch_lines(lines: list) -> list[Fetched]:
    out, i = [], 0
    while i < len(lines):
        line = lines[i]
        if isinstance(line, bytes) and _FETCH_LINE.match(line) and i + 1 < len(lines) \
                and isinstance(lines[i + 1], bytearray):
            raw = bytes(lines[i + 1])
            meta = line + (bytes(lines[i + 2]) if i + 2 < len(lines) else b"")
            uid = _UID.search(meta)
            if uid:
                flags = _FLAGS.search(meta)
                idate = _INTERNALDATE.search(meta)
                out.append(Fetched(int(uid.group(1)),
                                   tuple(flags.group(1).decode().split()) if flags else (),
                                   _internaldate(idate.group(1).decode()) if idate else None, raw))
            i += 3
        else:
            i += 1
    return out


def _internaldate(value: str) -> datetime | None:
    try:
        return datetime.strptime(value, "%d-%b-%Y %H:%M:%S %z")
    except ValueError:
        return None
