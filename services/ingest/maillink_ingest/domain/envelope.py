"""Raw MIME -> the parsed envelope carried by mail.message.received.v1. Pure; never raises.

Parsing never loses mail: whatever cannot be read as written is read leniently, and each such
step leaves a warning on the event (the raw MIME, kept in the blob store, has the original):
- MIME the fast parser refuses (bad base64, broken multipart) -> the stdlib's lenient parser;
- encoded words in an unknown charset -> UTF-8, else Latin-1 (every byte maps to something);
- unencoded 8-bit bytes in headers -> read as UTF-8 or Latin-1 by the parser, and said so;
- a missing or unreadable Date -> null here; received.py falls back to INTERNALDATE;
- a missing Message-ID -> null; the message key is built from content anyway (identity.py).
"""
import email
import re
from dataclasses import dataclass, field
from email import policy
from email.header import decode_header
from email.utils import getaddresses, parsedate_to_datetime
from datetime import datetime, timezone

from fast_mail_parser import parse_email

from maillink_schemas.mail import Address, BulkSignals, Envelope

SNIPPET_CHARS = 280
_MSGID = re.compile(r"<([^<>\s]+)>")
_WS = re.compile(r"\s+")
_TAGS = re.compile(r"<[^>]*>")
_ENCODED_WORD = re.compile(r"=\?[^?\s]+\?[bBqQ]\?[^?\s]*\?=")
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


@dataclass(frozen=True)
class ParsedMessage:
    envelope: Envelope
    snippet: str = ""
    has_attachments: bool = False
    bulk: BulkSignals = field(default_factory=BulkSignals)
    provider_thread_id: str | None = None
    error: str | None = None
    warnings: tuple[str, ...] = ()


def parse(raw: bytes) -> ParsedMessage:
    # fast-mail-parser (Rust's mail-parser) is ~12x faster than the stdlib with policy.default.
    try:
        mail = parse_email(raw)
    except Exception as exc:  # noqa: BLE001 - broken MIME is still ingested, with the reason
        return _lenient(raw, f"unparseable MIME ({exc}); headers and text read leniently")
    warnings: list[str] = []
    headers = mail.headers or {}
    envelope = Envelope(
        message_id=_first_id(_header(headers, "Message-ID")),
        in_reply_to=_ids(_header(headers, "In-Reply-To")),
        references=_ids(_header(headers, "References")),
        subject=_text(mail.subject or "", warnings),
        date=_date(mail.date_parsed, _header(headers, "Date")),
        **{"from": _addresses([mail.from_] if mail.from_ else [])},
        sender=next(iter(_addresses_from_header(_header(headers, "Sender"))), None),
        to=_addresses(mail.to), cc=_addresses(mail.cc), bcc=_addresses(mail.bcc),
        reply_to=_addresses(mail.reply_to),
    )
    return ParsedMessage(
        envelope=envelope,
        snippet=_snippet(mail.text_plain, mail.text_html),
        has_attachments=any((a.disposition or "").lower() != "inline" for a in mail.attachments or []),
        bulk=_bulk(headers),
        warnings=tuple(warnings + _header_warnings(raw, envelope, _header(headers, "Date"))),
    )


def _lenient(raw: bytes, error: str) -> ParsedMessage:
    """The stdlib's compat32 parser never refuses input: it reads what it can and records defects."""
    warnings: list[str] = []
    msg = email.message_from_bytes(raw, policy=policy.compat32)

    def get(name: str) -> str | None:
        value = msg.get(name)
        return None if value is None else _text(str(value), warnings)

    envelope = Envelope(
        message_id=_first_id(get("Message-ID")), in_reply_to=_ids(get("In-Reply-To")),
        references=_ids(get("References")), subject=get("Subject") or "", date=_date(None, get("Date")),
        **{"from": _addresses_from_header(get("From"))},
        sender=next(iter(_addresses_from_header(get("Sender"))), None),
        to=_addresses_from_header(get("To")), cc=_addresses_from_header(get("Cc")),
        bcc=_addresses_from_header(get("Bcc")), reply_to=_addresses_from_header(get("Reply-To")),
    )
    plain = [_payload_text(p) for p in msg.walk() if p.get_content_type() == "text/plain"]
    attachments = [p for p in msg.walk() if p.get_filename()]
    headers = {k: [str(v)] for k, v in msg.items()}
    return ParsedMessage(envelope=envelope, snippet=_snippet(plain, None), has_attachments=bool(attachments),
                         bulk=_bulk(headers), error=error,
                         warnings=tuple(warnings + _header_warnings(raw, envelope, get("Date"))))


def _payload_text(part) -> str:
    data = part.get_payload(decode=True) or b""
    try:
        return data.decode(part.get_content_charset() or "utf-8")
    except (LookupError, UnicodeDecodeError):
        return data.decode("latin-1")


def _text(value: str, warnings: list[str]) -> str:
    """Decodes encoded words the parser left as they were (an unknown charset), and drops control bytes."""
    if _ENCODED_WORD.search(value):
        parts = []
        for chunk, charset in decode_header(value):
            if isinstance(chunk, str):
                parts.append(chunk)
                continue
            try:
                parts.append(chunk.decode(charset or "ascii"))
            except (LookupError, UnicodeDecodeError):
                parts.append(_fallback_decode(chunk))
                warnings.append(f"unknown charset {charset!r} in a header, decoded as UTF-8 or Latin-1")
        value = "".join(parts)
    if _CONTROL.search(value):
        warnings.append("control characters removed from a header")
        value = _CONTROL.sub("", value)
    return _clean(value)


def _fallback_decode(data: bytes) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode("latin-1")


def _header_warnings(raw: bytes, envelope: Envelope, date_header: str | None) -> list[str]:
    warnings = []
    end = raw.find(b"\r\n\r\n")
    head = raw[:end if end >= 0 else raw.find(b"\n\n") if raw.find(b"\n\n") >= 0 else len(raw)]
    if any(b > 0x7F for b in head):
        warnings.append("unencoded 8-bit bytes in the headers (read as UTF-8, else Latin-1)")
    if envelope.date is None:
        warnings.append("unreadable Date header" if date_header else "no Date header")
    if envelope.message_id is None:
        warnings.append("no Message-ID")
    return warnings


def _header(headers: dict, name: str) -> str | None:
    for key, values in headers.items():
        if key.lower() == name.lower() and values:
            return values[0] if isinstance(values, list) else str(values)
    return None


def _first_id(value: str | None) -> str | None:
    ids = _ids(value)
    if ids:
        return ids[0]
    # Some senders omit the angle brackets; keep the bare token rather than lose the id.
    return value.strip() or None if value and " " not in value.strip() else None


def _ids(value: str | None) -> list[str]:
    return _MSGID.findall(value) if value else []


def _clean(text: str) -> str:
    return _WS.sub(" ", text).strip()


def _date(parsed, header: str | None) -> datetime | None:
    if isinstance(parsed, datetime):
        return parsed.astimezone(timezone.utc) if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)
    try:
        value = parsedate_to_datetime(header) if header else None
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if value is None:
        return None
    return value.astimezone(timezone.utc) if value.tzinfo else value.replace(tzinfo=timezone.utc)


def _addresses(items) -> list[Address]:
    out = []
    for item in items or []:
        email_ = (getattr(item, "address", None) or "").strip().lower()
        if "@" in email_:
            out.append(Address(email=email_, name=_clean(item.display_name) if item.display_name else None))
    return out


def _addresses_from_header(value: str | None) -> list[Address]:
    return [Address(email=a.lower(), name=n or None) for n, a in getaddresses([value or ""]) if "@" in a]


def _snippet(plain: list[str] | None, html: list[str] | None) -> str:
    text = " ".join(plain or [])
    if not text.strip() and html:
        text = _TAGS.sub(" ", " ".join(html))
    return _CONTROL.sub("", _clean(text))[:SNIPPET_CHARS]


def _bulk(headers: dict) -> BulkSignals:
    auto = (_header(headers, "Auto-Submitted") or "").strip().lower()
    return BulkSignals(
        list_id=_header(headers, "List-Id"),
        list_unsubscribe=_header(headers, "List-Unsubscribe") is not None,
        precedence=(_header(headers, "Precedence") or "").strip().lower() or None,
        auto_submitted=auto if auto and auto != "no" else None,
    )
