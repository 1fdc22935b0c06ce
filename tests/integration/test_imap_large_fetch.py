"""One UID FETCH of thousands of small messages through open_session, against the real Dovecot.

Before imap/fast_reader.py, aioimaplib's reader recursed once per response line of a network chunk:
a loopback read of up to 256 KiB of small messages is thousands of lines, past the default recursion
limit. The RecursionError closed the connection, and since it struck while the command's timer was
being re-armed, the FETCH then waited forever (measured here with the stock client).
"""
import asyncio
import imaplib

import pytest

from maillink_ingest.imap.connection import close_session, open_session, select
from maillink_ingest.imap.fast_reader import FastReaderProtocol
from maillink_ingest.imap.fetch import fetch_messages
from maillink_schemas.accounts import ImapEndpoint, Security
from tests.conftest import IMAP_HOST, IMAP_PORT

pytestmark = pytest.mark.integration
COUNT = 3_000


def append_in_one_command(email: str, password: str, raws: list[bytes]) -> None:
    """One APPEND of every message (MULTIAPPEND, RFC 3502) with non-synchronizing literals (LITERAL+,
    RFC 7888), both Dovecot's: one round trip, where one APPEND per message takes Dovecot ~10 s here."""
    conn = imaplib.IMAP4(IMAP_HOST, IMAP_PORT)
    try:
        conn.login(email, password)
        conn.send(b"".join([b"L1 APPEND INBOX", *(b" {%d+}\r\n%s" % (len(raw), raw) for raw in raws), b"\r\n"]))
        while not (line := conn.readline()).startswith(b"L1 "):
            assert line, "connection closed during APPEND"
        assert line.startswith(b"L1 OK"), line
    finally:
        conn.logout()


async def test_one_uid_fetch_of_3000_small_messages_returns_every_message(mailbox):
    email, password = mailbox
    raws = [f"From: jan@acme.cz\r\nTo: {email}\r\nSubject: small {i}\r\nDate: Fri, 27 Nov 2026 08:00:00 +0000\r\n"
            f"Message-ID: <small-{i}@acme.cz>\r\n\r\nhi {i}\r\n".encode() for i in range(COUNT)]
    append_in_one_command(email, password, raws)

    client = await open_session(ImapEndpoint(host=IMAP_HOST, port=IMAP_PORT, security=Security.PLAIN), email, password)
    try:
        assert isinstance(client.protocol, FastReaderProtocol)
        assert (await select(client, "INBOX")).exists == COUNT
        # "1:3000": a single UID FETCH. The bound only turns the old reader's hang into a failure.
        fetched = await asyncio.wait_for(fetch_messages(client, list(range(1, COUNT + 1))), 120)
    finally:
        await close_session(client)

    assert [f.uid for f in sorted(fetched, key=lambda f: f.uid)] == list(range(1, COUNT + 1))
    assert sorted(f.raw for f in fetched) == sorted(raws)
