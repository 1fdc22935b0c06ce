"""A small scripted IMAP server on real TCP, for providers no test can reach (Gmail, Microsoft).

It replays recorded responses: each client command line is matched against the rules in order,
and the first match answers. An answer is a list of byte strings (`{tag}` is replaced by the
command's tag; a literal is just bytes with its `{n}` header) or an async callable that may also
read further client lines (SASL continuations). Everything the client sent is kept in `received`
so a test can check the exact bytes on the wire.
"""
import asyncio
import re
from collections.abc import Awaitable, Callable

Answer = list[bytes] | Callable[["Session", bytes, re.Match], Awaitable[None]]


class Session:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, received: list[bytes]) -> None:
        self.reader, self.writer, self.received = reader, writer, received

    async def read_line(self) -> bytes:
        line = await self.reader.readline()
        self.received.append(line)
        return line

    def write(self, *chunks: bytes, tag: bytes = b"") -> None:
        for chunk in chunks:
            self.writer.write(chunk.replace(b"{tag}", tag) + (b"" if chunk.endswith(b"\r\n") else b"\r\n"))


class ScriptedImap:
    """`greeting` is the first line, or an async callable given the session (the IMAP fuzzer sends
    garbage, or nothing, in its place)."""

    def __init__(self, greeting: bytes | Callable[[Session], Awaitable[None]], rules: list[tuple[str, Answer]]) -> None:
        self.greeting = greeting
        self.rules = [(re.compile(pattern.encode(), re.I), answer) for pattern, answer in rules]
        self.received: list[bytes] = []
        self.port = 0
        self._server: asyncio.Server | None = None

    async def __aenter__(self) -> "ScriptedImap":
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc) -> None:
        self._server.close()
        await self._server.wait_closed()

    def commands(self) -> list[bytes]:
        """The command lines received, without their tags."""
        return [line.split(b" ", 1)[1].rstrip(b"\r\n") for line in self.received if b" " in line]

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        session = Session(reader, writer, self.received)
        try:
            if callable(self.greeting):
                await self.greeting(session)
            else:
                session.write(self.greeting)
            while line := await session.read_line():
                tag, _, rest = line.rstrip(b"\r\n").partition(b" ")
                for pattern, answer in self.rules:
                    if m := pattern.match(rest):
                        if callable(answer):
                            await answer(session, tag, m)
                        else:
                            session.write(*answer, tag=tag)
                        break
                else:
                    session.write(b"{tag} BAD unknown command in this script", tag=tag)
                await writer.drain()
                if rest.upper().startswith(b"LOGOUT"):
                    break
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()
