"""Mailbox names on the wire: modified UTF-7 (RFC 3501 §5.1.3) both ways, quoting for commands,
and reading LIST responses. Pure.

Every command that names a mailbox (SELECT, EXAMINE, STATUS, CREATE, APPEND, COPY, MOVE, RENAME)
must send `mailbox_arg(name)`. Names we hand out are always the decoded Unicode form.
"""
from dataclasses import dataclass

# imapclient's codec (pinned): `&` -> `&-`, characters outside the BMP as UTF-16 surrogate pairs,
# `,` for `/` in the base64 alphabet; tests/unit/test_imap_mailbox_names.py holds it to RFC 3501.
from imapclient import imap_utf7

from .strings import CRLF, quote, read_astring, read_nstring


@dataclass(frozen=True)
class Listed:
    name: str
    flags: frozenset[str]
    delimiter: str | None


def encode_name(name: str) -> bytes:
    return imap_utf7.encode(name)


def decode_name(wire: bytes) -> str | None:
    """The Unicode name, or None when `wire` is not canonical modified UTF-7.

    Such a name cannot be addressed reliably (encoding our reading of it would name another
    mailbox), so callers skip it and say so, rather than sync the wrong folder. Servers that send
    raw UTF-8 without UTF8=ACCEPT (RFC 6855) being enabled land here too; we never enable it.
    """
    try:
        name = imap_utf7.decode(wire)
        return name if imap_utf7.encode(name) == wire else None
    except ValueError:  # bad base64, bad UTF-16, a lone surrogate
        return None


def mailbox_arg(name: str) -> str:
    """The name as a command argument. Modified UTF-7 is printable ASCII, so a quoted string always
    suffices (a literal is never needed); quoting makes spaces, `"`, `\\`, `%` and `*` safe."""
    return quote(encode_name(name)).decode("ascii")


def rejoin_literals(lines: list) -> list[bytes]:
    """Puts each untagged response back together as it was on the wire.

    Quirk (aioimaplib 2.0.3): a literal arrives as a separate bytearray after the line that announced
    it, and the rest of the response line after the literal is a further item (dropped when empty).
    That rest starts with a space; a new response does not.
    """
    out: list[bytes] = []
    after_literal = False
    for item in lines:
        if isinstance(item, bytearray) and out:
            out[-1] += CRLF + bytes(item)
            after_literal = True
        elif after_literal and bytes(item).startswith(b" "):
            out[-1] += bytes(item)
        else:
            out.append(bytes(item))
            after_literal = False
    return out


def parse_list_response(response: bytes) -> tuple[frozenset[str], str | None, bytes]:
    """`(flags) delimiter mailbox` of one LIST response (the leading `LIST ` optional); the mailbox
    is returned still encoded. Raises ValueError when malformed."""
    if response.startswith(b"LIST "):
        response = response[5:]
    if not response.startswith(b"("):
        raise ValueError("LIST response without a flag list")
    close = response.index(b")")
    flags = frozenset(response[1:close].decode("ascii", "replace").split())
    if response[close + 1:close + 2] != b" ":
        raise ValueError("LIST response without a delimiter")
    delimiter, pos = read_nstring(response, close + 2)
    if response[pos:pos + 1] != b" ":
        raise ValueError("LIST response without a mailbox name")
    name, _ = read_astring(response, pos + 1)  # anything after it (LIST-EXTENDED data) is not needed
    return flags, (delimiter.decode("utf-8", "replace") if delimiter is not None else None), name


def parse_list(lines: list) -> tuple[list[Listed], list[bytes]]:
    """The mailboxes of a LIST's untagged lines, and the raw responses that could not be read."""
    listed, unreadable = [], []
    for response in rejoin_literals(lines):
        try:
            flags, delimiter, wire = parse_list_response(response)
        except ValueError:
            unreadable.append(response)
            continue
        name = decode_name(wire)
        if name is None:
            unreadable.append(response)
        else:
            listed.append(Listed(name, flags, delimiter))
    return listed, unreadable
