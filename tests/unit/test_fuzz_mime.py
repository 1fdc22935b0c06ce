"""Fuzzing the MIME and header parsing that every synced and Bcc'd message goes through
(maillink_schemas.mime / mime_headers / identity, and ingest's received event built from them).

Inputs are generated three ways: raw bytes; messages assembled from the pieces real mail breaks
(encoded words in any charset and encoding, dates with any numbers, address lists, multipart
trees with wrong or missing boundaries, transfer encodings); and the malformed corpus with bytes
flipped, cut and repeated. For every input: nothing raises, the output is bounded, and the event
ingest would publish validates against its own contract.
"""
import base64
from datetime import datetime, timezone

from hypothesis import given
from hypothesis import strategies as st

from maillink_schemas.bounds import MAX_EVENT_BYTES
from maillink_ingest.domain.received import received_bytes, received_event
from maillink_schemas import mime_headers
from maillink_schemas.accounts import AccountConfigured, ImapEndpoint
from maillink_schemas.identity import blob_id, body_digest, message_key
from maillink_schemas.mail import MessageReceived
from maillink_schemas.mime import SNIPPET_CHARS, parse
from tests.corpus.generated import CORPUS_DIR
from tests.fuzzing import Tally, fuzz_settings

ACCOUNT = AccountConfigured(event_id="e", occurred_at=datetime.now(timezone.utc), account_id="acc", user_id="u",
                            email="me@example.com", imap=ImapEndpoint(host="imap.example.com", port=993),
                            username="me", secret_ciphertext="x")
ARRIVED = datetime(2026, 11, 20, 8, 30, tzinfo=timezone.utc)
CORPUS = [p.read_bytes() for p in sorted(CORPUS_DIR.glob("*.eml"))]
TALLY = Tally("fuzz-mime")

CHARSETS = ["utf-8", "us-ascii", "iso-8859-1", "x-unknown", "utf-7", "cp500", "gb2312", "", "utf-16", "koi8-r",
            "iso-2022-jp", "x-\u00e9", "utf-8*en"]
text = st.text(max_size=60)
junk = st.binary(max_size=60)


@st.composite
def encoded_word(draw) -> bytes:
    charset = draw(st.sampled_from(CHARSETS)).encode("utf-8", "replace")
    encoding = draw(st.sampled_from([b"Q", b"B", b"b", b"X", b""]))
    payload = draw(st.one_of(st.just(base64.b64encode(draw(junk))), junk.map(lambda b: b.replace(b"?=", b"")),
                             st.just(b"!!!notbase64")))
    return b"=?" + charset + b"?" + encoding + b"?" + payload + b"?="


@st.composite
def date_value(draw) -> bytes:
    n = st.integers(min_value=-99999, max_value=99999999999)
    return b"%s, %d %s %d %d:%d:%d %s" % (
        draw(st.sampled_from([b"Mon", b"Xyz", b""])), draw(n), draw(st.sampled_from([b"Jan", b"Dec", b"Foo"])),
        draw(st.sampled_from([0, 1, 69, 1900, 9999, 10000]) | n), draw(n), draw(n), draw(n),
        draw(st.sampled_from([b"+0000", b"-1200", b"-9959", b"+9999", b"EST", b"Z", b"", b"-0"])))


@st.composite
def address_list(draw) -> bytes:
    one = st.one_of(st.just(b"a@b.cz"), st.just(b"<>"), st.just(b"undisclosed-recipients:;"),
                    st.builds(lambda n, a: b'"' + n + b'" <' + a + b">", junk, junk), encoded_word(), junk)
    return b", ".join(draw(st.lists(one, max_size=8)))


HEADERS = [b"From", b"To", b"Cc", b"Bcc", b"Reply-To", b"Sender", b"Subject", b"Date", b"Message-ID",
           b"In-Reply-To", b"References", b"List-Id", b"List-Unsubscribe", b"Precedence", b"Auto-Submitted",
           b"Content-Type", b"Content-Transfer-Encoding", b"Content-Disposition", b"MIME-Version", b"X-\xff"]


@st.composite
def header(draw) -> bytes:
    name = draw(st.sampled_from(HEADERS) | junk.map(lambda b: b.replace(b":", b"")))
    value = draw(st.one_of(junk, text.map(lambda t: t.encode("utf-8", "replace")), encoded_word(), date_value(),
                           address_list(), st.lists(encoded_word(), max_size=4).map(b" ".join)))
    fold = draw(st.sampled_from([b"", b"\r\n ", b"\n\t"]))
    return name + b": " + fold + value


@st.composite
def mime_part(draw, depth: int = 0) -> bytes:
    boundary = draw(st.sampled_from([b"b", b"", b"same", b'"quoted"', b"x" * 80])) + str(depth).encode()
    cte = draw(st.sampled_from([b"base64", b"quoted-printable", b"8bit", b"x-uuencode", b"binary", b"x-weird", b""]))
    ctype = draw(st.sampled_from([b"text/plain", b"text/html", b"message/rfc822", b"application/pdf", b"multipart/mixed",
                                  b"multipart/alternative", b"text/plain; charset=x-unknown", b"", b"/"]))
    head = b"Content-Type: " + ctype + (b"; boundary=" + boundary if ctype.startswith(b"multipart") else b"")
    head += b"\r\nContent-Transfer-Encoding: " + cte
    if draw(st.booleans()):
        head += b'\r\nContent-Disposition: attachment; filename*=x\'\'%ZZ' + draw(junk).replace(b"\r", b"")
    if ctype.startswith(b"multipart") and depth < 6:
        parts = draw(st.lists(mime_part(depth + 1), max_size=3))
        closing = draw(st.sampled_from([b"--" + boundary + b"--\r\n", b"", b"--wrong--\r\n"]))
        body = b"".join(b"--" + boundary + b"\r\n" + p + b"\r\n" for p in parts) + closing
    else:
        body = draw(junk | st.just(base64.b64encode(b"x" * 50)) | st.just(b"=E9=\r\n=ZZ"))
    return head + b"\r\n\r\n" + body


@st.composite
def message(draw) -> bytes:
    eol = draw(st.sampled_from([b"\r\n", b"\n", b"\r"]))
    headers = draw(st.lists(header(), max_size=14))
    raw = eol.join(headers) + eol + draw(mime_part())
    if draw(st.booleans()):
        raw = raw[:draw(st.integers(min_value=0, max_value=len(raw)))]  # truncated in transit
    return raw


@st.composite
def mutated_corpus(draw) -> bytes:
    raw = bytearray(draw(st.sampled_from(CORPUS)))
    for _ in range(draw(st.integers(min_value=1, max_value=8))):
        at = draw(st.integers(min_value=0, max_value=max(len(raw) - 1, 0)))
        op = draw(st.sampled_from(["flip", "cut", "insert", "repeat"]))
        if op == "flip" and raw:
            raw[at] = draw(st.integers(min_value=0, max_value=255))
        elif op == "cut":
            del raw[at:at + draw(st.integers(min_value=1, max_value=200))]
        elif op == "insert":
            raw[at:at] = draw(st.sampled_from([b"\x00", b"\r\n\r\n", b"=?", b"?=", b"--", b"\xff\xfe", b"\r\n--b1--"]))
        else:
            raw[at:at] = raw[at:at + 64] * draw(st.integers(min_value=1, max_value=50))
    return bytes(raw)


def check(raw: bytes) -> None:
    parsed = parse(raw)
    assert len(parsed.snippet) <= SNIPPET_CHARS
    env = parsed.envelope
    for a in env.from_ + env.to + env.cc + env.bcc + env.reply_to:
        assert "@" in a.email and a.email == a.email.lower()
    assert not mime_headers.CONTROL.search(env.subject)
    assert env.date is None or env.date.tzinfo is not None
    assert len(body_digest(raw)) == 64 and len(message_key("acc", env, raw)) > 0
    event = received_event(ACCOUNT, "INBOX", 1, 7, (), ARRIVED, False, raw, blob_id(raw), parsed)
    wire = event.model_dump_json()
    assert len(wire) <= MAX_EVENT_BYTES
    assert MessageReceived.model_validate_json(wire) == event   # what the matcher will read back
    # ingest publishes the same event written without the model (domain/received.py): the same bytes
    fast = received_bytes(ACCOUNT, "INBOX", 1, 7, (), ARRIVED, False, raw, blob_id(raw), parsed,
                          occurred_at=event.occurred_at)
    assert fast.payload == wire.encode()
    assert parse(raw) == parsed                                   # deterministic: the key depends on it


def tally(raw: bytes) -> None:
    try:
        check(raw)
    except Exception as exc:  # noqa: BLE001 - every failure is counted and shown at the end
        TALLY.record(repr(raw[:300]), exc)
    else:
        TALLY.record("", None)


@fuzz_settings()
@given(st.binary(max_size=3000))
def test_fuzz_raw_bytes(raw):
    tally(raw)


@fuzz_settings()
@given(message())
def test_fuzz_assembled_messages(raw):
    tally(raw)


@fuzz_settings()
@given(mutated_corpus())
def test_fuzz_mutated_corpus(raw):
    tally(raw)


@fuzz_settings()
@given(st.one_of(junk, text.map(str.encode), encoded_word(), date_value(), address_list()))
def test_fuzz_header_functions(value):
    """The header helpers alone, on values the message parser might never pass them."""
    decoded = value.decode("utf-8", "surrogateescape")
    try:
        warnings: list[str] = []
        assert not mime_headers.CONTROL.search(mime_headers.header_text(decoded, warnings))
        assert all(isinstance(w, str) for w in warnings)
        assert all("@" in a.email for a in mime_headers.addresses_from_header(decoded))
        mime_headers.parse_date(None, decoded)
        first = mime_headers.first_id(decoded)
        assert first is None or (first.strip() and " " not in first)
        assert isinstance(mime_headers.ids(decoded), list)
    except Exception as exc:  # noqa: BLE001
        TALLY.record(repr(value), exc)
    else:
        TALLY.record("", None)


def test_fuzz_mime_verdict(capsys):
    """Runs last in this file: the whole suite's count (pytest keeps file order)."""
    TALLY.report(capsys)
