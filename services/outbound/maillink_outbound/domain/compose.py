"""One message's MIME bytes, from finished content and addresses. Pure and deterministic: the
same inputs give the same bytes (boundaries derive from the Message-ID), so the message key
computed here is the key ingest computes for the Sent copy.

Structure: text/plain, or multipart/alternative (text + html; html in multipart/related with
its cid: images), inside multipart/mixed when there are attachments. Bcc never appears in the
bytes given to SMTP; the Sent copy gets it back (`with_bcc`).
"""
import base64
import binascii
import re
from dataclasses import dataclass, field
from datetime import datetime, timezone
from email.header import Header
from email.utils import encode_rfc2231, format_datetime, formataddr

from maillink_schemas.base import deterministic_id
from maillink_schemas.headers import single_line
from maillink_schemas.mail import Address, Envelope
from maillink_schemas.identity import body_digest, key_of


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
    # Written out directly rather than with email.message.EmailMessage: the stdlib generator was
    # half of a send's CPU time. The structure is fixed and small; tests parse the result back
    # with the stdlib and with ingest's parser (fast-mail-parser).
    inline = [p for p in parts if p.content_id] if html is not None else []
    files = [p for p in parts if p not in inline]
    body = _leaf("text/plain", text)
    if html is not None:
        html_part = _leaf("text/html", html)
        if inline:
            html_part = _multipart("related", [html_part, *(_binary(p, inline=True) for p in inline)], h.message_id, 2)
        body = _multipart("alternative", [body, html_part], h.message_id, 1)
    if files:
        body = _multipart("mixed", [body, *(_binary(p, inline=False) for p in files)], h.message_id, 0)
    raw = "".join(f"{name}: {value}\r\n" for name, value in _header_values(h)).encode("ascii") + body
    subject = _WS.sub(" ", h.subject).strip()
    envelope = Envelope(message_id=h.message_id, in_reply_to=h.in_reply_to, references=h.references,
                        subject=subject, date=h.date, to=h.to, cc=h.cc, bcc=h.bcc, reply_to=h.reply_to,
                        **{"from": [h.sender]})
    key = key_of(account_id, h.message_id, h.date, h.sender.email.lower(), subject, body_digest(raw))
    return Composed(raw, envelope, key, _WS.sub(" ", text).strip()[:SNIPPET_CHARS])


_CONTENT_TYPE = re.compile(r"^[A-Za-z0-9][\w.+-]*/[A-Za-z0-9][\w.+-]*$")


def _leaf(content_type: str, text: str) -> bytes:
    data = text.replace("\r\n", "\n").replace("\r", "\n").encode("utf-8")
    encoded = binascii.b2a_qp(data, quotetabs=False, istext=True).replace(b"\n", b"\r\n")
    return (f'Content-Type: {content_type}; charset="utf-8"\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n'
            .encode("ascii") + encoded + (b"" if encoded.endswith(b"\r\n") else b"\r\n"))


def _binary(p: Part, *, inline: bool) -> bytes:
    content_type = p.content_type if _CONTENT_TYPE.match(p.content_type) else "application/octet-stream"
    lines = [f"Content-Type: {content_type}", "Content-Transfer-Encoding: base64",
             f"Content-Disposition: {'inline' if inline else 'attachment'}; {_filename(p.filename)}"]
    if inline:
        lines.append(f"Content-ID: <{p.content_id}>")
    data = base64.encodebytes(p.data).replace(b"\n", b"\r\n")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("ascii") + data


def _filename(name: str) -> str:
    if name.isascii():
        return 'filename="' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return f"filename*={encode_rfc2231(name, 'utf-8')}"  # RFC 2231: non-ASCII file names


def _multipart(subtype: str, children: list[bytes], message_id: str, level: int) -> bytes:
    boundary = f"=_ml_{deterministic_id('boundary', message_id, str(level))}".encode("ascii")
    out = [b'Content-Type: multipart/' + subtype.encode() + b'; boundary="' + boundary + b'"\r\n\r\n']
    for child in children:
        out += [b"--", boundary, b"\r\n", child, b"\r\n"]
    out += [b"--", boundary, b"--\r\n"]
    return b"".join(out)


def _address_list(addresses: list[Address]) -> str:
    # Folded after each address, so no line comes near the 998-character limit.
    return ",\r\n ".join(formataddr((a.name or "", a.email), charset="utf-8") for a in addresses)


def _text_header(name: str, value: str) -> str:
    if value.isascii() and len(value) < 900:
        return value
    return Header(value, "utf-8", header_name=name).encode(linesep="\r\n")


def _header_values(h: Headers) -> list[tuple[str, str]]:
    single_line(h.subject)  # CR/LF in any header value is refused, wherever the value came from
    for a in (h.sender, *h.to, *h.cc, *h.bcc, *h.reply_to):
        single_line(a.name or "")
        single_line(a.email)
    values = [("Date", format_datetime(h.date.astimezone(timezone.utc), usegmt=True)),
              ("From", _address_list([h.sender])),
              ("To", _address_list(h.to) if h.to else "undisclosed-recipients:;")]
    if h.cc:
        values.append(("Cc", _address_list(h.cc)))
    if h.reply_to:
        values.append(("Reply-To", _address_list(h.reply_to)))
    values += [("Subject", _text_header("Subject", h.subject)), ("Message-ID", f"<{h.message_id}>")]
    if h.in_reply_to:
        values.append(("In-Reply-To", " ".join(f"<{i}>" for i in h.in_reply_to)))
    if h.references:
        values.append(("References", "\r\n ".join(f"<{i}>" for i in h.references)))
    values.append(("MIME-Version", "1.0"))
    return values


def with_bcc(raw: bytes, bcc: list[Address]) -> bytes:
    """The Sent copy: the sender's own record shows whom they blind-copied."""
    if not bcc:
        return raw
    return f"Bcc: {_address_list(bcc)}\r\n".encode("ascii") + raw


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
