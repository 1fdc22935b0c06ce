"""The gateway's DATA reader (entrypoints/smtp_data.read_data in GatewaySMTP.smtp_DATA) against
stock aiosmtpd's: the same byte streams give the same content and the same replies.

Both servers run in this process on loopback TCP with a handler that records what DATA delivered;
a raw socket client sends a whole pipelined session (EHLO, MAIL, RCPT, DATA, the stream, then a
NOOP and QUIT, so any bytes the reader took past the end marker, or left unread, show in the
replies). Streams are generated with random dot-stuffing, bare CR and LF, lone "." and ".." lines,
long lines around aiosmtpd's 1001-byte limit, and size limits at, below and above the data's size.
The reader is also fed directly in random pieces, to check it never reads past the end marker.
"""
import asyncio

import pytest
from aiosmtpd.smtp import SMTP
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from maillink_bcc_gateway.entrypoints.smtp import GatewaySMTP
from maillink_bcc_gateway.entrypoints.smtp_data import Verdict, read_data, unstuff

LINE_LIMIT = SMTP.line_length_limit  # 1001: aiosmtpd's reader limit and its line check


class _Recorder:
    def __init__(self) -> None:
        self.contents: list[bytes] = []

    async def handle_DATA(self, server, session, envelope) -> str:
        self.contents.append(envelope.original_content)
        assert envelope.content == envelope.original_content  # decode_data=False: bytes as read
        return "250 OK"


async def _session(server_class: type[SMTP], stream: bytes, size_limit: int | None) -> tuple[bytes, list[bytes]]:
    recorder = _Recorder()
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: server_class(recorder, data_size_limit=size_limit), "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"EHLO client.test\r\nMAIL FROM:<a@b.test>\r\nRCPT TO:<c@d.test>\r\nDATA\r\n" + stream
                     + b"NOOP\r\nQUIT\r\n")
        await writer.drain()
        replies = await asyncio.wait_for(reader.read(), 10)  # until the server closes after QUIT
        writer.close()
    finally:
        server.close()
        await server.wait_closed()
    return replies, recorder.contents


def _compare(stream: bytes, size_limit: int | None) -> tuple[bytes, list[bytes]]:
    async def both():
        return await _session(SMTP, stream, size_limit), await _session(GatewaySMTP, stream, size_limit)
    stock, ours = asyncio.run(both())
    assert ours == stock
    return stock


LINE_TEXT = st.one_of(
    st.binary(max_size=40),
    st.sampled_from([b"", b".", b"..", b"..x", b".x", b"\r", b"\n", b"\r\r", b"x\ry", b"x\ny", b".\r", b".\n",
                     b"\n.", b"\r.", b"\xff\xfe", b"From: alice@good.test", b" "]),
    st.integers(990, 1010).map(lambda n: b"y" * n),            # around aiosmtpd's line limit
    st.integers(1011, 3000).map(lambda n: b"z" * n),           # over the reader's limit
    st.integers(990, 1005).map(lambda n: b"." + b"w" * n),
)


@st.composite
def data_stream(draw) -> tuple[bytes, bytes]:
    """(stream as sent, the content a stuffing client meant): lines, each stuffed or not."""
    lines = draw(st.lists(LINE_TEXT, max_size=12))
    sent = []
    for line in lines:
        stuff = line.startswith(b".") and draw(st.booleans())  # an unstuffed "." line is sent as is too
        sent.append((b"." if stuff else b"") + line + b"\r\n")
    return b"".join(sent), b""


@st.composite
def session_case(draw) -> tuple[bytes, int | None]:
    data, _ = draw(data_stream())
    size = len(data)
    limit = draw(st.one_of(st.none(), st.sampled_from([1, 10, 500, 2000, 32 * 2**20]),
                           st.integers(-4, 4).map(lambda d: max(1, size + d)),
                           st.integers(1, max(1, size))))  # crossed inside the data: which reply wins
    # Every tail holds an end marker (a line that is just "."), or the session would wait for one.
    tail = draw(st.sampled_from([b".\r\n", b".\r\n", b"\n.\r\n.\r\n", b".\r\n.\r\n", b"..\r\n.\r\n", b"\r.\r\n.\r\n"]))
    return data + tail, limit


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(session_case())
def test_same_content_and_replies_as_aiosmtpd(case):
    stream, limit = case
    _compare(stream, limit)


FIXED = [
    (b".\r\n", None),                                  # empty message
    (b"..\r\n.\r\n", None),                            # a line that is one dot
    (b"..x\r\n.x\r\nx.\r\n\r\n.\r\n", None),          # stuffed, unstuffed, trailing dot, empty line
    (b"a\rb\nc\r\n.\n.\r\n.\r\n", None),                   # bare CR and LF are line content
    (b"\r\r\r\n\r\n.\r\n", None),
    (b"x" * 999 + b"\r\n.\r\n", None),                 # 1001 with CRLF: accepted
    (b"x" * 1000 + b"\r\n.\r\n", None),                # 1002: 500 (line check)
    (b"x" * 1002 + b"\r\n.\r\n", None),                # reader limit passed: 500
    (b"x" * 5000 + b"\r\n.\r\n", 100),                 # long line first: 500, not 552
    (b"abc\r\n" * 30 + b"x" * 1000 + b"\r\n.\r\n", 120),  # over size before the long line: 552
    (b"abc\r\n" * 20 + b".\r\n", 100),                 # exactly the limit: accepted
    (b"abc\r\n" * 20 + b".\r\n", 99),                  # one over: 552
    (b"..\r\n" * 25 + b".\r\n", 100),                  # stuffed bytes count
    (b"x" * 1000 + b"\r\n" + b"abc\r\n" * 30 + b".\r\n", 1100),  # long line, then over size: 500
    (b"x" * 1002 + b"\r\n.\r\n", 500),               # over the reader's limit: 500 before counting
    (b"x" * 1001 + b"\r\n.\r\n", 500),               # within it: counted first, 552
    (b"x" * 1001 + b"\r\n.\r\n", 2000),              # within size: 500
    (b"hello\r\n.\r\nMAIL FROM:<x@y.test>\r\n", None),  # bytes after the end are the next command
]


@pytest.mark.parametrize("stream,limit", FIXED)
def test_fixed_streams_as_aiosmtpd(stream, limit):
    replies, contents = _compare(stream, limit)
    assert replies.startswith(b"220 ")


def test_fixed_streams_mean_what_they_say():
    # The comparison above could pass with both wrong; pin a few outcomes aiosmtpd documents.
    replies, contents = _compare(b"..x\r\n.\r\n", None)
    assert contents == [b".x\r\n"] and b"250 OK" in replies
    replies, contents = _compare(b"abc\r\n" * 20 + b".\r\n", 99)
    assert contents == [] and b"552 Error: Too much mail data" in replies
    replies, contents = _compare(b"x" * 5000 + b"\r\n.\r\n", 100)
    assert contents == [] and b"500 Line too long" in replies
    replies, contents = _compare(b"x" * 1001 + b"\r\n.\r\n", 500)
    assert contents == [] and b"552 Error" in replies and b"500 Line" not in replies


async def _read_in_pieces(stream: bytes, cuts: list[int], limit: int | None) -> tuple[Verdict, bytes, bytes]:
    reader = asyncio.StreamReader(limit=LINE_LIMIT)
    task = asyncio.create_task(read_data(reader, limit, LINE_LIMIT))
    start = 0
    for cut in sorted(set(cuts)) + [len(stream)]:
        reader.feed_data(stream[start:cut])
        start = cut
        for _ in range(3):
            await asyncio.sleep(0)  # let the reader consume what has arrived so far
    verdict, content = await task
    reader.feed_eof()
    return verdict, content, await reader.read()


@settings(max_examples=400, deadline=None)
@given(session_case(), st.lists(st.integers(0, 8000), max_size=10))
def test_reader_in_pieces_never_reads_past_the_end(case, cuts):
    stream, limit = case
    after = b"NOOP\r\n"
    verdict, content, left = asyncio.run(_read_in_pieces(stream + after, [c for c in cuts if c < len(stream)], limit))
    # The end is the first line that is exactly "." (the data put after a CRLF).
    end = (b"\r\n" + stream).find(b"\r\n.\r\n")
    assert left == stream[end + 3:] + after
    whole = asyncio.run(_read_in_pieces(stream + after, [], limit))
    assert (verdict, content) == whole[:2]  # how the bytes arrive changes nothing
    if verdict is Verdict.OK:
        assert content == unstuff(stream[:end])


def test_unstuff():
    assert unstuff(b"") == b""
    assert unstuff(b"..\r\n") == b".\r\n"
    assert unstuff(b".a\r\n..b\r\nc.\r\n.\r\r\n") == b"a\r\n.b\r\nc.\r\n\r\r\n"


async def test_the_gateway_session_keeps_bytes_and_refuses_decoded_text() -> None:
    # smtp_DATA has no text branch: the key, DKIM and the blob hash need the bytes as sent.
    with pytest.raises(ValueError, match="decode_data"):
        GatewaySMTP(_Recorder(), decode_data=True)
    assert GatewaySMTP(_Recorder())._decode_data is False
