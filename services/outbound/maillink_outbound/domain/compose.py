"""One message's MIME bytes, from finished content and addresses. Pure and deterministic: the
same inputs give the same bytes (boundaries derive from the Message-ID), so the message key
computed here is the key ingest computes for the Sent copy.

Structure: text/plain, or multipart/alternative (text + html; html in multipart/related with
its cid: images), inside multipart/mixed when there are attachments. Bcc never appears in the
bytes given to SMTP; the Sent copy gets it back (`with_bcc`).
"""
import re
from dataclasses import dataclass, field
from datetime import datetime, timezone
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import format_datetime

from maillink_schemas.base import deterministic_id
from maillink_schemas.headers import single_line
from maillink_schemas.mail import Address, Envelope
from maillink_schemas.message_identity import body_digest, key_of

from .addresses import header_address

_WS = re.compile(r"\s+")
SNIPPET_CHARS = 280


@dataclass(frozen=True)
class Part:
    filename: str
    content_type: str
    data: bytes
    content_id: str | None = None   # set: an inline image referenced from the HTML as cid:<id>


@dataclass(frozen=True)
class Headers:
    sender: Address
    to: list[Address]
    cc: list[Address] = field(default_factory=list)
    bcc: list[Address] = field(default_factory=list)
    reply_to: list[Address] = field(default_factory=list)
    subject: str = ""
    message_id: str = ""                     # without angle brackets
    date: datetime = datetime(1970, 1, 1, tzinfo=timezone.utc)
    in_reply_to: list[str] = field(default_factory=list)
    references: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Composed:
    raw: bytes
    envelope: Envelope
    message_key: str
    snippet: str


def compose(account_id: str, h: Headers, text: str, html: str | None, parts: list[Part]) -> Composed:
    msg = EmailMessage(policy=SMTP)
    for name, value in _header_values(h):
        msg[name] = value
    msg.set_content(text, subtype="plain", charset="utf-8", cte="quoted-printable")
    inline = [p for p in parts if p.content_id]
    if html is not None:
        msg.add_alternative(html, subtype="html", charset="utf-8", cte="quoted-printable")
        html_part = msg.get_payload()[1]
        for p in inline:
            maintype, _, subtype = p.content_type.partition("/")
            html_part.add_related(p.data, maintype, subtype or "octet-stream", cid=f"<{p.content_id}>",
                                  filename=p.filename, disposition="inline")
    for p in parts:
        if not p.content_id or html is None:
            maintype, _, subtype = p.content_type.partition("/")
            msg.add_attachment(p.data, maintype, subtype or "octet-stream", filename=p.filename)
    for i, part in enumerate(p for p in msg.walk() if p.is_multipart()):
        part.set_boundary(f"=_ml_{deterministic_id('boundary', h.message_id, str(i))}")
    raw = msg.as_bytes()
    subject = _WS.sub(" ", h.subject).strip()
    envelope = Envelope(message_id=h.message_id, in_reply_to=h.in_reply_to, references=h.references,
                        subject=subject, date=h.date, to=h.to, cc=h.cc, bcc=h.bcc, reply_to=h.reply_to,
                        **{"from": [h.sender]})
    key = key_of(account_id, h.message_id, h.date, h.sender.email.lower(), subject, body_digest(raw))
    return Composed(raw, envelope, key, _WS.sub(" ", text).strip()[:SNIPPET_CHARS])


def _header_values(h: Headers) -> list[tuple[str, object]]:
    single_line(h.subject)  # CR/LF in any header value is refused, wherever the value came from
    for a in (h.sender, *h.to, *h.cc, *h.bcc, *h.reply_to):
        single_line(a.name or "")
        single_line(a.email)
    values: list[tuple[str, object]] = [
        ("Date", format_datetime(h.date.astimezone(timezone.utc), usegmt=True)),
        ("From", header_address(h.sender)),
        ("To", [header_address(a) for a in h.to]) if h.to else ("To", "undisclosed-recipients:;"),
    ]
    if h.cc:
        values.append(("Cc", [header_address(a) for a in h.cc]))
    if h.reply_to:
        values.append(("Reply-To", [header_address(a) for a in h.reply_to]))
    values += [("Subject", h.subject), ("Message-ID", f"<{h.message_id}>")]
    if h.in_reply_to:
        values.append(("In-Reply-To", " ".join(f"<{i}>" for i in h.in_reply_to)))
    if h.references:
        values.append(("References", " ".join(f"<{i}>" for i in h.references)))
    values.append(("MIME-Version", "1.0"))
    return values


def with_bcc(raw: bytes, bcc: list[Address]) -> bytes:
    """The Sent copy: the sender's own record shows whom they blind-copied."""
    if not bcc:
        return raw
    line = ", ".join(header_address(a).addr_spec for a in bcc)
    return f"Bcc: {line}\r\n".encode("ascii") + raw


def limit_error(size: int, limit: int, provider_name: str) -> str | None:
    """None when the encoded message fits; otherwise the sentence the user reads."""
    if size <= limit:
        return None
    mb, cap = size / 1048576, limit / 1048576
    shown = f"{mb:.1f}" if round(mb, 1) > cap else f"{mb:.2f}"
    return f"this message is {shown} MB; {provider_name} accepts at most {cap:g} MB"


def message_id_for(account_id: str, request_id: str, sender: Address) -> str:
    """Fixed by the request id, so every attempt (and every process) uses the same one."""
    return f"{deterministic_id('message-id', account_id, request_id)}@{sender.email.rsplit('@', 1)[1]}"
