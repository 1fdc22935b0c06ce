"""Signed raw-MIME links, and secret redaction in log lines."""
import base64
import json
import logging

from hypothesis import given, strategies as st

from maillink_runtime import redact
from maillink_runtime.auth.links import blob_link, link_is_valid

BLOB = "a" * 64


def _parts(url: str) -> dict:
    return dict(p.split("=", 1) for p in url.split("?", 1)[1].split("&"))


def test_a_link_is_valid_for_its_viewer_and_blob_until_it_expires():
    url = blob_link("http://ingest", b"k1", BLOB, "u-1", ttl_s=60, now=1000)
    q = _parts(url)
    assert url.startswith(f"http://ingest/blobs/{BLOB}?")
    assert link_is_valid([b"k1"], BLOB, "u-1", int(q["exp"]), q["sig"], now=1059)
    assert not link_is_valid([b"k1"], BLOB, "u-1", int(q["exp"]), q["sig"], now=1061)      # expired
    assert not link_is_valid([b"k1"], BLOB, "u-2", int(q["exp"]), q["sig"], now=1000)      # another viewer
    assert not link_is_valid([b"k1"], "b" * 64, "u-1", int(q["exp"]), q["sig"], now=1000)  # another blob
    assert not link_is_valid([b"k1"], BLOB, "u-1", int(q["exp"]) + 3600, q["sig"], now=1000)  # stretched expiry
    assert not link_is_valid([b"other"], BLOB, "u-1", int(q["exp"]), q["sig"], now=1000)   # unknown key


def test_link_keys_rotate_old_links_verify_while_the_old_key_is_listed():
    q = _parts(blob_link("http://ingest", b"old", BLOB, "u-1", ttl_s=60, now=1000))
    assert link_is_valid([b"new", b"old"], BLOB, "u-1", int(q["exp"]), q["sig"], now=1000)
    assert not link_is_valid([b"new"], BLOB, "u-1", int(q["exp"]), q["sig"], now=1000)


SECRET = 'pa"ss \\wörd ✓'


def test_every_usual_spelling_of_a_registered_secret_is_cut():
    redact.register_secret(SECRET)
    spellings = [SECRET, SECRET.replace("\\", "\\\\").replace('"', '\\"'), json.dumps(SECRET)[1:-1],
                 repr(SECRET), repr(SECRET.encode()), base64.b64encode(SECRET.encode()).decode()]
    for spelling in spellings:
        cleaned = redact.scrub(f"x {spelling} y")
        assert spelling not in cleaned and redact.MASK in cleaned, spelling


def test_imap_login_and_authenticate_lines_are_cut_after_the_verb():
    assert redact.scrub("Sending : b'A1 LOGIN bob \"x\"\\r\\n'") == f"Sending : b'A1 LOGIN {redact.MASK}"
    assert redact.scrub("A2 AUTHENTICATE PLAIN AGJvYgBzZWNyZXQ=") == f"A2 AUTHENTICATE {redact.MASK}"
    assert redact.scrub("the login address of a user") == "the login address of a user"


def test_structlog_fields_named_like_secrets_are_blanked():
    event = redact.structlog_processor(None, "info", {"event": "x", "password": "p", "nested": {"api_key": "k"},
                                                      "Authorization": "Bearer t", "user": "bob"})
    assert event == {"event": "x", "password": redact.MASK, "nested": {"api_key": redact.MASK},
                     "Authorization": redact.MASK, "user": "bob"}


def test_stdlib_log_records_are_redacted(caplog):
    redact.register_secret("s3cr3t-value-9")
    logger = logging.getLogger("aioimaplib.test")
    handler = logging.Handler()
    records = []
    handler.emit = lambda record: records.append(record.getMessage())
    handler.addFilter(redact.RedactingFilter())
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    try:
        logger.debug("Sending : %s", b"A1 LOGIN bob s3cr3t-value-9\r\n")
        logger.debug("literal %s", b"s3cr3t-value-9")
    finally:
        logger.removeHandler(handler)
    assert records and all("s3cr3t" not in r for r in records)


@given(st.text(min_size=4, max_size=40).filter(lambda s: s.strip() == s and len(s.strip()) >= 4))
def test_any_registered_secret_is_never_printed_raw(secret):
    saved = set(redact._spellings)
    try:
        redact.register_secret(secret)
        assert secret not in redact.scrub(f"error: {secret} was rejected")
    finally:  # random secrets must not leak into other tests' log lines
        redact._spellings.clear()
        redact._spellings.update(saved)
