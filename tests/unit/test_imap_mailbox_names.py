"""Mailbox names: modified UTF-7 (RFC 3501 §5.1.3) both ways, quoting, and LIST responses as aioimaplib hands them."""
import pytest
from hypothesis import given
from hypothesis import strategies as st

from maillink_runtime.imap.mailbox_names import (Listed, decode_name, encode_name, mailbox_arg, parse_list,
                                                parse_list_response)
from maillink_runtime.imap.strings import quote

names = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), min_size=1)


@pytest.mark.parametrize("name, wire", [
    ("~peter/mail/台北/日本語", b"~peter/mail/&U,BTFw-/&ZeVnLIqe-"),  # RFC 3501 §5.1.3's own example
    ("&", b"&-"),
    ("Tom & Jerry", b"Tom &- Jerry"),
    ("Ünïcødé", b"&ANw-n&AO8-c&APg-d&AOk-"),  # recorded from Dovecot 2.3.19
    ("😀", b"&2D3eAA-"),  # outside the BMP: a UTF-16 surrogate pair
    ('a"b', b'a"b'),
    ("back\\slash", b"back\\slash"),
])
def test_modified_utf7_matches_the_rfc_and_dovecot(name, wire):
    assert encode_name(name) == wire
    assert decode_name(wire) == name


@given(names)
def test_any_name_round_trips_and_is_sent_as_printable_ascii(name):
    wire = encode_name(name)
    assert all(0x20 <= b <= 0x7E for b in wire)
    assert decode_name(wire) == name


@pytest.mark.parametrize("wire", [
    b"&AGE-",  # "a" in base64: valid UTF-7, but not the canonical form
    b"&Jjo",  # no closing "-"
    b"&2D0-",  # a lone surrogate
    "Ünï".encode(),  # raw UTF-8: not modified UTF-7
])
def test_names_that_would_not_encode_back_to_the_same_bytes_are_refused(wire):
    assert decode_name(wire) is None


def test_command_arguments_are_encoded_then_quoted():
    assert mailbox_arg('a"b') == '"a\\"b"'
    assert mailbox_arg("back\\slash") == '"back\\\\slash"'
    assert mailbox_arg("with space") == '"with space"'
    assert mailbox_arg("Ünïcødé") == '"&ANw-n&AO8-c&APg-d&AOk-"'
    assert mailbox_arg("*%") == '"*%"'


def test_list_lines_as_aioimaplib_returns_them_from_dovecot():
    # Recorded from Dovecot 2.3.19 (aioimaplib drops "* LIST "); the last two are a literal name
    # (aioimaplib hands its bytes as a separate bytearray) and an atom with a NIL delimiter.
    lines = [
        b'(\\HasNoChildren) "/" "a\\"b"',
        b'(\\HasNoChildren) "/" "back\\\\slash"',
        b'(\\HasNoChildren) "/" "with space"',
        b'(\\HasNoChildren) "/" &ANw-n&AO8-c&APg-d&AOk-',
        b'(\\HasNoChildren \\Sent) "/" Sent',
        b'(\\HasChildren) "." {9}', bytearray(b'lit"er\\al'),
        b"(\\Noselect) NIL Public",
    ]
    listed, unreadable = parse_list(lines)
    assert listed == [
        Listed('a"b', frozenset({"\\HasNoChildren"}), "/"),
        Listed("back\\slash", frozenset({"\\HasNoChildren"}), "/"),
        Listed("with space", frozenset({"\\HasNoChildren"}), "/"),
        Listed("Ünïcødé", frozenset({"\\HasNoChildren"}), "/"),
        Listed("Sent", frozenset({"\\HasNoChildren", "\\Sent"}), "/"),
        Listed('lit"er\\al', frozenset({"\\HasChildren"}), "."),
        Listed("Public", frozenset({"\\Noselect"}), None),
    ]
    assert unreadable == []


def test_the_rest_of_a_response_after_a_literal_name_stays_with_it():
    lines = [b'() "/" {2}', bytearray(b"ab"), b' ("CHILDINFO" ("SUBSCRIBED"))', b'() "/" next']
    listed, _ = parse_list(lines)
    assert [f.name for f in listed] == ["ab", "next"]


def test_unreadable_responses_are_returned_not_guessed():
    lines = [b'(\\HasNoChildren) "/" &AGE-', b'"no flags" "/" x', b'(\\HasNoChildren) "/" "open']
    listed, unreadable = parse_list(lines)
    assert listed == [] and unreadable == [bytes(line) for line in lines]


def test_the_list_prefix_is_tolerated():
    assert parse_list_response(b'LIST () "/" INBOX') == (frozenset(), "/", b"INBOX")


@given(names, st.booleans())
def test_any_name_listed_by_a_server_reads_back(name, as_literal):
    wire = encode_name(name)
    lines = [b'() "/" {%d}' % len(wire), bytearray(wire)] if as_literal else [b'() "/" ' + quote(wire)]
    listed, unreadable = parse_list(lines)
    assert [f.name for f in listed] == [name] and not unreadable
