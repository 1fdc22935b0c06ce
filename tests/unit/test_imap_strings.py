"""IMAP strings (RFC 3501 §4.3) and LOGIN's arguments: what goes on the wire, and that it reads back."""
import pytest
from hypothesis import given
from hypothesis import strategies as st

from maillink_ingest.imap.connection import open_session
from maillink_ingest.imap.errors import AuthenticationFailed, UnsendableCredentials
from maillink_runtime.imap import UnsendableCredentials as Unsendable
from maillink_runtime.imap.login import literal_mode, login_words
from maillink_runtime.imap.strings import (LITERAL_MINUS_MAX, Literal, command_chunks, read_astring, read_nstring,
                                          string_arg)
from maillink_schemas.accounts import ImapEndpoint, Security

# Mostly the bytes that matter to IMAP's grammar, so hypothesis meets them often; then any text at all.
no_nul = st.one_of(st.text(alphabet=' "\\{}()+*%x\r\n\x01é✓'),
                   st.text(alphabet=st.characters(min_codepoint=0x20, max_codepoint=0x7E)),
                   st.text(alphabet=st.characters(blacklist_characters="\0", blacklist_categories=("Cs",))))
modes = st.sampled_from([False, True, "LITERAL-"])


def parse_command(wire: bytes) -> list[bytes]:
    """An independent reader of `WORD astring astring ...` as a server sees it."""
    name, _, rest = wire.partition(b" ")
    values, pos = [name], 0
    while pos < len(rest):
        value, pos = read_astring(rest, pos)
        values.append(value)
        assert rest[pos:pos + 1] in (b" ", b"")
        pos += 1
    return values


def test_printable_ascii_is_quoted_with_quote_and_backslash_escaped():
    assert string_arg('pa"ss \\word') == b'"pa\\"ss \\\\word"'
    assert string_arg("") == b'""'


@pytest.mark.parametrize("value", ["wörd", "✓", "tab\there", "bell\x07", "del\x7f", "line\nbreak", "cr\r"])
def test_anything_else_is_a_literal_of_its_utf8_bytes(value):
    assert string_arg(value) == Literal(value.encode())


def test_nul_cannot_be_sent_at_all():
    with pytest.raises(ValueError):
        string_arg("a\0b")


def test_synchronising_literals_split_the_command_at_each_continuation():
    words = [b"LOGIN", Literal(b"j\xc3\xa1"), b'"pw"']
    assert command_chunks(words) == [b"LOGIN {3}", b'j\xc3\xa1 "pw"']
    assert command_chunks([b"LOGIN", b'"u"', Literal(b"\xe2\x9c\x93")]) == [b'LOGIN "u" {3}', b"\xe2\x9c\x93"]


def test_literal_plus_sends_everything_at_once_and_literal_minus_only_up_to_4096_bytes():
    words = [b"LOGIN", Literal(b"\xc3\xa1"), Literal(b"\xc3" * (LITERAL_MINUS_MAX + 1))]
    assert command_chunks(words, True) == [b"LOGIN {2+}\r\n\xc3\xa1 {4097+}\r\n" + b"\xc3" * 4097]
    assert command_chunks(words, "LITERAL-") == [b"LOGIN {2+}\r\n\xc3\xa1 {4097}", b"\xc3" * 4097]


@given(no_nul, no_nul, modes)
def test_any_credentials_without_nul_round_trip_through_encoder_and_parser(user, secret, mode):
    words = [b"LOGIN", string_arg(user), string_arg(secret)]
    wire = b"\r\n".join(command_chunks(words, mode))
    assert parse_command(wire) == [b"LOGIN", user.encode(), secret.encode()]


def test_quoted_and_atom_and_nil_are_read():
    assert read_astring(b'"a\\"b" rest', 0) == (b'a"b', 6)
    assert read_astring(b"INBOX)", 0) == (b"INBOX", 5)
    assert read_astring(b"NIL", 0) == (b"NIL", 3)  # a mailbox may be called NIL
    assert read_nstring(b"NIL INBOX", 0) == (None, 3)
    assert read_nstring(b'"/" INBOX', 0) == (b"/", 3)
    assert read_astring(b"{4}\r\na\r\nb rest", 0) == (b"a\r\nb", 9)
    assert read_astring(b"{1+}\r\nx", 0) == (b"x", 7)


@pytest.mark.parametrize("bad", [b'"open', b"{5}\r\nabc", b" x", b""])
def test_malformed_strings_are_refused(bad):
    with pytest.raises(ValueError):
        read_astring(bad, 0)


@pytest.mark.parametrize("user, secret", [("a\rb", "p"), ("a", "p\nq"), ("a\0", "p"), ("a", "\r\n")])
def test_line_breaks_and_nul_in_credentials_are_refused_with_a_clear_message(user, secret):
    with pytest.raises(Unsendable, match="line break or NUL"):
        login_words(user, secret)


def test_credentials_that_are_not_text_are_refused_too():
    with pytest.raises(Unsendable, match="not valid text"):
        login_words("jan", "lone \ud800 surrogate")


async def test_open_session_refuses_unsendable_credentials_before_connecting():
    # Port 1 on loopback: had it tried to connect, this would be ServerUnreachable.
    with pytest.raises(UnsendableCredentials) as info:
        await open_session(ImapEndpoint(host="127.0.0.1", port=1, security=Security.PLAIN), "jan", "pass\r\nA1 DELETE INBOX")
    assert isinstance(info.value, AuthenticationFailed)  # so the account asks for new credentials


def test_login_quotes_the_username_too():
    assert login_words('jan "x" \\y', 'pa"ss') == [b"LOGIN", b'"jan \\"x\\" \\\\y"', b'"pa\\"ss"']
    assert login_words("jan", 'pa"ss \\wörd ✓')[2] == Literal('pa"ss \\wörd ✓'.encode())


def test_literal_mode_follows_the_capabilities():
    assert literal_mode({"IMAP4rev1", "LITERAL+"}) is True
    assert literal_mode({"IMAP4rev1", "literal-"}) == "LITERAL-"
    assert literal_mode({"IMAP4rev1"}) is False
