"""Fuzzing the Smart Bcc gateway's SMTP input over real TCP: sessions of garbage commands, huge
lines, bad addresses, broken DATA (bare LF, lone dots, NUL, 8-bit, cut short) and pipelining
abuse, sent by a raw socket client to the gateway running as a process.

Every command line the client completes must get a well-formed SMTP reply (a 3-digit code) within
a deadline, or the server may end the session after a 4xx/5xx reply; after every session a fresh
connection must still be greeted and served. At the end the process is alive and healthy.
"""
import asyncio
import re

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.fuzzing import Tally, fuzz_settings
from tests.integration.test_bcc_gateway import dns_server, gateway, mailbox_user  # noqa: F401 - fixtures
from tests.integration.test_bcc_gateway import message

pytestmark = pytest.mark.integration
REPLY_S = 20.0   # a completed command with no reply after this is a hang
REPLY = re.compile(rb"^([2-5]\d\d)([ -])(.*)$")
TALLY = Tally("fuzz-smtp")
SENDERS = [b"alice@good.test", b"carol@spoofed.test", b"", b"<>", b"not an address", b"a@b@c", b"\xff@x.test",
           b"x" * 600 + b"@good.test", b"alice@good.test> SIZE=99999999999", b"alice@good.test\x00evil"]


def garbage_line():
    return st.binary(max_size=300).map(lambda b: b.replace(b"\n", b"").replace(b"\r", b"") + b"\r\n")


def command(recipient: bytes):
    address = st.sampled_from(SENDERS + [recipient, recipient.upper(), b"+" + recipient])
    return st.one_of(
        garbage_line(),
        st.sampled_from([b"EHLO", b"HELO", b"LHLO", b"ehlo"]).flatmap(
            lambda verb: st.binary(max_size=80).map(lambda arg: verb + b" " + arg.replace(b"\r", b"").replace(b"\n", b"") + b"\r\n")),
        address.map(lambda a: b"MAIL FROM:<" + a + b">\r\n"),
        address.map(lambda a: b"RCPT TO:<" + a + b">\r\n"),
        address.map(lambda a: b"MAIL FROM:" + a + b"\r\n"),
        st.sampled_from([b"DATA\r\n", b"RSET\r\n", b"NOOP\r\n", b"VRFY root\r\n", b"EXPN all\r\n", b"HELP\r\n",
                         b"AUTH PLAIN AGFsaWNlAHNlY3JldA==\r\n", b"AUTH LOGIN\r\n", b"BDAT 10 LAST\r\n",
                         b"STARTTLS garbage\r\n", b"\r\n", b"MAIL FROM:<alice@good.test> BODY=BINARYMIME SMTPUTF8\r\n",
                         b"RCPT TO:<@relay.example:someone@elsewhere.example>\r\n",
                         b"NOOP " + b"A" * 100_000 + b"\r\n", b"MAIL FROM:<" + b"a" * 2_000_000 + b"@good.test>\r\n"]),
    )


@st.composite
def data_body(draw) -> bytes:
    parts = draw(st.lists(st.one_of(
        st.binary(max_size=400), st.sampled_from([b"\n.\n", b"\r\n..\r\n", b".\r\n", b"\x00", b"\r", b"\n",
                                                  b"\xff\xfe", b"From: \xff\r\n\r\n"]),
        st.just(message("alice@good.test", "fuzz")), st.just(b"A" * 50_000)), max_size=8))
    # Broken terminators may come inside; the real one always ends the body (a body without it is
    # rightly waited for, and the session would only time out).
    return b"".join(parts) + b"\r\n.\r\n"


class Closed(Exception):
    pass


async def reply(reader: asyncio.StreamReader) -> list[bytes]:
    lines = []
    while True:
        line = await asyncio.wait_for(reader.readline(), REPLY_S)
        if not line:
            raise Closed(lines)
        match = REPLY.match(line.rstrip(b"\r\n"))
        assert match, f"not an SMTP reply: {line[:200]!r}"
        lines.append(line)
        if match.group(2) == b" ":
            return lines


async def session(port: int, steps: list[bytes]) -> list[bytes]:
    """Runs the steps; returns the codes received. A DATA body follows a 354 only."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port, limit=2**22)
    codes = []
    try:
        greeting = await reply(reader)
        assert greeting[-1].startswith(b"220"), greeting
        pending_body = None
        for step in steps:
            if isinstance(step, tuple):  # ("DATA", body): the body goes only where the server asked for it
                pending_body = step[1]
                step = b"DATA\r\n"
            writer.write(step)
            await writer.drain()
            try:
                answer = await reply(reader)
            except Closed as closed:
                last = closed.args[0][-1][:1] if closed.args[0] else b""
                # Closing the session is the server's right after a QUIT or an error reply it sent.
                assert last in (b"4", b"5", b"2") or step.upper().startswith(b"QUIT"), f"closed without a reply to {step[:80]!r}"
                return codes
            codes.append(answer[-1][:3])
            if answer[-1].startswith(b"354"):  # a bare DATA command gets an empty message
                try:
                    writer.write(pending_body if pending_body is not None else b".\r\n")
                    await writer.drain()
                except ConnectionError:
                    pass  # the server may refuse a body mid-way; what it said is read next
                try:
                    codes.append((await reply(reader))[-1][:3])
                except Closed as closed:
                    said = closed.args[0][-1][:1] if closed.args[0] else b""
                    assert said in (b"4", b"5"), "the server dropped a DATA body without an error reply"
                    return codes
            pending_body = None
        writer.write(b"QUIT\r\n")
        await writer.drain()
        try:
            await reply(reader)
        except Closed:
            pass
    finally:
        writer.close()
    return codes


async def still_serving(port: int) -> None:
    codes = await session(port, [b"EHLO check.test\r\n", b"NOOP\r\n"])
    assert codes == [b"250", b"250"], codes


@st.composite
def smtp_session(draw, recipient: bytes):
    steps = draw(st.lists(st.one_of(command(recipient), data_body().map(lambda body: ("DATA", body))), max_size=10))
    if draw(st.booleans()):  # most sessions start politely, so the later steps reach the deeper states
        steps = [b"EHLO fuzz.test\r\n", b"MAIL FROM:<alice@good.test>\r\n", b"RCPT TO:<" + recipient + b">\r\n"] + steps
    return steps


def test_fuzz_smtp_sessions(gateway):
    recipient = gateway.address.encode()

    @fuzz_settings(default=100)
    @given(smtp_session(recipient))
    def run(steps):
        try:
            asyncio.run(asyncio.wait_for(_case(gateway.smtp_port, steps), 3 * REPLY_S * (len(steps) + 3)))
        except Exception as exc:  # noqa: BLE001 - counted, shown at the end
            TALLY.record(repr([s if isinstance(s, bytes) else s[1] for s in steps])[:400], exc)
        else:
            TALLY.record("", None)

    run()
    assert gateway.procs.running["bcc_gateway"].process.poll() is None, "the gateway process died"
    assert httpx.get(f"{gateway.url}/healthz", timeout=10).status_code == 200


async def _case(port: int, steps) -> None:
    await session(port, steps)
    await still_serving(port)


def test_fuzz_smtp_verdict(capsys):
    TALLY.report(capsys)
