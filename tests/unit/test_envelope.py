import hashlib

from hypothesis import given, settings
from hypothesis import strategies as st

from maillink_devtools.mailgen import Mail
from maillink_ingest.domain.envelope import SNIPPET_CHARS, parse
from maillink_ingest.domain.identity import blob_id, body_digest, message_key


def raw(**kw) -> bytes:
    base = dict(sender="jan@acme.cz", to=["alice@example.com"], subject="Pricing", body="Hello there")
    return Mail(**{**base, **kw}).to_bytes()


def test_envelope_fields_are_decoded_and_lowercased():
    data = (b"From: =?utf-8?q?Jan_Nov=C3=A1k?= <JAN@Acme.CZ>\r\nTo: alice@example.com, \"Bob, B\" <bob@x.org>\r\n"
            b"Cc: c@y.org\r\nSubject: =?utf-8?b?UMWZw61sb2hh?=\r\nMessage-ID: <m1@acme.cz>\r\n"
            b"In-Reply-To: <m0@x>\r\nReferences: <r0@x> <m0@x>\r\nDate: Tue, 24 Nov 2026 10:00:00 +0100\r\n\r\nHi")
    env = parse(data).envelope
    assert env.from_[0].email == "jan@acme.cz" and env.from_[0].name == "Jan Novák"
    assert [a.email for a in env.to] == ["alice@example.com", "bob@x.org"]
    assert env.subject == "Příloha"
    assert env.message_id == "m1@acme.cz" and env.in_reply_to == ["m0@x"] and env.references == ["r0@x", "m0@x"]
    assert env.date.isoformat() == "2026-11-24T09:00:00+00:00"


def test_snippet_is_bounded_and_falls_back_to_html():
    assert len(parse(raw(body="word " * 500)).snippet) == SNIPPET_CHARS
    html_only = (b"From: a@b.c\r\nSubject: x\r\nContent-Type: text/html\r\n\r\n<p>Hello <b>world</b></p>")
    assert parse(html_only).snippet == "Hello world"


def test_attachments_and_bulk_signals_are_detected():
    assert parse(raw(attachment=b"%PDF-1.4 data")).has_attachments
    bulk = parse(raw(extra_headers={"List-Unsubscribe": "<mailto:u@x>", "Precedence": "bulk"}))
    assert bulk.bulk.is_bulk and bulk.bulk.list_unsubscribe
    assert not parse(raw()).bulk.is_bulk
    assert not parse(raw(extra_headers={"Auto-Submitted": "no"})).bulk.is_bulk


def test_garbage_still_parses_to_an_empty_envelope_instead_of_raising():
    parsed = parse(b"\xff\xfe\x00 not a message")
    assert parsed.envelope.from_ == [] and parsed.envelope.message_id is None


def test_same_message_gets_same_key_across_copies_and_line_endings():
    data = raw(message_id="<same@acme.cz>")
    copy_with_trace = b"Received: from mx by bcc-gateway\r\nDelivered-To: bcc@company\r\n" + data
    lf_copy = data.replace(b"\r\n", b"\n")
    keys = {message_key("acc", parse(d).envelope, d) for d in (data, copy_with_trace, lf_copy)}
    assert len(keys) == 1


def test_repeated_message_id_with_other_content_is_another_message():
    a, b = raw(message_id="<dup@x>", body="first"), raw(message_id="<dup@x>", body="second")
    assert message_key("acc", parse(a).envelope, a) != message_key("acc", parse(b).envelope, b)


def test_messages_without_message_id_are_told_apart_by_content():
    a, b = raw(body="one"), raw(body="two")
    a, b = (x.replace(b"Message-ID", b"X-Old-Id") for x in (a, b))
    assert parse(a).envelope.message_id is None
    assert message_key("acc", parse(a).envelope, a) != message_key("acc", parse(b).envelope, b)


def test_same_message_in_two_accounts_is_two_records():
    data = raw(message_id="<m@x>")
    env = parse(data).envelope
    assert message_key("acc1", env, data) != message_key("acc2", env, data)


def test_blob_id_is_content_address():
    assert blob_id(b"abc") == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    assert body_digest(b"H: v\r\n\r\nbody \r\n") == body_digest(b"H: v\n\nbody")


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from([b"\r", b"\n", b"\r\n", b" ", b"\t", b"a", b"\xc3\xa9", b"\r\r\n", b"\n\r"]),
                max_size=40).map(b"".join), st.sampled_from([b"H: v\r\n\r\n", b"H: v\n\n", b"H: v", b""]))
def test_body_digest_is_the_crlf_to_lf_formula(body, head):
    # The fast CR deletion must give the digest of the plain formula for any mix of CR, LF and CRLF.
    raw = head + body
    split = raw.find(b"\r\n\r\n")
    split = raw.find(b"\n\n") if split < 0 else split
    plain = raw[split:] if split >= 0 else b""
    assert body_digest(raw) == hashlib.sha256(plain.replace(b"\r\n", b"\n").strip()).hexdigest()
