"""aioimaplib 2.0.3 with its response reader replaced: incremental, iterative, aware of literals.

aioimaplib stays the client (design card); only the code that turns received bytes into response
lines is replaced, here, by subclassing. Pinned to aioimaplib 2.0.3: the replacement mirrors that
version's private reader state (`incomplete_line`, `current_command`, `Command._expected_size`,
`Command._resp_literal_data`), so importing this module with any other version raises
`UnsupportedAioimaplib` and an upgrade is noticed. On an upgrade, re-read upstream's reader, then
rerun tests/unit/test_imap_reader_equivalence.py against the new version.

What 2.0.3 does wrong, and what replaces it:
- `IMAP4ClientProtocol._handle_responses` calls itself once per response line and copies the rest
  of the chunk at every step: quadratic in the chunk, and a RecursionError on a chunk of more than
  about 1000 short lines (upstream issue #118; the fixes in PRs #119 and #130 are unreleased).
  `FastReaderProtocol._handle_responses` is the same state machine as a loop over one buffer with
  an index: lines are cut with `find`, literals are taken as `memoryview` slices.
- `FetchCommand.wait_data` re-scans every buffered line, and joins them, each time a line
  arrives: quadratic in the FETCH size. `FastFetchCommand` keeps the parenthesis balance since the
  last `n FETCH (` line as lines are appended, which is what the scan computed.
- `data_received` formats every chunk for a debug log even with debug off; here only when the
  logger is enabled for DEBUG (same message, formatted lazily).
- `Command._reset_timer` cancels and re-creates the command's `call_later` timer on every line and
  literal: with a timeout set (ingest always sets one), that heap churn doubled the reader's cost
  on a large FETCH. `FastFetchCommand` keeps one timer and notes the time of the last data; when
  the timer fires early it re-arms for the rest. Same rule: the command times out after `timeout`
  seconds without data.

Everything observable is unchanged, including what depends on chunk boundaries: `Response.lines`
(lines as `bytes`, literals as `bytearray`, which imap/fetch.py relies on), tagged results, where
untagged responses go, and the IDLE buffer flushed to `idle_queue` whenever a chunk ends on a
line boundary. The equivalence is a property test over random chunkings of the same byte stream.
"""
import asyncio
import logging
import ssl
from importlib.metadata import version
from typing import Callable, Optional

import aioimaplib
from aioimaplib.aioimaplib import CRLF, Command, FetchCommand, IncompleteRead, literal_data_re, log

PINNED_AIOIMAPLIB = "2.0.3"


class UnsupportedAioimaplib(RuntimeError):
    pass


def check_aioimaplib_version(installed: str | None = None) -> None:
    installed = installed or version("aioimaplib")
    if installed != PINNED_AIOIMAPLIB:
        raise UnsupportedAioimaplib(
            f"maillink_ingest.imap.fast_reader replaces the response reader of aioimaplib {PINNED_AIOIMAPLIB}, "
            f"but aioimaplib {installed} is installed. Check the new version's reader (and whether upstream "
            f"issue #118 / PRs #119, #130 landed), then update this module and its equivalence test.")


check_aioimaplib_version()  # on import: ingest does not start on an aioimaplib this reader was not proven against


class FastFetchCommand(FetchCommand):
    """FetchCommand whose `wait_data` is O(1): the balance of '(' over ')' in the `bytes` lines since
    the last line starting with `n FETCH (` (or since the first line), kept up to date on append."""

    def __init__(self, *args, **kwargs) -> None:
        self._paren_balance = 0
        self._last_data = 0.0
        super().__init__(*args, **kwargs)

    def _set_timer(self) -> None:
        if self._timeout is not None:
            self._last_data = self._loop.time()
            self._timer = self._loop.call_later(self._timeout, self._timeout_callback)

    def _reset_timer(self) -> None:
        self._last_data = self._loop.time()  # the pending timer checks this when it fires

    def _timeout_callback(self) -> None:
        quiet_for = self._loop.time() - self._last_data
        if quiet_for < self._timeout:
            self._timer = self._loop.call_at(self._last_data + self._timeout, self._timeout_callback)
            return
        super()._timeout_callback()

    def append_to_resp(self, line: bytes, result: str = 'Pending') -> None:
        super().append_to_resp(line, result)
        if isinstance(line, bytes):  # literals arrive as bytearray and are not counted, as upstream
            balance = line.count(b'(') - line.count(b')')
            if self.FETCH_MESSAGE_DATA_RE.match(line):
                self._paren_balance = balance
            else:
                self._paren_balance += balance

    def wait_data(self) -> bool:
        return self._paren_balance != 0


def _opens_literal(line: bytes) -> Optional[int]:
    # literal_data_re ends in `\}$`, and `$` also matches before a final '\n': check the cheap way first.
    if line.endswith(b'}') or line.endswith(b'}\n'):
        match = literal_data_re.match(line)
        if match:
            return int(match.group('size'))
    return None


class FastReaderProtocol(aioimaplib.IMAP4ClientProtocol):

    def data_received(self, d: bytes) -> None:
        if log.isEnabledFor(logging.DEBUG):
            log.debug('Received : %s', d)
        try:
            self._handle_responses(self.incomplete_line + d, self._handle_line, self.current_command)
            self.incomplete_line = b''
            self.current_command = None
        except IncompleteRead as incomplete_read:
            self.current_command = incomplete_read.cmd
            self.incomplete_line = incomplete_read.data

    def _handle_responses(self, data: bytes, line_handler: Callable[[bytes, Command], Optional[Command]],
                          current_cmd: Command = None) -> None:
        """Upstream's recursion, step for step, as a loop: each `continue` is one of its recursive calls."""
        pos, end, view = 0, len(data), None
        while True:
            if pos == end:
                if self.pending_sync_command is not None:
                    self.pending_sync_command.flush()  # IDLE: what arrived so far goes to idle_queue
                if current_cmd is not None and current_cmd.wait_data():
                    raise IncompleteRead(current_cmd)
                return

            if current_cmd is not None and current_cmd.wait_literal_data():
                missing = current_cmd._expected_size - len(current_cmd._resp_literal_data)
                take = min(missing, end - pos)
                view = view if view is not None else memoryview(data)
                current_cmd.append_literal_data(view[pos:pos + take])  # appends the bytearray when complete
                pos += take
                if current_cmd.wait_literal_data():
                    raise IncompleteRead(current_cmd)

            eol = data.find(CRLF, pos)
            if eol < 0:
                raise IncompleteRead(current_cmd, data[pos:])
            line = data[pos:eol]
            pos = eol + 2

            cmd = line_handler(line, current_cmd)

            size = _opens_literal(line)
            if size is not None:
                if cmd is None:
                    cmd = Command('NIL', 'unused')  # upstream swallows a literal nobody waits for
                cmd.begin_literal_data(size)
                current_cmd = cmd
            elif cmd is not None and cmd.wait_data():
                current_cmd = cmd
            else:
                current_cmd = None

    async def fetch(self, message_set: str, message_parts: str, by_uid: bool = False,
                    timeout: float = None) -> aioimaplib.Response:
        return await self.execute(
            FastFetchCommand(self.new_tag(), message_set, message_parts,
                             prefix='UID' if by_uid else '', loop=self.loop, timeout=timeout))


class FastIMAP4(aioimaplib.IMAP4):
    def create_client(self, host: str, port: int, loop: asyncio.AbstractEventLoop,
                      conn_lost_cb: Callable[[Optional[Exception]], None] = None,
                      ssl_context: ssl.SSLContext = None) -> None:
        # IMAP4.create_client of 2.0.3, with our protocol.
        local_loop = loop if loop is not None else asyncio.get_running_loop()
        self.protocol = FastReaderProtocol(local_loop, conn_lost_cb)
        self._client_task = local_loop.create_task(
            local_loop.create_connection(lambda: self.protocol, host, port, ssl=ssl_context))


class FastIMAP4_SSL(aioimaplib.IMAP4_SSL, FastIMAP4):
    """IMAP4_SSL (its default TLS context) over FastIMAP4.create_client, by the MRO."""
