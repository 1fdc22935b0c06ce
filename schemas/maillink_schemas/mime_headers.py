"""Reading header values as written, leniently. Pure; never raises.

Each lenient step leaves a warning (see envelope.py): the raw MIME keeps the original.
"""
import re
from datetime import datetime, timezone
from email.errors import HeaderParseError
from email.header import decode_header
from email.utils import getaddresses, parsedate_to_datetime

from .mail import Address, Envelope

MSGID = re.compile(r"<([^<>\s]+)>")
_WS = re.compile(r"\s+")
ENCODED_WORD = re.compile(r"=\?[^?\s]+\?[bBqQ]\?[^?\s]*\?=")
CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def header_text(value: str, warnings: list[str]) -> str:
    """Decodes encoded words the parser left as they were (an unknown charset), and drops control bytes."""
    if ENCODED_WORD.search(value):
        try:
            words = decode_header(value)
        except (HeaderParseError, ValueError):
            # An encoded word that cannot be decoded at all (b"=?utf-8?B?!!!?="): the stdlib gives up
            # on the whole header, so keep it as written rather than lose the message.
            warnings.append("undecodable encoded word in a header, kept as written")
            words = [(value, None)]
        parts = []
        for chunk, charset in words:
            if isinstance(chunk, str):
                parts.append(chunk)
                continue
            try:
                parts.append(chunk.decode(charset or "ascii"))
            except (LookupError, ValueError):  # ValueError: also a charset name with a NUL in it
                parts.append(fallback_decode(chunk))
                warnings.append(f"unknown charset {charset!r} in a header, decoded as UTF-8 or Latin-1")
        value = "".join(parts)
    if CONTROL.search(value):
        warnings.append("control characters removed from a header")
        value = CONTROL.sub("", value)
    return clean(value)


def fallback_decode(data: bytes) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode("latin-1")


def header_warnings(raw: bytes, envelope: Envelope, date_header: str | None) -> list[str]:
    warnings = []
    end = raw.find(b"\r\n\r\n")
    head = raw[:end if end >= 0 else raw.find(b"\n\n") if raw.find(b"\n\n") >= 0 else len(raw)]
    if not head.isascii():  # a byte over 0x7F (in C: the generator over each byte cost ~0.02 ms a message)
        warnings.append("unencoded 8-bit bytes in the headers (read as UTF-8, else Latin-1)")
    if envelope.date is None:
        warnings.append("unreadable Date header" if date_header else "no Date header")
    if envelope.message_id is None:
        warnings.append("no Message-ID")
    return warnings


def first_id(value: str | None) -> str | None:
    found = ids(value)
    if found:
        return found[0]
    # Some senders omit the angle brackets; keep the bare token rather than lose the id.
    return value.strip() or None if value and " " not in value.strip() else None


def ids(value: str | None) -> list[str]:
    return MSGID.findall(value) if value else []


def clean(text: str) -> str:
    # Same as _WS.sub(" ", text).strip() (str.split and re's \s both use Py_UNICODE_ISSPACE), 3-4x faster.
    return " ".join(text.split())


def parse_date(parsed, header: str | None) -> datetime | None:
    if isinstance(parsed, datetime):
        return _utc(parsed)
    try:
        value = parsedate_to_datetime(header) if header else None
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    return None if value is None else _utc(value)


def _utc(value: datetime) -> datetime | None:
    # "31 Dec 9999 23:59:59 -1200" is a valid date whose UTC instant is in year 10000, which
    # datetime cannot hold: an unreadable date, like any other.
    try:
        return value.astimezone(timezone.utc) if value.tzinfo else value.replace(tzinfo=timezone.utc)
    except (OverflowError, ValueError):
        return None


def addresses_from_header(value: str | None) -> list[Address]:
    if not value:  # most messages have no Sender: getaddresses([""]) costs ~10 us to find nothing
        return []
    return [Address(email=a.lower(), name=n or None) for n, a in getaddresses([value]) if "@" in a]
