"""Raw MIME -> the parsed envelope carried by mail.message.received.v1. Pure; never raises.
Shared by ingest and bcc-gateway: the message key is computed from what this parser reads.

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

from fast_mail_parser import parse_email

from .mail import Address, BulkSignals, Envelope

from .mime_headers import (CONTROL, addresses_from_header, clean, first_id, header_text, header_warnings, ids,
                            parse_date)

SNIPPET_CHARS = 280
_TAGS = re.compile(r"<[^>]*>")


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
    """Never raises: each known breakage is handled where it is read (and said in a warning); what
    the fuzzer (tests/unit/test_fuzz_mime.py) finds next still gives an event, read by the lenient
    parser, or failing that with only the raw MIME to go by. Losing mail is worse than a thin event."""
    try:
        return _parse(raw)
    except Exception as exc:  # noqa: BLE001 - see above
        try:
            return _lenient(raw, f"parser error ({type(exc).__name__}: {exc}); headers and text read leniently")
        except Exception as again:  # noqa: BLE001
            return ParsedMessage(envelope=Envelope(), error=f"unreadable message ({type(again).__name__}: {again}); "
                                 "only the raw MIME is kept", warnings=("message unreadable",))


def _parse(raw: bytes) -> ParsedMessage:
    # fast-mail-parser (Rust's mail-parser) is ~12x faster than the stdlib with policy.default.
    try:
        mail = parse_email(raw)
    except Exception as exc:  # noqa: BLE001 - broken MIME is still ingested, with the reason
        return _lenient(raw, f"unparseable MIME ({exc}); headers and text read leniently")
    warnings: list[str] = []
    headers = _by_name(mail.headers or {})
    envelope = Envelope(
        message_id=first_id(_header(headers, "Message-ID")),
        in_reply_to=ids(_header(headers, "In-Reply-To")),
        references=ids(_header(headers, "References")),
        subject=header_text(mail.subject or "", warnings),
        date=parse_date(_date_parsed(mail), _header(headers, "Date")),
        **{"from": _addresses([mail.from_] if mail.from_ else [])},
        sender=next(iter(addresses_from_header(_header(headers, "Sender"))), None),
        to=_addresses(mail.to), cc=_addresses(mail.cc), bcc=_addresses(mail.bcc),
        reply_to=_addresses(mail.reply_to),
    )
    return ParsedMessage(
        envelope=envelope,
        snippet=_snippet(mail.text_plain, mail.text_html),
        has_attachments=any((a.disposition or "").lower() != "inline" for a in mail.attachments or []),
        bulk=_bulk(headers),
        warnings=tuple(warnings + header_warnings(raw, envelope, _header(headers, "Date"))),
    )


def _date_parsed(mail):
    # fast-mail-parser builds the datetime when the attribute is read, and raises for a date it
    # parsed but datetime cannot hold (year 0, year 10000 once in UTC); the header text is retried.
    try:
        return mail.date_parsed
    except (ValueError, OverflowError):
        return None


def _lenient(raw: bytes, error: str) -> ParsedMessage:
    """The stdlib's compat32 parser never refuses input: it reads what it can and records defects."""
    warnings: list[str] = []
    msg = email.message_from_bytes(raw, policy=policy.compat32)

    def get(name: str) -> str | None:
        value = msg.get(name)
        return None if value is None else header_text(str(value), warnings)

    envelope = Envelope(
        message_id=first_id(get("Message-ID")), in_reply_to=ids(get("In-Reply-To")),
        references=ids(get("References")), subject=get("Subject") or "", date=parse_date(None, get("Date")),
        **{"from": addresses_from_header(get("From"))},
        sender=next(iter(addresses_from_header(get("Sender"))), None),
        to=addresses_from_header(get("To")), cc=addresses_from_header(get("Cc")),
        bcc=addresses_from_header(get("Bcc")), reply_to=addresses_from_header(get("Reply-To")),
    )
    parts = list(msg.walk())
    plain = [_payload_text(p) for p in parts if _safely(p.get_content_type) == "text/plain"]
    # get_filename raises TypeError on broken RFC 2231 continuations (name*0*=..; name*1=..; name*=..).
    attachments = [p for p in parts if _safely(p.get_filename)]
    headers = _by_name({k: [str(v)] for k, v in msg.items()})
    return ParsedMessage(envelope=envelope, snippet=_snippet(plain, None), has_attachments=bool(attachments),
                         bulk=_bulk(headers), error=error,
                         warnings=tuple(warnings + header_warnings(raw, envelope, get("Date"))))


def _safely(read):
    try:
        return read()
    except Exception:  # noqa: BLE001 - the stdlib's readers of broken parameters raise what they like
        return None


def _payload_text(part) -> str:
    data = _safely(lambda: part.get_payload(decode=True)) or b""
    if not isinstance(data, bytes):
        return ""
    try:
        return data.decode(_safely(part.get_content_charset) or "utf-8")
    except (LookupError, ValueError):
        return data.decode("latin-1")


def _header(headers: dict[str, str], name: str) -> str | None:
    return headers.get(name.lower())


def _by_name(headers: dict) -> dict[str, str]:
    """The first non-empty value of each header, by lower-cased name: built once per message (headers
    are looked up ten times, and scanning all of them for each took as long as the MIME parse)."""
    found: dict[str, str] = {}
    for key, values in headers.items():
        if values and (lower := key.lower()) not in found:
            found[lower] = values[0] if isinstance(values, list) else str(values)
    return found


def _addresses(items) -> list[Address]:
    out = []
    for item in items or []:
        email_ = (getattr(item, "address", None) or "").strip().lower()
        if "@" in email_:
            out.append(Address(email=email_, name=clean(item.display_name) if item.display_name else None))
    return out


def _snippet(plain: list[str] | None, html: list[str] | None) -> str:
    text = " ".join(plain or [])
    if not text.strip() and html:
        return _snippet_of(" ".join(html), tags=True)
    return _snippet_of(text, tags=False)


def _snippet_of(text: str, tags: bool) -> str:
    """CONTROL.sub("", clean(text))[:SNIPPET_CHARS] (tags replaced by spaces first), read from growing
    prefixes of the body instead of the whole: cleaning a long body took a sixth of ingest's CPU.

    Exact: whitespace collapsing and control removal of a prefix give a prefix of the whole's result,
    so once a prefix yields SNIPPET_CHARS characters they are the snippet's. With tags, the prefix is
    cut before a '<' it does not close, so every tag in it is removed as in the whole."""
    n = 2 * SNIPPET_CHARS
    while True:
        whole = n >= len(text)
        part = text if whole else text[:n]
        if tags:
            if not whole and (opened := part.rfind("<")) > part.rfind(">"):
                part = part[:opened]
            part = _TAGS.sub(" ", part)
        out = CONTROL.sub("", clean(part))
        if whole or len(out) >= SNIPPET_CHARS:
            return out[:SNIPPET_CHARS]
        n *= 4


def _bulk(headers: dict) -> BulkSignals:
    auto = (_header(headers, "Auto-Submitted") or "").strip().lower()
    return BulkSignals(
        list_id=_header(headers, "List-Id"),
        list_unsubscribe=_header(headers, "List-Unsubscribe") is not None,
        precedence=(_header(headers, "Precedence") or "").strip().lower() or None,
        auto_submitted=auto if auto and auto != "no" else None,
    )
