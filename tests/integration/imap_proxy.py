"""A small IMAP proxy in front of the real Dovecot that misbehaves on purpose, as servers do.

- `drop_uids`: FETCH items carrying a body for these UIDs are left out of the answer (the server
  "forgets" a message); `drop_times` bounds how often (None: always).
- `refuse_uids`: a body UID FETCH whose set includes one of these UIDs is answered NO, the way
  Gmail answers "Some messages could not be FETCHed".
- `hide`: capabilities removed from every CAPABILITY list (e.g. QRESYNC, CONDSTORE), so the
  client takes its fallback.
- `commands`: every line the client sent, in order (to check what a step asked the server).
Everything else passes through unchanged, literals included.
"""
import asyncio
import re
from dataclasses import dataclass, field

_FETCH_ITEM = re.compile(rb"^\* \d+ FETCH \(.*?\bUID (\d+)\b.*\{(\d+)\}\r\n$")
_LITERAL = re.compile(rb"\{(\d+)\}\r\n$")
_UID_FETCH = re.compile(rb"^(\S+) UID FETCH (\S+) .*BODY\.PEEK\[\]", re.IGNORECASE)


def _uids(uid_set: bytes) -> set[int]:
    out = set()
    for part in uid_set.decode().split(","):
        low, _, high = part.partition(":")
        if high == "*" or low == "*":
            out.update(range(int(low if low != "*" else high), 100_000))
        else:
            out.update(range(int(low), int(high or low) + 1))
    return out


@dataclass
class ImapProxy:
    upstream: tuple[str, int]
    drop_uids: set[int] = field(default_factory=set)
    drop_times: int | None = None
    refuse_uids: set[int] = field(default_factory=set)
    hide: set[str] = field(default_factory=set)
    commands: list[bytes] = field(default_factory=list)
    dropped: int = 0
    refused: int = 0
    port: int = 0
    _server: asyncio.base_events.Server | None = None

    async def __aenter__(self) -> "ImapProxy":
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc) -> None:
        self._server.close()

    async def _serve(self, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        server_r, server_w = await asyncio.open_connection(*self.upstream)
        tasks = [asyncio.create_task(self._client_to_server(client_r, server_w, client_w)),
                 asyncio.create_task(self._server_to_client(server_r, client_w))]
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        for t in tasks:
            t.cancel()
        for w in (client_w, server_w):
            w.close()

    async def _client_to_server(self, reader, server_w, client_w) -> None:
        while line := await reader.readline():
            self.commands.append(line)
            m = _UID_FETCH.match(line)
            if m and self.refuse_uids & _uids(m.group(2)):
                self.refused += 1
                client_w.write(m.group(1) + b" NO [SERVERBUG] Some messages could not be FETCHed (Failure)\r\n")
                await client_w.drain()
                continue
            server_w.write(line)
            await server_w.drain()

    async def _server_to_client(self, reader, client_w) -> None:
        while line := await reader.readline():
            if b"CAPABILITY" in line and self.hide:
                for cap in self.hide:
                    line = re.sub(rb" " + re.escape(cap.encode()) + rb"(?=[ \]\r])", b"", line)
            m = _FETCH_ITEM.match(line)
            if m and int(m.group(1)) in self.drop_uids and (self.drop_times is None or self.dropped < self.drop_times):
                await reader.readexactly(int(m.group(2)))
                await reader.readline()  # the rest of the item after the literal
                self.dropped += 1
                continue
            client_w.write(line)
            if lit := _LITERAL.search(line):
                client_w.write(await reader.readexactly(int(lit.group(1))))
            await client_w.drain()
