"""The gateway's replacements of dkimpy helpers (adapters/dkim_speedups.py) give dkimpy's own verdicts:
each message is verified with the replacements and with stock dkimpy, and both must agree with the
verdict the case expects."""
import base64
import contextlib

import dkim
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from maillink_bcc_gateway.adapters import dkim_speedups


def _key(bits: int) -> tuple[bytes, bytes]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=bits)
    private = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL,
                                serialization.NoEncryption())
    public = key.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return private, b"v=DKIM1; k=rsa; p=" + base64.b64encode(public)


KEY, RECORD = _key(2048)
OTHER_KEY, OTHER_RECORD = _key(2048)
SMALL_KEY, SMALL_RECORD = _key(1024)
# Folded headers, tabs, runs of spaces and trailing whitespace: every branch of the canonicalisation.
MESSAGE = (b"From: Ann <ann@dkim.test>\r\nTo: bob@example.test\r\nSubject: Pricing  for\r\n\t50 seats \r\n"
           b"Date: Fri, 27 Nov 2026 10:00:00 +0000\r\nMessage-ID: <m1@dkim.test>\r\n\r\n"
           b"Hello Bob,\r\n\r\nthe  pricing\tis attached. \r\nplain line\r\n\r\n\r\n")
PLAIN = MESSAGE.replace(b"  ", b" ").replace(b"\t", b" ").replace(b" \r\n", b"\r\n")


@contextlib.contextmanager
def _stock():
    dkim_speedups.apply(dkim_speedups.STOCK)
    try:
        yield
    finally:
        dkim_speedups.apply()


def _sign(raw: bytes, key: bytes = KEY, **options) -> bytes:
    with _stock():  # signed by dkimpy as it ships
        return dkim.sign(raw, b"sel", b"dkim.test", key, include_headers=[b"from", b"to", b"subject", b"date"],
                         **options) + raw


def _dns(record: bytes):
    def lookup(name, timeout=5):
        return record if name in (b"sel._domainkey.dkim.test.", "sel._domainkey.dkim.test.") else None
    return lookup


def _verdict(raw: bytes, record: bytes) -> bool | str:
    """dkimpy's answer: True/False, or the DKIMException it raised (check_dkim makes that a fail)."""
    try:
        return dkim.DKIM(raw).verify(dnsfunc=_dns(record))
    except dkim.DKIMException as exc:
        return f"{type(exc).__name__}: {exc}"


def _flip_b(signed: bytes) -> bytes:
    head, _, rest = signed.partition(b" b=")
    return head + b" b=" + (b"A" if rest[:1] != b"A" else b"B") + rest[1:]


def _shorten_b(signed: bytes) -> bytes:
    head, _, rest = signed.partition(b" b=")
    return head + b" b=" + rest[4:]


CASES = {
    "relaxed/simple signed": (lambda: _sign(MESSAGE), RECORD, True),
    "relaxed/relaxed signed": (lambda: _sign(MESSAGE, canonicalize=(b"relaxed", b"relaxed")), RECORD, True),
    "simple/simple signed": (lambda: _sign(MESSAGE, canonicalize=(b"simple", b"simple")), RECORD, True),
    "no whitespace to compress": (lambda: _sign(PLAIN, canonicalize=(b"relaxed", b"relaxed")), RECORD, True),
    "1024-bit key": (lambda: _sign(MESSAGE, SMALL_KEY), SMALL_RECORD, True),
    "rsa-sha1 (dkimpy's own RSA)": (lambda: _sign(MESSAGE, signature_algorithm=b"rsa-sha1"), RECORD, True),
    "body tampered": (lambda: _sign(MESSAGE).replace(b"pricing", b"pr1cing"), RECORD, False),  # raises
    "relaxed body whitespace changed": (lambda: _sign(MESSAGE, canonicalize=(b"relaxed", b"relaxed"))
                                        .replace(b"the  pricing", b"the pricing"), RECORD, True),
    "simple body whitespace changed": (lambda: _sign(MESSAGE, canonicalize=(b"simple", b"simple"))
                                       .replace(b"the  pricing", b"the pricing"), RECORD, False),
    "relaxed, two spaces and no tab": (lambda: _sign(PLAIN.replace(b"the pricing", b"the  pricing"),
                                                     canonicalize=(b"relaxed", b"relaxed")), RECORD, True),
    "header tampered": (lambda: _sign(MESSAGE).replace(b"Subject: Pricing", b"Subject: Prices"), RECORD, False),
    "signature changed": (lambda: _flip_b(_sign(MESSAGE)), RECORD, False),
    "signature shorter than the modulus": (lambda: _shorten_b(_sign(MESSAGE)), RECORD, False),
    "wrong key published": (lambda: _sign(MESSAGE), OTHER_RECORD, False),
    "key record without p=": (lambda: _sign(MESSAGE), b"v=DKIM1; k=rsa", False),
    "expired (x= in the past)": (lambda: _sign(MESSAGE).replace(b"DKIM-Signature: ", b"DKIM-Signature: x=1; ", 1),
                                 RECORD, False),
}


@pytest.mark.parametrize("case", CASES)
def test_replacements_agree_with_stock_dkimpy(case):
    make, record, expected = CASES[case]
    raw = make()
    fast = [_verdict(raw, record) for _ in range(2)]  # the second with the key from the cache
    with _stock():
        stock = _verdict(raw, record)
    assert fast == [stock, stock]
    assert (stock is True) is expected


def test_the_rsa_check_runs_in_openssl_for_sha256():
    dkim_speedups._openssl_key.cache_clear()
    assert dkim.DKIM(_sign(MESSAGE)).verify(dnsfunc=_dns(RECORD))
    assert dkim_speedups._openssl_key.cache_info().currsize == 1


def test_a_changed_key_record_is_parsed_again():
    raw = _sign(MESSAGE)
    assert dkim.DKIM(raw).verify(dnsfunc=_dns(RECORD))
    assert not dkim.DKIM(raw).verify(dnsfunc=_dns(OTHER_RECORD))  # key rotated: the new record decides
    assert dkim.DKIM(raw).verify(dnsfunc=_dns(RECORD))


_SIG_PIECES = [b"b", b"=", b";", b" ", b"\t", b"\r\n", b"\n", b"\r", b"\r\n ", b"bh=", b" b=", b";b =", b"\tb\r\n =",
               b"abc+/", b"Zz09==", b"h=from:to", b"-", b"\xff", b"."]


@settings(max_examples=3000, deadline=None)
@given(st.lists(st.one_of(st.sampled_from(_SIG_PIECES), st.binary(max_size=6)), max_size=30))
def test_the_b_tag_removal_matches_dkimpys_pattern(pieces):
    value = b"".join(pieces)
    stock = dict(dkim_speedups.STOCK_BY_NAME)["RE_BTAG"]
    assert dkim_speedups._RE_BTAG.sub(b"\\1", value) == stock.sub(b"\\1", value)


def test_the_b_tag_removal_on_a_real_signature():
    value = _sign(MESSAGE).split(b":", 1)[1].split(b"\r\n\r\n")[0]
    stock = dict(dkim_speedups.STOCK_BY_NAME)["RE_BTAG"]
    removed = dkim_speedups._RE_BTAG.sub(b"\\1", value)
    assert removed == stock.sub(b"\\1", value) and len(removed) < len(value) - 200  # the signature went


_MESSAGE_PIECES = [b"From: a@b.test", b"Subject: x", b"X-Y:z", b"From a@b Fri", b" folded", b"\tfolded", b"\r\n",
                   b"\n", b"\r", b"\r\n\r\n", b"\n\n", b"\n\r\n", b"body line", b" ", b"", b"no colon", b"\xff:"]


def _parsed(parse, raw: bytes):
    try:
        return parse(raw)
    except Exception as exc:  # noqa: BLE001 - the same failure is part of the same answer
        return type(exc), str(exc)


@settings(max_examples=3000, deadline=None)
@given(st.lists(st.one_of(st.sampled_from(_MESSAGE_PIECES), st.binary(max_size=4)), max_size=40))
def test_the_message_split_matches_dkimpys(pieces):
    raw = b"".join(pieces)
    stock = dict(dkim_speedups.STOCK_BY_NAME)["rfc822_parse"]
    assert _parsed(dkim_speedups._rfc822_parse, raw) == _parsed(stock, raw)


def test_the_message_split_on_a_real_signed_message_with_bare_line_feeds():
    raw = _sign(MESSAGE)
    stock = dict(dkim_speedups.STOCK_BY_NAME)["rfc822_parse"]
    for message in (raw, raw.replace(b"\r\n", b"\n"), raw + b"tail\nwith bare\r\nline feeds\n"):
        headers, body = dkim_speedups._rfc822_parse(message)
        assert (headers, body) == stock(message) and len(headers) == 6 and body.count(b"\r\n") >= 5


@settings(max_examples=2000, deadline=None)
@given(st.lists(st.sampled_from([b"\r", b"\n", b"\r\n", b" ", b"\t", b"a", b"\r\r\n", b"\n\n"]), max_size=30))
def test_the_unfolding_matches_dkimpys(pieces):
    value = b"".join(pieces)
    stock = dict(dkim_speedups.STOCK_BY_NAME)["unfold_header_value"]
    assert dkim_speedups._unfold_header_value(value) == stock(value)
