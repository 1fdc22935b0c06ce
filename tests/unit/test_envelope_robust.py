"""Parsing never loses mail: each real-world breakage still gives an event, with a warning."""
from datetime import datetime, timezone

from maillink_devtools.mailgen import Mail
from maillink_schemas.bounds import MAX_ADDRESSES, MAX_REFERENCES, cap_envelope
from maillink_ingest.domain.envelope import parse
from maillink_ingest.domain.identity import blob_id
from maillink_ingest.domain.received import received_event
from maillink_schemas.accounts import AccountConfigured, ImapEndpoint
from maillink_schemas.mail import Address, Envelope

ACCOUNT = AccountConfigured(event_id="e", occurred_at=datetime.now(timezone.utc), account_id="acc", user_id="u",
                            email="me@example.com", imap=ImapEndpoint(host="imap.example.com", port=993), username="me",
                            secret_ciphertext="x")
ARRIVED = datetime(2026, 11, 20, 8, 30, tzinfo=timezone.utc)


def event(raw: bytes):
    return received_event(ACCOUNT, "INBOX", 1, 7, (), ARRIVED, False, raw, blob_id(raw), parse(raw))


def test_malformed_mime_still_gives_the_headers_and_text():
    # Bad base64 in an attachment makes the fast parser refuse the whole message.
    raw = (b"From: Jan <jan@acme.cz>\r\nTo: a@example.com\r\nSubject: contract\r\nMessage-ID: <c1@acme.cz>\r\n"
           b"Date: Tue, 24 Nov 2026 10:00:00 +0100\r\nContent-Type: multipart/mixed; boundary=\"zz\"\r\n\r\n"
           b"--zz\r\nContent-Type: text/plain\r\n\r\nplease sign\r\n--zz\r\n"
           b"Content-Type: application/pdf; name=a.pdf\r\nContent-Disposition: attachment; filename=a.pdf\r\n"
           b"Content-Transfer-Encoding: base64\r\n\r\n!!!not base64\r\n")
    e = event(raw)
    assert e.parse_error and "unparseable MIME" in e.parse_error
    assert (e.envelope.subject, e.envelope.message_id, e.envelope.from_[0].email) == ("contract", "c1@acme.cz",
                                                                                       "jan@acme.cz")
    assert e.snippet == "please sign" and e.has_attachments and e.envelope.to[0].email == "a@example.com"


def test_an_unknown_charset_is_decoded_with_a_fallback_and_said_so():
    raw = (b"From: a@b.cz\r\nSubject: =?x-unknown-42?Q?caf=C3=A9?=\r\nMessage-ID: <u@b>\r\n"
           b"Date: Mon, 1 Jan 2024 10:00:00 +0000\r\nContent-Type: text/plain; charset=x-unknown-42\r\n\r\ncaf\xe9\r\n")
    e = event(raw)
    assert e.envelope.subject == "café"
    assert any("unknown charset" in w for w in e.parse_warnings) and e.parse_error is None


def test_a_broken_or_missing_date_falls_back_to_internaldate_without_changing_the_key():
    broken = b"From: a@b.cz\r\nDate: yesterday-ish\r\nSubject: x\r\nMessage-ID: <d@b>\r\n\r\nbody\r\n"
    missing = broken.replace(b"Date: yesterday-ish\r\n", b"")
    for raw, warning in ((broken, "unreadable Date header"), (missing, "no Date header")):
        e = event(raw)
        assert e.envelope.date == ARRIVED
        assert any(w.startswith(warning) and "INTERNALDATE" in w for w in e.parse_warnings)
    # Another copy, elsewhere, arrived at another time: still the same message.
    other = received_event(ACCOUNT, "Archive", 1, 9, (), datetime(2026, 11, 21, tzinfo=timezone.utc), False, missing,
                           blob_id(missing), parse(missing))
    assert other.message_key == event(missing).message_key


def test_a_missing_message_id_still_gives_a_stable_key():
    raw = b"From: a@b.cz\r\nSubject: no id\r\nDate: Mon, 1 Jan 2024 10:00:00 +0000\r\n\r\nhello\r\n"
    e = event(raw)
    assert e.envelope.message_id is None and "no Message-ID" in e.parse_warnings
    assert e.message_key == event(raw).message_key


def test_eight_bit_headers_are_read_and_flagged():
    utf8 = "From: Jiří Novák <jiri@b.cz>\r\nSubject: Příliš žluťoučký\r\nMessage-ID: <8@b>\r\n\r\nb\r\n".encode()
    latin1 = "From: José <jose@b.cz>\r\nSubject: café\r\nMessage-ID: <9@b>\r\n\r\nb\r\n".encode("latin-1")
    a, b = event(utf8), event(latin1)
    assert (a.envelope.subject, a.envelope.from_[0].name) == ("Příliš žluťoučký", "Jiří Novák")
    assert b.envelope.subject == "café"
    assert all(any("8-bit" in w for w in x.parse_warnings) for x in (a, b))


def test_garbage_and_empty_input_still_give_an_event():
    for raw in (b"", b"just garbage without headers", b"\x00\xff\xfe" * 100):
        e = event(raw)
        assert e.raw.size == len(raw) and e.envelope.date == ARRIVED and "no Message-ID" in e.parse_warnings


def test_control_characters_are_removed_from_headers():
    e = event(b"From: a@b.cz\r\nSubject: a\x00b\r\nMessage-ID: <n@b>\r\n\r\nx\r\n")
    assert e.envelope.subject == "ab" and any("control" in w for w in e.parse_warnings)


def test_a_huge_attachment_is_parsed_and_flagged():
    raw = Mail(sender="a@b.cz", to=["c@d.cz"], subject="big", body="see file", message_id="<big@b>",
               attachment=b"\x00" * 3_000_000).to_bytes()
    e = event(raw)
    assert e.has_attachments and e.snippet == "see file" and e.parse_error is None


def test_lists_are_capped_with_a_count_of_what_was_cut():
    env = Envelope(to=[Address(email=f"p{i}@x.cz") for i in range(250)],
                   references=[f"r{i}@x" for i in range(80)], subject="s" * 5000)
    capped, cut = cap_envelope(env)
    assert len(capped.to) == MAX_ADDRESSES and cut == {"to": 150, "references": 30}
    assert capped.references[0] == "r0@x" and capped.references[-1] == "r79@x"
    assert len(capped.references) == MAX_REFERENCES and len(capped.subject) == 1000


def test_an_undecodable_encoded_word_keeps_the_header_as_written():
    # Regression (corpus 06): bad base64 in an encoded word made the stdlib raise out of parse(),
    # so ingest failed the whole batch, on every pass of the folder.
    raw = (b"From: a@b.cz\r\nSubject: =?utf-8?B?!!!notbase64?= offer\r\nMessage-ID: <w@b>\r\n"
           b"Date: Mon, 1 Jan 2024 10:00:00 +0000\r\n\r\nbody\r\n")
    e = event(raw)
    assert e.envelope.subject == "=?utf-8?B?!!!notbase64?= offer"
    assert "undecodable encoded word in a header, kept as written" in e.parse_warnings


def test_a_date_beyond_what_datetime_holds_is_an_unreadable_date():
    # Regression (corpus 19): 31 Dec 9999 at -1200 is year 10000 in UTC; reading it raised ValueError.
    raw = (b"From: a@b.cz\r\nSubject: far future\r\nMessage-ID: <f@b>\r\n"
           b"Date: Fri, 31 Dec 9999 23:59:59 -1200\r\n\r\nbody\r\n")
    e = event(raw)
    assert e.envelope.date == ARRIVED
    assert any(w.startswith("unreadable Date header") for w in e.parse_warnings)


def test_broken_rfc2231_continuations_and_a_nul_in_a_charset_do_not_stop_parsing():
    # Regressions (fuzzer): the stdlib's get_filename raised TypeError on mixed RFC 2231 continuations
    # in the lenient path, and a charset name with a NUL made bytes.decode raise ValueError.
    broken_2231 = (b"From: a@b.cz\r\nSubject: files\r\nMessage-ID: <r@b>\r\nDate: Mon, 1 Jan 2024 10:00:00 +0000\r\n"
                   b"Content-Type: multipart/mixed; boundary=\"r\"\r\n\r\n--r\r\nContent-Type: application/pdf\r\n"
                   b"Content-Disposition: attachment; filename*=utf-8''%ZZ.pdf; filename*0=\"a\"\r\n"
                   b"Content-Transfer-Encoding: base64\r\n\r\n!!!notbase64\r\n--r--\r\n")
    e = event(broken_2231)
    assert e.envelope.subject == "files" and e.parse_error
    nul_charset = (b"From: a@b.cz\r\nSubject: =?ut\x00f-8?Q?caf=C3=A9?=\r\nMessage-ID: <n@b>\r\n"
                   b"Date: Mon, 1 Jan 2024 10:00:00 +0000\r\n\r\nbody\r\n")
    assert "caf" in event(nul_charset).envelope.subject
