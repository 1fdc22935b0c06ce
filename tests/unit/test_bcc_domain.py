"""bcc-gateway's pure rules: addresses, senders, authentication verdicts, links, forwards, the event."""
import quopri
from datetime import datetime, timezone

import pytest

from maillink_bcc_gateway.domain import forwards
from maillink_bcc_gateway.domain.authentication import AuthResults, judge
from maillink_bcc_gateway.domain.confirmation import LinkClaim, LinkState, make_token, read_token
from maillink_bcc_gateway.domain.received import Filing, received_event
from maillink_bcc_gateway.domain.recipients import company_address, company_token, deal_address, parse_recipient
from maillink_bcc_gateway.domain.senders import Owner, Standing, check_envelope_sender, check_from, check_recipient
from maillink_schemas.identity import account_id, message_key
from maillink_schemas.mime import parse

DOMAIN = "bcc.example"


def test_company_and_deal_addresses_round_trip():
    token = company_token("c-1")
    assert company_address("c-1", DOMAIN) == f"company-{token}@bcc.example"
    assert parse_recipient(company_address("c-1", DOMAIN), DOMAIN).token == token
    deal = parse_recipient(deal_address("c-1", "D-123", "BCC.example"), DOMAIN)
    assert deal.token == token and deal.deal_id == "D-123"
    assert parse_recipient(f"<COMPANY-{token.upper()}@Bcc.Example>", DOMAIN).token == token
    for wrong in (f"company-{token}@other.example", "alice@bcc.example", f"company-{token}+x@bcc.example",
                  f"company-zz@{DOMAIN}"):
        assert parse_recipient(wrong, DOMAIN) is None
    assert company_token("c-1") != company_token("c-2")


ALICE = Owner("u-a", "c-1", Standing.LOGIN)
OWNERS = {"alice@x.test": ALICE, "alt@x.test": Owner("u-a", "c-1", Standing.VERIFIED),
          "wait@x.test": Owner("u-a", "c-1", Standing.PENDING), "bob@x.test": Owner("u-b", "c-1", Standing.LOGIN)}


def test_envelope_sender_must_be_a_login_or_verified_address():
    assert check_envelope_sender("alice@x.test", ALICE) is None
    assert check_envelope_sender("alt@x.test", OWNERS["alt@x.test"]) is None
    assert check_envelope_sender("nobody@x.test", None).reason == "unknown_sender"
    pending = check_envelope_sender("wait@x.test", OWNERS["wait@x.test"])
    assert pending.reason == "pending_sender" and pending.reply.startswith("550 5.7.1")


def test_recipient_must_be_a_known_company_and_the_senders():
    assert check_recipient("r", "c-1", "alice@x.test", ALICE) is None
    assert check_recipient("r", None, "alice@x.test", ALICE).reply.startswith("550 5.1.1")
    assert check_recipient("r", "c-2", "alice@x.test", ALICE).reason == "other_company"


def test_from_must_be_the_same_users_usable_address():
    assert check_from(["alice@x.test", "alt@x.test"], ALICE, OWNERS.get) is None
    assert check_from(["bob@x.test"], ALICE, OWNERS.get).reason == "from_not_allowed"
    assert check_from(["wait@x.test"], ALICE, OWNERS.get).reason == "pending_sender"
    assert check_from(["who@x.test"], ALICE, OWNERS.get).reason == "from_not_allowed"
    assert check_from([], ALICE, OWNERS.get).reason == "from_missing"


@pytest.mark.parametrize("spf,dkim,dmarc,policy,reason", [
    ("pass", "none", "pass", "none", None),
    ("fail", "pass", "pass", "reject", None),
    ("fail", "none", "fail", "none", "spf_dkim_failed"),
    ("none", "none", "none", "none", "spf_dkim_failed"),
    ("softfail", "fail", "fail", "none", "spf_dkim_failed"),
    ("temperror", "none", "none", "none", "auth_temperror"),
    ("fail", "temperror", "none", "none", "auth_temperror"),
    ("pass", "none", "fail", "reject", "dmarc_reject"),
    ("pass", "none", "fail", "quarantine", None),
])
def test_refused_when_spf_and_dkim_both_fail(spf, dkim, dmarc, policy, reason):
    verdict = judge(AuthResults("x.test", spf, dkim, dmarc, policy))
    assert (verdict.reason if verdict else None) == reason
    if verdict and reason == "auth_temperror":
        assert verdict.code == 451


def test_confirmation_links_are_signed_and_expire():
    claim = LinkClaim("addr-1", "nonce", 1_000)
    token = make_token(b"k1", claim)
    assert read_token([b"k0", b"k1"], token, now=999) == (LinkState.VALID, claim)
    assert read_token([b"k1"], token, now=1_001)[0] == LinkState.EXPIRED
    assert read_token([b"other"], token, now=999)[0] == LinkState.INVALID
    forged = token.replace(".1000.", ".9999.")
    assert read_token([b"k1"], forged, now=999)[0] == LinkState.INVALID
    assert read_token([b"k1"], "garbage", now=0)[0] == LinkState.INVALID


def _forward(text: str) -> bytes:
    return ("From: alice@x.test\r\nTo: company-1@bcc.example\r\nSubject: Fwd\r\n"
            "Content-Type: text/plain; charset=utf-8\r\n\r\n" + text.replace("\n", "\r\n")).encode()


@pytest.mark.parametrize("fmt,block", [
    ("gmail", "---------- Forwarded message ---------\nFrom: Jan Novák <jan@acme.test>\n"
              "Date: Thu, Nov 26, 2026 at 10:00 AM\nSubject: Offer\nTo: Alice <alice@x.test>\nCc: c@x.test\n\n"),
    ("outlook", "-----Original Message-----\nFrom: Jan Novák [mailto:jan@acme.test]\n"
                "Sent: Thursday, November 26, 2026 10:00 AM\nTo: Alice\nSubject: Offer\n\n"),
    ("outlook", "________________________________\nFrom: Jan Novák <jan@acme.test>\n"
                "Sent: Thursday, November 26, 2026 10:00 AM\nTo: Alice <alice@x.test>\nSubject: Offer\n\n"),
    ("apple", "Begin forwarded message:\n\nFrom: Jan Novák <jan@acme.test>\nSubject: Offer\n"
              "Date: November 26, 2026 at 11:00:00 AM GMT+1\nTo: Alice <alice@x.test>\n\n"),
])
def test_inline_forwards_are_rebuilt_as_the_original(fmt, block):
    found = forwards.original_of(_forward("See below.\n\n" + block + "Price is 10 EUR.\nJan\n"))
    assert found is not None and found[0] == fmt
    envelope = parse(found[1]).envelope
    assert envelope.from_[0].email == "jan@acme.test" and envelope.from_[0].name == "Jan Novák"
    assert envelope.subject == "Offer" and envelope.date == datetime(2026, 11, 26, 10, tzinfo=timezone.utc)
    assert parse(found[1]).snippet == "Price is 10 EUR. Jan"


def test_attached_original_keeps_its_bytes_and_plain_mail_is_no_forward():
    original = (b"From: jan@acme.test\r\nSubject: Offer\r\nMessage-ID: <o@acme.test>\r\n\r\nPrice.\r\n")
    mail = (b"From: alice@x.test\r\nSubject: Fwd\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n"
            b"Content-Type: text/plain\r\n\r\nFYI\r\n--b\r\nContent-Type: message/rfc822\r\n\r\n" + original +
            b"\r\n--b--\r\n")
    fmt, raw = forwards.original_of(mail)
    assert fmt == "attached" and parse(raw).envelope.message_id == "o@acme.test"
    assert forwards.original_of(b"From: a@x.test\r\nSubject: hi\r\n\r\nFrom: nobody\r\nJust text\r\n") is None


def test_received_event_is_filed_under_the_sending_addresss_account():
    raw = b"From: alt@x.test\r\nTo: jan@acme.test\r\nSubject: s\r\nMessage-ID: <m@x>\r\n\r\nbody\r\n"
    filing = Filing("u-a", "c-1", "alt@x.test", ("alice@x.test", "alt@x.test"), deal_id="42")
    event = received_event(filing, raw, "b" * 64, parse(raw))
    assert event.account_id == account_id("u-a", "alt@x.test")
    assert event.message_key == message_key(event.account_id, parse(raw).envelope, raw)
    assert event.direction == "outgoing" and event.source == "bcc" and event.deal_hint == "42"
    assert event.event_id == received_event(filing, raw, "b" * 64, parse(raw)).event_id
    incoming = received_event(filing, raw.replace(b"From: alt@x.test", b"From: jan@acme.test"), "c" * 64,
                              parse(raw.replace(b"From: alt@x.test", b"From: jan@acme.test")))
    assert incoming.direction == "incoming"


SENT = (b"From: alice@x.test\r\nTo: jan@acme.test\r\nBcc: company-1@bcc.example\r\nSubject: Cen\xc3\xadk\r\n"
        b"Date: Thu, 26 Nov 2026 10:00:00 +0000\r\nMessage-ID: <k@x.test>\r\nMIME-Version: 1.0\r\n"
        b"Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n"
        b"D\xc3\xadky za sch\xc5\xafzku.\r\n")


def _key(raw: bytes) -> str:
    return message_key("acc", parse(raw).envelope, raw)


def test_what_bcc_delivery_changes_is_not_in_the_key():
    delivered = SENT.replace(b"Bcc: company-1@bcc.example\r\n", b"")
    delivered = b"Return-Path: <alice@x.test>\r\nReceived: from mx by gw; Thu, 26 Nov 2026\r\n" + delivered
    assert _key(delivered) == _key(SENT)
    assert _key(delivered.replace(b"\r\n", b"\n")) == _key(SENT)   # line endings
    assert _key(delivered + b"\r\n") == _key(SENT)                  # the final CRLF SMTP adds


def test_an_8bitmime_downgrade_would_change_the_key_so_the_gateway_announces_8bitmime():
    head, body = SENT.split(b"\r\n\r\n", 1)
    downgraded = head.replace(b"8bit", b"quoted-printable") + b"\r\n\r\n" + quopri.encodestring(body)
    assert _key(downgraded) != _key(SENT)


def test_a_user_record_is_applied_to_the_directory_at_once():
    from maillink_bcc_gateway.adapters.directory import Directory
    directory = Directory(users=None, addresses=None)
    directory.apply_user({"_id": "u-a", "company_id": "c-1", "login_email": "a@x.test", "deleted": False})
    assert directory.owner("A@x.test") == Owner("u-a", "c-1", Standing.LOGIN)
    assert directory.company_of(company_token("c-1")) == "c-1" and directory.own_addresses("u-a") == ("a@x.test",)
    directory.apply_user({"_id": "u-a", "company_id": "c-2", "login_email": "new@x.test", "deleted": False})
    assert directory.owner("a@x.test") is None and directory.owner("new@x.test").company_id == "c-2"
    assert directory.own_addresses("u-a") == ("new@x.test",)
    directory.apply_user({"_id": "u-a", "company_id": "c-2", "login_email": "new@x.test", "deleted": True})
    assert directory.owner("new@x.test") is None and directory.own_addresses("u-a") == ()
