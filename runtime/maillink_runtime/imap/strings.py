"""IMAP strings on the wire (RFC 3501 §4.3, §9): how a value becomes a quoted string or a literal,
and how one is read back. Pure: no I/O, so every rule is unit-tested.

A quoted string carries only 7-bit text without CR and LF; `"` and `\\` are escaped. Anything else
(8-bit, control characters) must travel as a literal, `{n}` CRLF followed by n bytes. A
synchronising literal waits for the server's `+` continuation; a non-synchronising `{n+}` (RFC 7888,
LITERAL+, or LITERAL- up to 4096 bytes) is sent straight on. NUL can never be sent in a string.
"""
import re
from dataclasses import dataclass

CRLF = b"\r\n"
LITERAL_MINUS_MAX = 4096  # RFC 7888 §3: LITERAL- allows non-synchronising literals up to this size
_PRINTABLE = re.compile(rb"[\x20-\x7e]*")
_LITERAL = re.compile(rb"\{(\d+)(\+?)\}\r\n")
_ATOM_END = re.compile(rb"[ ()\r\n]")


@dataclass(frozen=True)
class Literal:
    data: bytes


def quote(data: bytes) -> bytes:
    return b'"' + data.replace(b"\\", b"\\\\").replace(b'"', b'\\"') + b'"'


def string_arg(value: str) -> bytes | Literal:
    """A quoted string when every byte is printable 7-bit, otherwise a literal of the UTF-8 bytes."""
    data = value.encode("utf-8")
    if b"\0" in data:
        raise ValueError("NUL cannot be sent in an IMAP string")
    return quote(data) if _PRINTABLE.fullmatch(data) else Literal(data)


def command_chunks(words: list[bytes | Literal], non_sync_literals: bool | str = False) -> list[bytes]:
    """Splits a command (without its tag) at its synchronising literals.

    The first chunk is the command line; each later chunk is sent, followed by CRLF, after one `+`
    continuation from the server. Non-synchronising literals (`non_sync_literals` True for LITERAL+,
    "LITERAL-" for the size-bounded variant) are inlined. On the wire: b"\\r\\n".join(chunks).
    """
    chunks, line = [], b""
    for i, word in enumerate(words):
        sep = b" " if i else b""
        if not isinstance(word, Literal):
            line += sep + word
        elif non_sync_literals is True or (non_sync_literals == "LITERAL-" and len(word.data) <= LITERAL_MINUS_MAX):
            line += sep + b"{%d+}" % len(word.data) + CRLF + word.data
        else:
            chunks.append(line + sep + b"{%d}" % len(word.data))
            line = word.data
    chunks.append(line)
    return chunks


def read_astring(buf: bytes, pos: int) -> tuple[bytes, int]:
    """Reads an astring at `pos` (a quoted string, a literal, or an atom); returns it and the position after it.

    Raises ValueError when malformed. An atom NIL here is the name "NIL"; see read_nstring.
    """
    if buf.startswith(b'"', pos):
        out, i = bytearray(), pos + 1
        while i < len(buf):
            c = buf[i]
            if c == 0x5C and i + 1 < len(buf):  # a backslash escapes the next byte
                out.append(buf[i + 1])
                i += 2
            elif c == 0x22:
                return bytes(out), i + 1
            else:
                out.append(c)
                i += 1
        raise ValueError("unterminated quoted string")
    if m := _LITERAL.match(buf, pos):
        end = m.end() + int(m.group(1))
        if end > len(buf):
            raise ValueError("literal shorter than announced")
        return buf[m.end():end], end
    m = _ATOM_END.search(buf, pos)
    end = m.start() if m else len(buf)
    if end == pos:
        raise ValueError(f"expected a string at offset {pos}")
    return buf[pos:end], end


def read_nstring(buf: bytes, pos: int) -> tuple[bytes | None, int]:
    """Like read_astring, but the atom NIL means no value (e.g. LIST's hierarchy delimiter)."""
    if buf[pos:pos + 3].upper() == b"NIL" and buf[pos + 3:pos + 4] in (b"", b" ", b")", b"\r"):
        return None, pos + 3
    return read_astring(buf, pos)
