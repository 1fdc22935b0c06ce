"""SASL XOAUTH2 against recorded provider dialogues, served over real TCP by a scripted server."""
import asyncio
import base64

import pytest
from cryptography.fernet import Fernet

from maillink_schemas.accounts import AccountConfigured, AuthMethod, ImapEndpoint, Security, StatusReason, SyncState
from maillink_schemas.base import utcnow

from maillink_ingest.adapters.crypto import CredentialsCipher
from maillink_ingest.imap.connection import open_session
from maillink_ingest.imap.errors import AuthenticationFailed, ServerUnreachable
from maillink_ingest.imap.oauth import TokenRejected, decode_challenge
from maillink_ingest.sync.account_sync import SyncDeps, run_account
from tests.scripted_imap import ScriptedImap
from tests.transcripts import auth as t

TOKEN = "ya29.a0AfB_byC-test-access-token"


def _sasl(user: str, token: str) -> bytes:
    return base64.b64encode(f"user={user}\x01auth=Bearer {token}\x01\x01".encode())


def gmail(auth_answer) -> ScriptedImap:
    return ScriptedImap(t.GMAIL_GREETING, [
        (r"CAPABILITY", t.capability(t.GMAIL_CAPS_PREAUTH)),
        (r"AUTHENTICATE XOAUTH2 (\S+)$", auth_answer),
        (r"ID ", [b'* ID ("name" "GImap")', b"{tag} OK Success"]),
        (r"LOGOUT", [b"* BYE LOGOUT Requested", b"{tag} OK 73 good day (Success)"]),
    ])


async def _open(server: ScriptedImap, user="alice@gmail.com", token=TOKEN):
    endpoint = ImapEndpoint(host="127.0.0.1", port=server.port, security=Security.PLAIN)
    return await open_session(endpoint, user, token, auth=AuthMethod.XOAUTH2, timeout=5)


async def test_gmail_success_sends_the_documented_sasl_string_and_reads_new_capabilities():
    async with gmail(t.GMAIL_AUTH_OK) as server:
        client = await _open(server)
        assert "X-GM-EXT-1" in client.protocol.capabilities and "MOVE" in client.protocol.capabilities
        await client.logout()
    sent = next(c for c in server.commands() if c.startswith(b"AUTHENTICATE"))
    assert sent == b"AUTHENTICATE XOAUTH2 " + _sasl("alice@gmail.com", TOKEN)


async def _gmail_refusal(session, tag, match, challenge=t.GMAIL_ERROR_CHALLENGE):
    session.write(challenge)
    await session.writer.drain()
    answer = await session.read_line()   # Google: the client must answer the challenge (an empty line)
    assert answer == b"\r\n"
    session.write(t.GMAIL_AUTH_NO, tag=tag)


async def test_gmail_base64_json_error_is_answered_and_becomes_token_rejected():
    async with gmail(_gmail_refusal) as server:
        with pytest.raises(TokenRejected, match="status 401"):
            await asyncio.wait_for(_open(server), 10)  # stock aioimaplib hangs here until its timeout
    assert b"\r\n" in server.received


async def test_googles_documented_example_challenge_decodes():
    assert decode_challenge(t.GMAIL_DOC_CHALLENGE) == {"status": "401", "schemes": "bearer mac",
                                                       "scope": "https://mail.google.com/"}
    assert decode_challenge(b"+ ") is None and decode_challenge(b"+ not base64!") is None


@pytest.mark.parametrize("answer,expected", [
    (t.MS_AUTH_OK, None),
    (t.MS_AUTH_NO, TokenRejected),
    (t.RFC5530_FAILED, TokenRejected),
    (t.RFC5530_UNAVAILABLE, ServerUnreachable),
])
async def test_microsoft_and_rfc5530_answers(answer, expected):
    server = ScriptedImap(t.MS_GREETING, [
        (r"CAPABILITY", t.capability(t.MS_CAPS)),
        (r"AUTHENTICATE XOAUTH2 ", answer),
        (r"LOGOUT", [b"* BYE Microsoft Exchange Server IMAP4 server signing off.", b"{tag} OK LOGOUT completed."]),
    ])
    async with server:
        if expected is None:
            client = await _open(server, "bob@contoso.com")
            await client.logout()
        else:
            with pytest.raises(expected) as caught:
                await _open(server, "bob@contoso.com")
            assert isinstance(caught.value, AuthenticationFailed) == (expected is TokenRejected)


async def test_without_sasl_ir_the_token_goes_on_the_first_continuation():
    async def two_step(session, tag, match):
        session.write(b"+ ")
        await session.writer.drain()
        assert (await session.read_line()).rstrip(b"\r\n") == _sasl("carol@example.com", TOKEN)
        session.write(b"{tag} OK Logged in", tag=tag)

    server = ScriptedImap(b"* OK ready", [
        (r"CAPABILITY", t.capability(b"* CAPABILITY IMAP4rev1 AUTH=XOAUTH2")),
        (r"AUTHENTICATE XOAUTH2$", two_step),
        (r"LOGOUT", [b"* BYE", b"{tag} OK bye"]),
    ])
    async with server:
        client = await _open(server, "carol@example.com")
        await client.logout()


async def test_a_token_with_a_control_character_is_never_sent():
    async with gmail(t.GMAIL_AUTH_OK) as server:
        with pytest.raises(AuthenticationFailed, match="control characters"):
            await _open(server, token="abc\x01user=mallory")
    assert not any(c.startswith(b"AUTHENTICATE") for c in server.commands())


async def test_an_expired_token_puts_the_account_in_needs_reauth():
    key = Fernet.generate_key().decode()
    cipher = CredentialsCipher(key)
    reports = []

    async def report(account, health):
        reports.append((health.state, health.reason, health.words))

    class Refusals:  # our own interface: the refusal store, in memory
        stored = []

        async def refusal(self, account):
            return None

        async def refused(self, account, reason, words):
            self.stored.append(reason)

        async def accepted(self, account_id):
            pass

    async with gmail(_gmail_refusal) as server:
        account = AccountConfigured(
            event_id="e", occurred_at=utcnow(), account_id="a-1", user_id="u-1", email="alice@gmail.com",
            imap=ImapEndpoint(host="127.0.0.1", port=server.port, security=Security.PLAIN), provider="gmail",
            username="alice@gmail.com", secret_ciphertext=cipher.encrypt(TOKEN), auth=AuthMethod.XOAUTH2)
        deps = SyncDeps(states=None, delivery=None, cipher=cipher, report=report, refusals=Refusals())
        await asyncio.wait_for(run_account(account, deps, asyncio.Event()), 10)  # returns: no retry storm
    assert reports[-1][:2] == (SyncState.NEEDS_REAUTH, StatusReason.TOKEN_EXPIRED)
    assert "OAuth access token" in reports[-1][2] and Refusals.stored == ["token_expired"]
    assert sum(1 for c in server.commands() if c.startswith(b"AUTHENTICATE")) == 1


async def test_netease_gets_imap_id_before_select():
    """NetEase (126/163/yeah.net) refuses SELECT with "Unsafe Login" until ID (RFC 2971) was sent."""
    identified = []

    async def on_id(session, tag, match):
        identified.append(match.group(0))
        session.write(b'* ID ("name" "Coremail Imap" "vendor" "Coremail")', b"{tag} OK ID completed", tag=tag)

    async def on_select(session, tag, match):
        if identified:
            session.write(b"* 0 EXISTS", b"* OK [UIDVALIDITY 1] UIDs valid", b"* OK [UIDNEXT 1] next",
                          b"{tag} OK [READ-WRITE] SELECT completed", tag=tag)
        else:
            session.write(b"{tag} NO SELECT Unsafe Login. Please contact kefu@188.com for help", tag=tag)

    from maillink_ingest.imap.connection import select
    from maillink_ingest.imap.errors import FolderMissing
    from maillink_schemas.providers import PROVIDERS

    for identify in (False, True):
        identified.clear()
        server = ScriptedImap(b"* OK Coremail System IMap Server Ready(163com[20141225])", [
            (r"CAPABILITY", t.capability(b"* CAPABILITY IMAP4rev1 XLIST SPECIAL-USE ID LITERAL+ STARTTLS "
                                         b"XAPPLEPUSHSERVICE UIDPLUS X-CM-EXT-1")),
            (r"LOGIN ", [b"{tag} OK LOGIN completed"]),
            (r"ID \(", on_id),
            (r"SELECT ", on_select),
            (r"LOGOUT", [b"* BYE IMAP4rev1 Server logging out", b"{tag} OK LOGOUT completed"]),
        ])
        async with server:
            endpoint = ImapEndpoint(host="127.0.0.1", port=server.port, security=Security.PLAIN)
            client = await open_session(endpoint, "someone@163.com", "authcode", timeout=5, identify=identify)
            if identify:
                assert (await select(client, "INBOX")).uidvalidity == 1
            else:
                with pytest.raises(FolderMissing):
                    await select(client, "INBOX")
            await client.logout()
    assert all(PROVIDERS[p].imap_id_required for p in ("126", "163", "yeah"))
