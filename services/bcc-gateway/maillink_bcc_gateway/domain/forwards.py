"""A message a user forwarded to the Smart Bcc address -> the original message it carries. Pure.

Two shapes exist in the wild:
- attached: the original as a message/rfc822 part (Outlook's "forward as attachment", Thunderbird,
  Apple Mail with a setting). Its bytes are the original's, so it keys like the synced original.
- inline: the original quoted in the text after a marker line, with a header block the client
  writes in its own words. The markers handled are Gmail's "---------- Forwarded message ---------",
  Outlook's "-----Original Message-----" and its underscore rule followed by From:/Sent:, and Apple
  Mail's "Begin forwarded message:". The original is rebuilt as a plain-text message from that
  header block and the quoted text; it has no Message-ID, so it keys by its content.
"""
import email
import re
from datetime import datetime, timedelta, timezone
from email import policy as email_policy
from email.message import Message
from email.mime.text import MIMEText
from email.utils import format_datetime, formataddr, getaddresses, parsedate_to_datetime

_MARKERS = [
    ("gmail", re.compile(r"^-{5,}\s*Forwarded message\s*-{5,}\s*$", re.IGNORECASE)),
    ("outlook", re.compile(r"^-{3,}\s*Original Message\s*-{3,}\s*$", re.IGNORECASE)),
    ("outlook", re.compile(r"^_{10,}\s*$")),
    ("apple", re.compile(r"^Begin forwarded message:\s*$", re.IGNORECASE)),
]
_HEADER_LINE = re.compile(r"^\s*\*?(From|Sent|Date|To|Cc|Subject|Reply-To)\*?:\s*(.*)$", re.IGNORECASE)
_MAILTO = re.compile(r"\[mailto:([^\]]+)\]", re.IGNORECASE)
_DATE_FORMATS = ["%a, %b %d, %Y %I:%M %p", "%A, %B %d, %Y %I:%M %p", "%B %d, %Y %I:%M:%S %p", "%d %B %Y %H:%M:%S",
                 "%B %d, %Y %H:%M:%S", "%d %B %Y %H:%M", "%a, %d %b %Y %H:%M", "%m/%d/%Y %I:%M %p"]
_TZ_SUFFIX = re.compile(r"\s+(?!AM$|PM$)(?:(?:GMT|UTC)([+-]\d{1,2})(?::?(\d{2}))?|[A-Z]{2,5})$")


def original_of(raw: bytes) -> tuple[str, bytes] | None:
    """(format, original raw MIME) when `raw` forwards a message, else None."""
    message = email.message_from_bytes(raw, policy=email_policy.compat32)
    attached = _attached(message)
    if attached is not None:
        return "attached", attached
    text = _first_text(message)
    return _inline(text) if text else None


def _attached(message: Message) -> bytes | None:
    for part in message.walk():
        if part.get_content_type() != "message/rfc822":
            continue
        payload = part.get_payload()
        if isinstance(payload, list) and payload:
            return payload[0].as_bytes(policy=email_policy.compat32.clone(linesep="\r\n"))
        # Some clients (wrongly) base64-encode the part; decoded, it is the original as sent.
        decoded = part.get_payload(decode=True)
        if decoded:
            return decoded
    return None


def _first_text(message: Message) -> str | None:
    for part in message.walk():
        if part.get_content_type() == "text/plain" and not part.get_filename():
            data = part.get_payload(decode=True) or b""
            return data.decode(part.get_content_charset() or "utf-8", "replace")
    return None


def _inline(text: str) -> tuple[str, bytes] | None:
    lines = text.replace("\r\n", "\n").split("\n")
    for index, line in enumerate(lines):
        for name, marker in _MARKERS:
            if marker.match(line.strip()):
                found = _header_block(lines[index + 1:])
                if found and "from" in found[0]:
                    return name, _rebuild(*found)
    return None


def _header_block(lines: list[str]) -> tuple[dict[str, str], str] | None:
    headers, position = {}, 0
    while position < len(lines) and not lines[position].strip():
        position += 1  # Apple Mail leaves a blank line after its marker
    while position < len(lines):
        match = _HEADER_LINE.match(lines[position])
        if not match:
            break
        headers[match.group(1).lower()] = match.group(2).strip()
        position += 1
    if not headers:
        return None
    body = "\n".join(lines[position:]).strip("\n")
    return headers, body


def _rebuild(headers: dict[str, str], body: str) -> bytes:
    message = MIMEText(body + "\n", "plain", "utf-8")
    message["From"] = _address_list(headers["from"])
    for field in ("to", "cc", "reply-to"):
        if headers.get(field):
            message[field.title()] = _address_list(headers[field])
    message["Subject"] = headers.get("subject", "")
    when = parse_loose_date(headers.get("date") or headers.get("sent") or "")
    if when is not None:
        message["Date"] = format_datetime(when)
    return message.as_bytes(policy=email_policy.compat32.clone(linesep="\r\n"))


def _address_list(value: str) -> str:
    # Outlook writes `Jan Novák [mailto:jan@acme.cz]`; Gmail and Apple Mail write RFC 5322 forms.
    value = _MAILTO.sub(lambda m: f"<{m.group(1)}>", value).replace(";", ",")
    pairs = [(n, a) for n, a in getaddresses([value]) if "@" in a]
    return ", ".join(formataddr((n, a), charset="utf-8") for n, a in pairs) or value


def parse_loose_date(value: str) -> datetime | None:
    """Dates as mail clients print them in forwards; naive ones are taken as UTC."""
    value = value.strip()
    if not value:
        return None
    try:
        parsed = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        parsed = None
    if parsed is None:
        cleaned = value.replace(" at ", " ").replace("\u202f", " ")
        zone = _TZ_SUFFIX.search(cleaned)
        offset = timezone(timedelta(hours=int(zone.group(1)), minutes=int(zone.group(2) or 0) * (
            -1 if zone.group(1).startswith("-") else 1))) if zone and zone.group(1) else None
        cleaned = _TZ_SUFFIX.sub("", cleaned).strip()
        for fmt in _DATE_FORMATS:
            try:
                parsed = datetime.strptime(cleaned, fmt).replace(tzinfo=offset)
                break
            except ValueError:
                continue
    if parsed is None:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)
