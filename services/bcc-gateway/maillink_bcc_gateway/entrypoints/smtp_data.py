"""Reading an SMTP DATA section in large pieces, with the outcome of aiosmtpd's line-by-line loop.

aiosmtpd 1.4.6 (`SMTP.smtp_DATA`) reads DATA one line at a time (a `readuntil`, size and length
checks and two joins per line, ~30 lines for a 2 KB message). Here the bytes up to the end marker
are read in a few calls (`readuntil(b"\\r\\n.\\r\\n")`, which the reader's limit cuts into pieces of
~1 KB or whatever has arrived), the dot-stuffing is undone once over the whole message, and what
aiosmtpd would have answered is decided from the same bytes:

- the end is the first line that is exactly ".\\r\\n" (a line starts the data or follows CRLF);
  bare CR or LF are line content, as in aiosmtpd;
- one leading "." is removed from every line that starts with one (aiosmtpd removes it whether the
  client stuffed it or not, so this is `replace(b"\\r\\n.", b"\\r\\n")`, not `b"\\r\\n.."`);
- `500 Line too long` when a line (with its CRLF) is longer than `line_length_limit`, `552 Too much
  mail data` when the running byte count (stuffed bytes, CRLFs included, the end marker not) passes
  `data_size_limit`; which of the two wins follows aiosmtpd's order exactly (`_Account._line`);
- nothing is kept beyond the size limit: once it is passed, the bytes are only counted and the
  section is drained to its end before the reply.

tests/unit/test_bcc_smtp_data.py feeds the same byte streams to stock aiosmtpd and to this reader
and compares the content and the replies.
"""
import asyncio
import enum

END = b"\r\n.\r\n"  # the end marker, counting the CRLF that ends the last data line


class Verdict(enum.Enum):
    OK = "ok"
    TOO_LONG = "500 Line too long (see RFC5321 4.5.3.1.6)"  # aiosmtpd's replies, word for word
    TOO_MUCH = "552 Error: Too much mail data"


class _Account:
    """Counts the data as it arrives; keeps it while it can still be the message."""

    def __init__(self, size_limit: int | None, line_limit: int) -> None:
        self._size_limit, self._line_limit = size_limit, line_limit
        self._kept: list[bytes] = []
        self._total = 0
        # Past the size limit: walk the lines as aiosmtpd does, to tell 500 from 552 (rare).
        self._walking = False
        self._verdict: Verdict | None = None
        self._counted = 0          # aiosmtpd's num_bytes, while it still counts
        self._carry = b""          # the current line's bytes so far (bounded: see _walk)

    def take(self, piece: bytes) -> None:
        self._total += len(piece)
        if self._walking:
            self._walk(piece)
        elif self._size_limit and self._total > self._size_limit:
            self._walking = True
            kept, self._kept = self._kept, []
            for earlier in kept:
                self._walk(earlier)
            self._walk(piece)
        else:
            self._kept.append(piece)

    def result(self) -> tuple[Verdict, bytes]:
        if self._walking:
            # The data's lines add up to more than the limit, so aiosmtpd has refused by its end.
            return self._verdict or Verdict.TOO_MUCH, b""
        data = b"".join(self._kept)
        # Within the size limit, only a long line is refused (a line's content over limit - 2).
        if data and max(map(len, data.split(b"\r\n"))) > self._line_limit - 2:
            return Verdict.TOO_LONG, b""
        return Verdict.OK, unstuff(data)

    def _walk(self, piece: bytes) -> None:
        if self._verdict is not None:
            return
        lines = (self._carry + piece).split(b"\r\n")
        self._carry = lines.pop()
        for line in lines:
            self._line(len(line))
            if self._verdict is not None:
                self._carry = b""
                return
        # A line longer than the reader's limit is refused when its first ~limit bytes arrive,
        # whatever the count; a trailing CR may still be half of the CRLF.
        if len(self._carry) - self._carry.endswith(b"\r") > self._line_limit:
            self._verdict, self._carry = Verdict.TOO_LONG, b""

    def _line(self, content: int) -> None:
        # aiosmtpd's order: a line over the reader's limit (content > limit) is refused before it is
        # counted; otherwise it is counted, the size is checked, then its length (content + CRLF).
        if content > self._line_limit:
            self._verdict = Verdict.TOO_LONG
            return
        self._counted += content + 2
        if self._size_limit and self._counted > self._size_limit:
            self._verdict = Verdict.TOO_MUCH
        elif content + 2 > self._line_limit:
            self._verdict = Verdict.TOO_LONG


def unstuff(data: bytes) -> bytes:
    """RFC 5321 4.5.2: one leading dot off every line that has one."""
    if data.startswith(b"."):
        data = data[1:]  # cannot make a new line start: the first line is not ".\r\n" (the end)
    return data.replace(b"\r\n.", b"\r\n")


def _partial(tail: bytes) -> int:
    """How much of the end marker the bytes taken so far end with (0-4)."""
    for length in (4, 3, 2, 1):
        if tail.endswith(END[:length]):
            return length
    return 0


async def _next_piece(reader: asyncio.StreamReader, partial: int) -> bytes:
    # No read may go past the end marker (the next command stays in the reader):
    # - nothing of the marker pending: readuntil(END) finds it whole (the reader searches all it holds);
    # - at a line start: one byte; unless it is "." or CR no marker is pending after it;
    # - otherwise up to the next LF, which no marker can end after (the marker ends with LF).
    try:
        if partial == 0:
            return await reader.readuntil(END)
        if partial == 2:
            return await reader.readexactly(1)
        return await reader.readuntil(b"\n")
    except asyncio.LimitOverrunError as error:
        # The reader's limit (aiosmtpd sets it to line_length_limit) was passed: take what it searched.
        return await reader.read(error.consumed)


async def read_data(reader: asyncio.StreamReader, size_limit: int | None, line_limit: int) -> tuple[Verdict, bytes]:
    """Reads one DATA section through its end marker; returns aiosmtpd's verdict and the content.

    The end marker is searched as b"\\r\\n.\\r\\n" in the data with a CRLF put before it (the first
    line may be the "."). It can only be completed by the last byte of a piece (each piece ends
    where a search stopped), so the last bytes taken are compared after every piece. A "." (or
    ".\\r") that may begin the end marker is held back until the next piece says whether it does,
    so the account never counts the marker.
    """
    account = _Account(size_limit, line_limit)
    tail, held = b"\r\n", b""
    while True:
        piece = await _next_piece(reader, _partial(tail))
        tail = (tail + piece)[-5:]
        if tail == END:
            account.take((held + piece)[:-3])  # without the ".\r\n" line
            return account.result()
        pending = _partial(tail) - 2  # 1: tail is "\r\n.", 2: "\r\n.\r"
        data = held + piece
        if pending > 0:
            held = data[-pending:]
            data = data[:-pending]
        else:
            held = b""
        if data:
            account.take(data)
