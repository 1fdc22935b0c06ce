"""Fuzzing ingest's IMAP client with a hostile server: a scripted server on real TCP answers
correctly up to a chosen step of the sync dialogue (greeting, CAPABILITY, LOGIN, SELECT, UID SEARCH,
UID FETCH) and there sends garbage, a truncated literal, a 10 MB line, random bytes in the middle of
a FETCH, absurd numbers or a BYE; then it hangs up, or goes silent.

The client (open_session, select, uid_search, fetch_messages, then parse, as a folder pass does)
must either succeed or fail with an error that sync/diagnosis.py explains (not "unexpected"), and
never hang: every case has a deadline far above the client's own command timeout.
"""
import asyncio

import pytest
from hypothesis import given
from hypothesis import strategies as st

from maillink_ingest.imap.connection import abort_session, open_session, select, uid_search
from maillink_ingest.imap.fetch import fetch_messages
from maillink_ingest.sync.diagnosis import diagnose
from maillink_schemas.accounts import ImapEndpoint, Security
from maillink_schemas.accounts import StatusReason as R
from maillink_schemas.mime import parse
from tests.fuzzing import Tally, fuzz_settings
from tests.scripted_imap import ScriptedImap

CLIENT_TIMEOUT_S = 0.5   # the client's per-command timeout (production: 30 s)
HANG_S = 20.0            # a case still running after this is a hang
TEN_MB = 10 * 1024 * 1024
TALLY = Tally("fuzz-imap")
PHASES = ["greeting", "capability", "login", "select", "search", "fetch"]
MESSAGE = (b"From: jan@acme.cz\r\nTo: me@example.com\r\nSubject: hi\r\nMessage-ID: <m1@acme.cz>\r\n"
           b"Date: Tue, 24 Nov 2026 10:00:00 +0100\r\n\r\nhello\r\n")


def good(phase: str) -> list[bytes]:
    return {
        "greeting": [b"* OK [CAPABILITY IMAP4rev1 LITERAL+ UIDPLUS] fuzz ready"],
        "capability": [b"* CAPABILITY IMAP4rev1 LITERAL+ UIDPLUS", b"{tag} OK done"],
        "login": [b"{tag} OK [CAPABILITY IMAP4rev1 LITERAL+ UIDPLUS] logged in"],
        "select": [b"* FLAGS (\\Seen)", b"* 2 EXISTS", b"* OK [UIDVALIDITY 7] ok", b"* OK [UIDNEXT 3] ok",
                   b"{tag} OK [READ-WRITE] selected"],
        "search": [b"* SEARCH 1 2", b"{tag} OK done"],
        "fetch": [b'* 1 FETCH (UID 1 FLAGS (\\Seen) INTERNALDATE "24-Nov-2026 10:00:00 +0100" RFC822.SIZE %d '
                  b"BODY[] {%d}\r\n" % (len(MESSAGE), len(MESSAGE)) + MESSAGE + b")",
                  b'* 2 FETCH (UID 2 FLAGS () INTERNALDATE "24-Nov-2026 10:00:00 +0100" RFC822.SIZE %d '
                  b"BODY[] {%d}\r\n" % (len(MESSAGE), len(MESSAGE)) + MESSAGE + b")",
                  b"{tag} OK done"],
    }[phase]


def faults(phase: str):
    """What the server may send at `phase` instead of the right answer ({tag} is the command's tag)."""
    fetch_head = b"* 1 FETCH (UID 1 FLAGS () BODY[] {%d}\r\n"
    return st.one_of(
        st.binary(min_size=1, max_size=2000).map(lambda b: [b]),                                 # random bytes
        st.lists(st.binary(max_size=200).map(lambda b: b.replace(b"\r\n", b"") + b"\r\n"), min_size=1, max_size=20),
        st.integers(min_value=1, max_value=10**12).map(lambda n: [fetch_head % n + b"partial"]),   # truncated literal
        st.integers(min_value=0, max_value=len(good(phase)[0])).map(lambda n: [good(phase)[0][:n]]),  # cut short
        st.just([b"x" * TEN_MB]),                                                                 # a 10 MB line
        st.binary(max_size=300).map(lambda b: good("fetch")[:1] + [b"* 2 FETCH (UID 2 BODY[] {40}\r\n" + b]),  # mid-FETCH
        st.sampled_from([
            [b"* BYE server shutting down"], [b"{tag} NO [UNAVAILABLE] try later"], [b"{tag} BAD what?"],
            [b"* OK [UIDVALIDITY 99999999999999999999999999] x", b"* -1 EXISTS", b"{tag} OK x"],
            [b"* SEARCH 1 abc 2 -3 99999999999999999999999", b"{tag} OK"],
            [b"* 1 FETCH (UID abc FLAGS (\\Seen BODY[] NIL)", b"{tag} OK"],
            [b'* 1 FETCH (UID 1 INTERNALDATE "99-Xyz-0000 99:99:99 +9999" BODY[] {3}\r\nabc)', b"{tag} OK"],
            [b"* 1 FETCH (UID 1 BODY[] {3}\r\nabc)))))((((", b"{tag} OK"],
            [b"WRONGTAG OK done"], [b"{tag}"], [b"+ continue?"], [b"* CAPABILITY " + b"X " * 5000],
            [b"\x00\xff\r\n\r\n\r\n"],
        ]),
    )


def server(phase: str, fault: list[bytes], then: str) -> ScriptedImap:
    async def misbehave(session, tag=b"*", m=None):
        for chunk in fault:
            session.writer.write(chunk.replace(b"{tag}", tag))
        await session.writer.drain()
        if then == "hang up":
            session.writer.close()
        else:  # silent until the client leaves
            await session.reader.read()

    def answer(name):
        return (lambda session, tag, m: misbehave(session, tag, m)) if name == phase else good(name)

    greeting = misbehave if phase == "greeting" else good("greeting")[0]
    return ScriptedImap(greeting, [
        (r"CAPABILITY", answer("capability")), (r"LOGIN", answer("login")), (r"SELECT", answer("select")),
        (r"UID SEARCH", answer("search")), (r"UID FETCH", answer("fetch")), (r"LOGOUT", [b"* BYE", b"{tag} OK"]),
    ])


async def sync_dialogue(port: int, timeout: float = CLIENT_TIMEOUT_S) -> None:
    endpoint = ImapEndpoint(host="127.0.0.1", port=port, security=Security.PLAIN)
    client = await open_session(endpoint, "user@example.com", "secret", timeout=timeout)
    try:
        await select(client, "INBOX")
        uids = await uid_search(client, "ALL")
        for message in await fetch_messages(client, uids or [1]):
            parse(message.raw)
    finally:
        abort_session(client)


async def run_case(phase: str, fault: list[bytes], then: str) -> None:
    what = f"{phase} / {then}: {b''.join(fault)[:200]!r} ({sum(map(len, fault))} bytes)"
    async with server(phase, fault, then) as imap:
        dialogue = asyncio.ensure_future(sync_dialogue(imap.port))
        # asyncio.wait, not wait_for: a hang must be seen as one even if the client cannot be cancelled.
        done, _ = await asyncio.wait({dialogue}, timeout=HANG_S)
        if not done:
            dialogue.cancel()
            TALLY.record(f"HANG {what}", TimeoutError(f"still running after {HANG_S} s"))
            return
        exc = dialogue.exception()
        if exc is None:
            TALLY.record(what, None)  # the garbage happened to be readable: fine
        elif not isinstance(exc, Exception):  # SystemExit, KeyboardInterrupt...: a crash of the process
            TALLY.record(f"CRASH {what}", exc)
        else:
            _judge(what, exc)


def _judge(what: str, exc: BaseException) -> None:
    diagnosis = diagnose(exc)
    unclear = diagnosis.reason == R.UNEXPECTED
    TALLY.record(what, AssertionError(f"unclear failure {type(exc).__name__}: {exc}") if unclear else None)
    if unclear:
        TALLY.failures[-1] += f"\n  caused by {exc!r}"


@fuzz_settings(default=60)
@given(st.sampled_from(PHASES).flatmap(lambda p: st.tuples(st.just(p), faults(p))),
       st.sampled_from(["hang up", "silence"]))
async def test_fuzz_imap_responses(case, then):
    phase, fault = case
    await run_case(phase, fault, then)


async def test_a_10mb_line_at_every_step():
    """Always run, whatever hypothesis draws: the 10 MB line, unterminated and terminated, at each step."""
    for phase in PHASES:
        for fault in ([b"z" * TEN_MB], [b"* " + b"z" * TEN_MB + b"\r\n", b"{tag} OK"]):
            await run_case(phase, fault, "hang up")


async def test_a_well_behaved_server_syncs():
    """The control: with no fault the dialogue succeeds, so the failures above are the faults' doing."""
    async with server("none", [], "hang up") as imap:
        await asyncio.wait_for(sync_dialogue(imap.port, timeout=10), HANG_S)


async def test_a_server_silent_after_its_greeting_fails_in_time_and_clearly():
    """Regression: open_session waited forever for the answer to aioimaplib's CAPABILITY."""
    async with server("capability", [], "silence") as imap:
        dialogue = asyncio.ensure_future(sync_dialogue(imap.port))
        done, _ = await asyncio.wait({dialogue}, timeout=HANG_S)
        assert done, "open_session hung on a server that greets and then says nothing"
        assert diagnose(dialogue.exception()).reason == R.SERVER_UNREACHABLE


async def test_a_fetch_cut_off_by_the_server_is_diagnosed_as_unreachable():
    """Regression: aioimaplib's CommandTimeout was diagnosed as "something unexpected"."""
    async with server("fetch", [b"* 1 FETCH (UID 1 BODY[] {500}\r\npartial"], "hang up") as imap:
        with pytest.raises(Exception) as failed:
            await asyncio.wait_for(sync_dialogue(imap.port), HANG_S)
    assert diagnose(failed.value).reason == R.SERVER_UNREACHABLE


def test_fuzz_imap_verdict(capsys):
    TALLY.report(capsys)
