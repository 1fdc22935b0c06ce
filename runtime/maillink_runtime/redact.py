"""Secrets never reach the logs, whatever logger writes them.

Three layers, because one is never enough:
1. Fields whose name says secret (password, token, authorization, ...) are blanked by name.
2. Every secret the process handles is registered; any of its spellings (raw, IMAP-quoted,
   JSON-escaped, Python repr of str and bytes, base64) is cut out of every log line, ours and
   the libraries'. aioimaplib's own scrubbing misses a password containing `"` or `\\`,
   because it looks for the raw text in the quoted command.
3. IMAP LOGIN and AUTHENTICATE commands are cut after the verb, in any logger at any level.
"""
import base64
import json
import logging
import re

MASK = "[redacted]"
_SECRET_FIELD = re.compile(r"pass(word|wd)?|secret|token|authori[sz]ation|credential|api[_-]?key|private|cookie",
                           re.IGNORECASE)
# Case-sensitive on purpose: IMAP verbs go out upper-case, and prose ("login address") must survive.
_IMAP_AUTH = re.compile(r"\b(LOGIN|AUTHENTICATE)\b .*")
_spellings: set[str] = set()


def register_secret(secret: str) -> None:
    """Remembers `secret` so no log line of this process ever shows it in any usual spelling."""
    if not secret or len(secret) < 4:
        return  # too short to cut out without mangling ordinary text; such secrets are refused elsewhere
    raw = secret.encode("utf-8", "surrogatepass")
    _spellings.update(s for s in (
        secret,
        secret.replace("\\", "\\\\").replace('"', '\\"'),           # IMAP quoted string
        json.dumps(secret)[1:-1], json.dumps(secret, ensure_ascii=False)[1:-1],
        repr(secret)[1:-1], repr(raw)[2:-1],                         # str and bytes reprs
        base64.b64encode(raw).decode(),
    ) if len(s) >= 4)


def scrub(text: str) -> str:
    if _spellings:
        for spelling in sorted(_spellings, key=len, reverse=True):
            if spelling in text:
                text = text.replace(spelling, MASK)
    return _IMAP_AUTH.sub(lambda m: f"{m.group(1)} {MASK}", text)


def _clean(value):
    if isinstance(value, str):
        return scrub(value)
    if isinstance(value, dict):
        return {k: MASK if _SECRET_FIELD.search(str(k)) else _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    return value


def structlog_processor(_logger, _name, event_dict: dict) -> dict:
    return _clean(event_dict)


class RedactingFilter(logging.Filter):
    """For the standard-library loggers (aioimaplib, aiokafka, uvicorn, ...)."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = scrub(message)
        if cleaned != message or record.args:
            record.msg, record.args = cleaned, None
        return True
