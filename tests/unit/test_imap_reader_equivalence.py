"""Our aioimaplib response reader (imap/fast_reader.py) against the stock one of aioimaplib 2.0.3.

The same server byte stream, cut into the same random chunks, is fed through `data_received` of
both protocols, each over a fake transport that records what the client writes. Commands are
issued exactly as the client issues them; each command's answer is cut at random (1 byte to
64 KiB), and a chunk never spans two answers (a server cannot answer what it has not received).
Everything observable must be identical: each response's result and lines (bytes vs bytearray
included), the IDLE queue pushes (they depend on where chunks end), what was written, the
protocol state, and every log message of aioimaplib's logger (DEBUG included).
"""
import asyncio
import contextlib
import logging
import sys

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from aioimaplib import aioimaplib as stock
from maillink_ingest.imap import fast_reader
from maillink_ingest.imap.fast_reader import FastFetchCommand, FastReaderProtocol

QUICK = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
BIG = settings(max_examples=2, deadline=None, suppress_health_check=[HealthCheck.too_slow])
# The stock reader is quadratic in a FETCH (the point of replacing it): 10,000 lines take it ~3 s.
HUGE = settings(BIG, max_examples=1)

# --- server answers ---------------------------------------------------------------------------

TRAPS = [b"\r\n", b"\r", b"\n", b"A3 OK looks tagged\r\n", b"* 9 EXISTS\r\n", b"(", b")", b"{12}\r\n",
         b" {3}", b"+ go ahead\r\n", b"* ", b"}", b"\x00\xff"]
body = st.lists(st.one_of(st.sampled_from(TRAPS), st.binary(max_size=64)), max_size=10).map(b"".join)
# up to 20 KB: literals that span chunks, and chunks that hold several literals
big_body = st.tuples(st.binary(min_size=1, max_size=64), st.integers(64, 320)).map(lambda t: t[0] * t[1])
push = st.sampled_from([b"* 7 EXISTS", b"* 0 RECENT", b"* 2 EXPUNGE", b"* VANISHED 5:6",
                        b"* VANISHED (EARLIER) 1:3", b"* 3 FETCH (UID 3 FLAGS (\\Seen))", b"* OK Still here"])
# A line ending in "}\n" before its CRLF still opens a literal upstream (`$` matches before a final \n).
odd = st.sampled_from([b"* OK [ALERT] odd {2}\n\r\nxx", b"* NO odd {0}"])
flags = st.sampled_from([b"", b"\\Seen", b"\\Seen \\Flagged", b"$Forwarded \\Answered"])
shape = st.sampled_from(["flags_first", "flags_last", "no_literal", "two_literals"])
fetched = st.tuples(shape, flags, st.one_of(body, body, big_body), body)
done = st.sampled_from([b"OK Completed.", b"OK Completed with a literal {3}\r\nabc",
                        b"NO [SERVERBUG] Some messages could not be fetched",
                        b"BAD Error in IMAP command: Invalid uidset"])


def fetch_line(seq: int, message) -> bytes:
    kind, fl, raw, extra = message
    if kind == "flags_first":
        return b"* %d FETCH (UID %d FLAGS (%s) BODY[] {%d}\r\n%s)\r\n" % (seq, seq + 100, fl, len(raw), raw)
    if kind == "flags_last":
        return b"* %d FETCH (UID %d BODY[] {%d}\r\n%s FLAGS (%s))\r\n" % (seq, seq + 100, len(raw), raw, fl)
    if kind == "no_literal":
        return b"* %d FETCH (UID %d FLAGS (%s))\r\n" % (seq, seq + 100, fl)
    return b"* %d FETCH (UID %d BODY[HEADER] {%d}\r\n%s BODY[TEXT] {%d}\r\n%s)\r\n" % (
        seq, seq + 100, len(raw), raw, len(extra), extra)


def fetch_stream(items: list) -> bytes:
    out = []
    for seq, item in enumerate(items, 1):
        out.append(item + b"\r\n" if isinstance(item, bytes) else fetch_line(seq, item))
    return b"".join(out)


# An exchange: its kind, how many tags the client draws, what the client starts (given its protocol),
# and what the server answers (given those tags): bytes, or a list of bursts, each cut on its own.
def fetch_exchange(items, end):
    return ("fetch", 1, lambda p: [p.fetch("1:*", "(UID FLAGS BODY.PEEK[])", by_uid=True)],
            lambda t: fetch_stream(items) + b"%s %s\r\n" % (t[0], end))


def fetch_with_noop_exchange(items, end):
    # Both async and pending at once: untagged pushes go to the NOOP, FETCH data to the FETCH.
    return ("fetch+noop", 2, lambda p: [p.fetch("1:*", "(UID FLAGS BODY.PEEK[])", by_uid=True),
                                        p.simple_command("NOOP")],
            lambda t: fetch_stream(items) + b"%s %s\r\n%s OK NOOP completed.\r\n" % (t[0], end, t[1]))


def noop_exchange(pushes):
    return ("noop", 1, lambda p: [p.simple_command("NOOP")],
            lambda t: b"".join(x + b"\r\n" for x in pushes) + b"%s OK NOOP completed.\r\n" % t[0])


def idle_exchange(bursts):
    # Pushes come in bursts (the server writes each as it happens); the client's DONE, then the tagged OK.
    return ("idle", 1, lambda p: [p.idle()],
            lambda t: [b"+ idling\r\n"] + [fetch_stream(items) for items in bursts] + [b"%s OK Idle completed.\r\n" % t[0]])


def list_exchange(count):
    folders = b"".join(b'* LIST (\\HasNoChildren) "/" "folder %d"\r\n' % i for i in range(count - 1))
    return ("list", 1, lambda p: [p.simple_command("LIST", '""', "*")],
            lambda t: folders + b'* LIST () "/" {5}\r\nH(llo\r\n%s OK List completed.\r\n' % t[0])


def search_exchange(uids):
    return ("search", 1, lambda p: [p.search("ALL", charset=None, by_uid=True)],
            lambda t: b"* SEARCH %s\r\n%s OK Search completed.\r\n" % (b" ".join(b"%d" % u for u in uids), t[0]))


PROLOGUE = [
    # the greeting makes the client send CAPABILITY (tag A0) by itself, answered in the next exchange
    ("greeting", 1, lambda p: [], lambda t: b"* OK [CAPABILITY IMAP4rev1 IDLE] Dovecot ready.\r\n"),
    ("capability", 0, lambda p: [], lambda t: b"* CAPABILITY IMAP4rev1 IDLE MOVE\r\nA0 OK Listed.\r\n"),
    ("login", 1, lambda p: [p.login("user", "secret")], lambda t: b"%s OK [CAPABILITY IMAP4rev1 IDLE] Logged in\r\n" % t[0]),
    ("select", 1, lambda p: [p.select("INBOX")], lambda t: (
        b"* FLAGS (\\Answered \\Seen)\r\n* OK [PERMANENTFLAGS (\\Answered \\*)] Limited\r\n* 3 EXISTS\r\n"
        b"* 0 RECENT\r\n* OK [UIDVALIDITY 123] UIDs valid\r\n* OK [UIDNEXT 4] Predicted next UID\r\n"
        b"%s OK [READ-WRITE] Select completed.\r\n" % t[0])),
]

fetch_items = st.lists(st.one_of(fetched, push, odd), min_size=1, max_size=12)
exchange = st.one_of(
    st.builds(fetch_exchange, fetch_items, done),
    st.builds(fetch_with_noop_exchange, fetch_items, done),
    st.builds(noop_exchange, st.lists(st.one_of(push, odd), max_size=5)),
    st.builds(idle_exchange, st.lists(st.lists(st.one_of(push, fetched), min_size=1, max_size=4), min_size=1, max_size=3)),
    st.builds(list_exchange, st.integers(1, 30)),
    st.builds(search_exchange, st.lists(st.integers(1, 10**6), max_size=50)),
)
cut_sizes = st.lists(st.one_of(st.integers(1, 16), st.integers(1, 1024), st.integers(1, 65536)), min_size=1, max_size=40)
# Long answers in 1-byte chunks would take minutes through the stock reader: the long-answer tests
# cut from 1 KiB up, which still puts a boundary in every kind of place in 10,000 lines.
big_cut_sizes = st.lists(st.integers(1024, 65536), min_size=1, max_size=40)

# --- driving a protocol -----------------------------------------------------------------------


class RecordingTransport(asyncio.Transport):
    def __init__(self):
        super().__init__()
        self.written = []

    def write(self, data):
        self.written.append(bytes(data))

    def is_closing(self):
        return False


class LogRecorder(logging.Handler):
    def __init__(self):
        super().__init__(logging.DEBUG)
        self.messages = []

    def emit(self, record):
        self.messages.append((record.levelname, record.getMessage()))


def cut(stream: bytes, sizes: list[int]) -> list[bytes]:
    chunks, pos, i = [], 0, 0
    while pos < len(stream):
        chunks.append(stream[pos:pos + sizes[i % len(sizes)]])
        pos += sizes[i % len(sizes)]
        i += 1
    return chunks


def typed(lines) -> list:
    return [(type(line).__name__, bytes(line)) for line in lines]


async def settle():
    for _ in range(10):
        await asyncio.sleep(0)


async def drive(protocol_class, exchanges, sizes) -> list:
    """Runs the exchanges through a protocol; returns everything observable, in order."""
    proto = protocol_class(asyncio.get_running_loop())
    proto.tagpre = "A"  # upstream draws a random tag prefix
    transport = RecordingTransport()
    proto.connection_made(transport)
    observed, tagnum = [], 0
    for kind, tags_used, start, answer in exchanges:
        tags = [b"A%d" % n for n in range(tagnum, tagnum + tags_used)]
        tagnum += tags_used
        tasks = [asyncio.ensure_future(coro) for coro in start(proto)]
        await settle()
        failure, bursts = None, answer(tags)
        for burst in [bursts] if isinstance(bursts, bytes) else bursts:
            for chunk in cut(burst, sizes):
                try:
                    proto.data_received(chunk)
                except Exception as exc:  # noqa: BLE001 - compared, not hidden
                    failure = failure or (type(exc).__name__, str(exc))
                    break
            await settle()
        results = []
        for task in tasks:
            if not task.done():
                task.cancel()
                results.append("still pending")
            elif task.exception() is not None:
                results.append(("raised", type(task.exception()).__name__, str(task.exception())))
            else:
                results.append((task.result().result, typed(task.result().lines)))
        pushes = []
        while not proto.idle_queue.empty():
            pushes.append(typed(proto.idle_queue.get_nowait()))
        observed.append((kind, failure, results, pushes, proto.state, sorted(proto.capabilities),
                         proto.incomplete_line, getattr(proto.current_command, "tag", None),
                         b"".join(transport.written)))
        transport.written.clear()
    await settle()
    return observed


@contextlib.contextmanager
def recursion_limit(limit: int):
    before = sys.getrecursionlimit()
    sys.setrecursionlimit(limit)
    try:
        yield
    finally:
        sys.setrecursionlimit(before)


@contextlib.contextmanager
def aioimaplib_log(level: int):
    logger, recorder = logging.getLogger(stock.__name__), LogRecorder()
    before = logger.level
    logger.setLevel(level)
    logger.addHandler(recorder)
    try:
        yield recorder.messages
    finally:
        logger.removeHandler(recorder)
        logger.setLevel(before)


def both(exchanges, sizes, log_level=logging.DEBUG):
    with aioimaplib_log(log_level) as stock_log, recursion_limit(200_000):  # stock recurses once per line
        stock_seen = asyncio.run(drive(stock.IMAP4ClientProtocol, exchanges, sizes))
    with aioimaplib_log(log_level) as our_log:
        ours_seen = asyncio.run(drive(FastReaderProtocol, exchanges, sizes))
    return (stock_seen, stock_log), (ours_seen, our_log)


# --- the properties ---------------------------------------------------------------------------


@QUICK
@given(st.lists(exchange, min_size=1, max_size=4), cut_sizes)
def test_same_responses_pushes_and_logs_as_stock_for_any_chunking(exchanges, sizes):
    (stock_seen, stock_log), (ours_seen, our_log) = both(PROLOGUE + exchanges, sizes)
    assert ours_seen == stock_seen
    assert our_log == stock_log


@BIG
@given(big_cut_sizes)
def test_a_list_of_10000_lines_as_stock(sizes):
    (stock_seen, _), (ours_seen, _) = both(PROLOGUE + [list_exchange(10_000)], sizes, logging.INFO)
    assert ours_seen == stock_seen
    # 9,999 folder lines, the line opening the literal, the literal, the tagged text
    assert len(ours_seen[-1][2][0][1]) == 10_002


@HUGE
@given(big_cut_sizes, body)
def test_a_fetch_of_10000_lines_as_stock(sizes, raw):
    items = [("flags_first", b"\\Seen", raw + b"%d" % i, b"") for i in range(3_333)] + [b"* 9 EXISTS"]
    (stock_seen, _), (ours_seen, _) = both(PROLOGUE + [fetch_exchange(items, b"OK Fetch completed.")], sizes,
                                           logging.INFO)
    assert ours_seen == stock_seen
    lines = ours_seen[-1][2][0][1]
    assert [kind for kind, _ in lines[:3]] == ["bytes", "bytearray", "bytes"]
    assert len(lines) == 3 * 3_333 + 1


def test_one_chunk_of_10000_lines_needs_no_recursion_headroom():
    exchanges = PROLOGUE + [list_exchange(10_000)]
    with recursion_limit(1000), aioimaplib_log(logging.INFO):
        ours_seen = asyncio.run(drive(FastReaderProtocol, exchanges, [1 << 30]))
        stock_seen = asyncio.run(drive(stock.IMAP4ClientProtocol, exchanges, [1 << 30]))
    assert stock_seen[-1][1][0] == "RecursionError"  # data_received raised: upstream issue #118
    assert ours_seen[-1][1] is None
    assert ours_seen[-1][2][0][0] == "OK"


@QUICK
@given(st.lists(st.one_of(st.sampled_from([b"1 FETCH (UID 1", b"2 FETCH (X", b"(", b")", b"))", b"a (b) c"]),
                          st.binary(max_size=8).map(bytearray)), max_size=30))
def test_fetch_wait_data_counts_incrementally_what_stock_rescans(lines):
    async def compare():
        ours, theirs = FastFetchCommand("A1", "1:*", "(BODY[])"), stock.FetchCommand("A1", "1:*", "(BODY[])")
        for line in lines:
            ours.append_to_resp(line)
            theirs.append_to_resp(line)
            assert ours.wait_data() == theirs.wait_data()
    asyncio.run(compare())


def test_fetch_keeps_one_timer_while_data_flows_and_times_out_after_a_quiet_timeout():
    async def run():
        loop = asyncio.get_running_loop()
        cmd = FastFetchCommand("A1", "1:*", "(BODY[])", loop=loop, timeout=30)
        armed = cmd._timer
        for i in range(1000):  # upstream cancels and re-creates its call_later here, once per line
            cmd.append_to_resp(b"%d FETCH (UID %d BODY[] {3}" % (i, i))
            cmd.begin_literal_data(3, b"abc")
            cmd.append_to_resp(b")")
        assert cmd._timer is armed and not armed.cancelled()
        # The timer fires while data came in less than `timeout` ago: it re-arms for the rest.
        cmd._last_data = loop.time() - 10
        cmd._timeout_callback()
        assert not cmd._event.is_set() and cmd._timer is not armed
        assert cmd._timer.when() == pytest.approx(cmd._last_data + 30)
        # Quiet for the whole timeout: the command ends as upstream's does, with CommandTimeout.
        cmd._last_data = loop.time() - 31
        cmd._timeout_callback()
        with pytest.raises(stock.CommandTimeout):
            await cmd.wait()
        assert cmd.response.result == "KO"

    asyncio.run(run())


class CountsFormatting(bytes):
    formatted = 0

    def __str__(self):
        CountsFormatting.formatted += 1
        return super().__str__()


@pytest.mark.parametrize("protocol_class, level, formatted", [
    (stock.IMAP4ClientProtocol, logging.INFO, True),  # what upstream does on every chunk
    (FastReaderProtocol, logging.INFO, False),
    (FastReaderProtocol, logging.DEBUG, True),
])
def test_chunks_are_formatted_for_the_log_only_when_debug_is_on(protocol_class, level, formatted):
    async def feed():
        proto = protocol_class(asyncio.get_running_loop())
        proto.connection_made(RecordingTransport())
        proto.state = stock.SELECTED
        proto.data_received(CountsFormatting(b"* 1 EXISTS\r\n"))

    CountsFormatting.formatted = 0
    with aioimaplib_log(level):
        asyncio.run(feed())
    assert (CountsFormatting.formatted > 0) == formatted  # pytest's own log capture may format it again


def test_refuses_any_other_aioimaplib_version():
    fast_reader.check_aioimaplib_version("2.0.3")
    with pytest.raises(fast_reader.UnsupportedAioimaplib, match="2.0.4"):
        fast_reader.check_aioimaplib_version("2.0.4")
