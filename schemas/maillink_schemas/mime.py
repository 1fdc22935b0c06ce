"""Raw MIME -> the parsed envelope carried by mail.message.received.v1. Pure; never raises.

Shared by ingest and bcc-gateway (moved here from ingest's domain/envelope.py unchanged): the
message key is computed from this envelope, so both must parse with the same code.
"""
import re
from dataclasses import dataclass, field
from email.utils import getaddresses, parsedate_to_datetime
from datetime import datetime, timezone

from fast_mail_parser import parse_email

from .mail import Address, BulkSignals, Envelope

SNIPPET_CHARS = 280
_MSGID = re.compile(r"<([^<>\s]+)>")
_WS = re.compile(r"\s+")
_TAGS = re.compile(r"<[^>]*>")


@dataclass(frozen=True)
class ParsedMessage:
    envelope: Envelope
    snippet: str = ""
    has_attachments: bool = False
    bulk: BulkSignals = field(default_factory=BulkSignals)
    provider_thread_id: str | None = None
    error: str | None = None


def parse(raw: bytes) -> ParsedMessage:
    # fast-mail-parser (Rust's mail-parser) is ~12x faster than the stdlib with policy.default.
    try:
        mail = parse_email(raw)
    except Exception as exc:  # noqa: BLE001 - broken MIME is still ingested, with the reason
        return ParsedMessage(Envelope(), error=f"unparseable MIME: {exc}")
    headers = mail.headers or {}
    envelope = Envelope(
        message_id=_first_id(_header(headers, "Message-ID")),
        in_reply_to=_ids(_header(headers, "In-Reply-To")),
        references=_ids(_header(headers, "References")),
        subject=_clean(mail.subject or ""),
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
    )


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
    except (TypeError, ValueError):
        return None
    if value is None:
        return None
    return value.astimezone(timezone.utc) if value.tzinfo else value.replace(tzinfo=timezone.utc)


def _addresses(items) -> list[Address]:
    out = []
    for item in items or []:
        email = (getattr(item, "address", None) or "").strip().lower()
        if "@" in email:
            out.append(Address(email=email, name=_clean(item.display_name) if item.display_name else None))
    return out


def _addresses_from_header(value: str | None) -> list[Address]:
    return [Address(email=a.lower(), name=n or None) for n, a in getaddresses([value or ""]) if "@" in a]


def _snippet(plain: list[str] | None, html: list[str] | None) -> str:
    text = " ".join(plain or [])
    if not text.strip() and html:
        text = _TAGS.sub(" ", " ".join(html))
    return _clean(text)[:SNIPPET_CHARS]


def _bulk(headers: dict) -> BulkSignals:
    auto = (_header(headers, "Auto-Submitted") or "").strip().lower()
    return BulkSignals(
        list_id=_header(headers, "List-Id"),
        list_unsubscribe=_header(headers, "List-Unsubscribe") is not None,
        precedence=(_header(headers, "Precedence") or "").strip().lower() or None,
        auto_submitted=auto if auto and auto != "no" else None,
    )
