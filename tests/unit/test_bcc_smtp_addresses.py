"""The gateway's SMTP address parse (entrypoints/smtp.GatewaySMTP._getaddr) gives aiosmtpd's own
(address, rest) for every MAIL/RCPT argument: the usual forms, the odd ones, and generated ones."""
import pytest
from aiosmtpd.smtp import SMTP
from hypothesis import given, settings
from hypothesis import strategies as st

from maillink_bcc_gateway.entrypoints.smtp import GatewaySMTP


class _Handler:
    pass


def _servers(local_part_limit: int = 0) -> tuple[SMTP, GatewaySMTP]:
    stock, ours = SMTP(_Handler()), GatewaySMTP(_Handler())
    stock.local_part_limit = ours.local_part_limit = local_part_limit
    return stock, ours


def _parse(server: SMTP, arg: str):
    """(address, rest), or the exception the parser raised (email's parser fails on a few inputs;
    aiosmtpd then drops the connection, and so must the gateway)."""
    try:
        return server._getaddr(arg)
    except Exception as exc:  # noqa: BLE001 - compared, not handled
        return type(exc)


ARGS = ["<alice@good.test>", "<alice@good.test> SIZE=2048 BODY=8BITMIME", "<Alice.B+tag@Good.Test>",
        "<a@b>", "<a@b>  ", "<a@b> \t SIZE=1", "<a@b> (c) SIZE=1", "<a@b>(c)", "<a@b>\x0bX", "<a@b> \u2003X", "<a@b>SIZE=1", "<company-7f3a+deal-123@bcc.example>", "<x!#$%&'*+/=?^_`{|}~-@d-1.e>",
        "<>", "< alice@good.test>", "<alice@good.test >", " <alice@good.test>", "alice@good.test",
        "alice@good.test SIZE=1", '<"a b"@good.test>', "<a(comment)@good.test>", "<a@[127.0.0.1]>",
        "<a..b@good.test>", "<.a@good.test>", "<a.@good.test>", "<a@.good.test>", "<a@good..test>",
        "<a@good.test.>", "<a@b@c>", "<a@good_test>", "<jörg@good.test>", "<a@bücher.test>", "<a@b",
        "a@b>", "<@a,@b:c@d>", "<a@b>>", "<a\x00@b>", "<" + "x" * 600 + "@good.test>", ""]


@pytest.mark.parametrize("arg", ARGS)
def test_same_as_aiosmtpd(arg):
    stock, ours = _servers()
    assert _parse(ours, arg) == _parse(stock, arg)


@pytest.mark.parametrize("arg", ["<" + "x" * 64 + "@good.test>", "<" + "x" * 65 + "@good.test>"])
def test_local_part_limit_as_aiosmtpd(arg):
    stock, ours = _servers(local_part_limit=64)
    assert _parse(ours, arg) == _parse(stock, arg)
    assert (ours._getaddr(arg)[0] is None) is (len(arg) > 64 + len("<@good.test>"))


ATEXT = "abcXYZ019!#$%&'*+/=?^_`{|}~-.@<>\"() []\\,;:é \t\x0b\u2003"


@settings(max_examples=1500, deadline=None)
@given(st.text(alphabet=ATEXT, max_size=40))
def test_generated_arguments_same_as_aiosmtpd(arg):
    stock, ours = _servers()
    assert _parse(ours, arg) == _parse(stock, arg)


@settings(max_examples=1000, deadline=None)
@given(st.from_regex(r"\A<[a-z0-9.+-]{1,10}@[a-z0-9.-]{1,10}>[ \t()A-Z=0-9]{0,10}\Z"))
def test_generated_plain_addresses_same_as_aiosmtpd(arg):
    stock, ours = _servers()
    assert _parse(ours, arg) == _parse(stock, arg)
