"""Smart Bcc gateway against real servers: the gateway runs as a process on the real broker and
store, a private dnsmasq serves the test SPF/DKIM/DMARC records, and swaks is the SMTP client."""
import asyncio
import hashlib
import re
import time
import uuid
from email.utils import format_datetime
from datetime import datetime, timezone

import httpx
import pytest

from maillink_bcc_gateway.domain.recipients import company_address, deal_address
from maillink_devtools.bcc_harness import dkim_key, free_port, start_dns, swaks
from maillink_devtools.kafka_tools import produce, read_topic, wait_group_caught_up
from maillink_devtools.processes import ServiceSet
from maillink_runtime.blobs import open_blob_store
from maillink_schemas.base import utcnow
from maillink_schemas.bcc import UserAddressesVerified
from maillink_schemas.crm import UserUpserted
from maillink_schemas.mail import MessageReceived
from maillink_schemas.outbound import SendRequested
from tests.conftest import KAFKA, MONGODB_URL, bearer, drop_namespace, promtool_check_metrics

pytestmark = pytest.mark.integration
DOMAIN = "bcc.maillink.test"
MAX_BYTES = 1_000_000  # the limit is a setting (20 MB by default); a small one keeps the test light
USERS = {  # user -> (company, login address)
    "u-alice": ("c-1", "alice@good.test"),
    "u-bob": ("c-1", "bob@signed.test"),
    "u-carol": ("c-1", "carol@spoofed.test"),
    "u-dave": ("c-2", "dave@good.test"),
    "u-erin": ("c-1", "erin@unserved.example"),  # a domain the test DNS refuses to answer for
}


class Gateway:
    def __init__(self, namespace, smtp_port, url, blob_dir, tmp, env):
        self.namespace, self.smtp_port, self.url, self.blob_dir, self.tmp, self.env = \
            namespace, smtp_port, url, blob_dir, tmp, env
        self.address = company_address("c-1", DOMAIN)

    def topic(self, name: str) -> str:
        return f"{self.namespace}{name}"

    def send(self, mail_from: str, data: bytes | None = None, to: str | None = None, **kw):
        return swaks(self.smtp_port, mail_from, to or self.address, data, tmp_dir=self.tmp, **kw)


def message(sender: str, subject: str, body: str = "Hello, pricing attached.", to: str = "jan@acme.test",
            extra: str = "") -> bytes:
    date = format_datetime(datetime(2026, 11, 26, 10, 0, tzinfo=timezone.utc))
    return (f"From: {sender}\r\nTo: {to}\r\nSubject: {subject}\r\nDate: {date}\r\n"
            f"Message-ID: <{uuid.uuid4().hex}@{sender.split('@')[1]}>\r\n{extra}MIME-Version: 1.0\r\n"
            f"Content-Type: text/plain; charset=utf-8\r\n\r\n{body}\r\n").encode()


async def received(gateway: Gateway, subject: str, timeout: float = 30) -> MessageReceived:
    deadline = time.monotonic() + timeout
    while True:
        records = await read_topic(KAFKA, gateway.topic("mail.message.received.v1"), timeout=3)
        found = [MessageReceived.model_validate_json(r.value) for r in records]
        found = [e for e in found if e.envelope.subject == subject]
        if found or time.monotonic() > deadline:
            assert found, f"no received event with subject {subject!r}"
            return found[-1]


def start_gateway(procs: ServiceSet, namespace: str, dns_port: int, auth_env: dict, tmp, **overrides) -> Gateway:
    http_port, smtp_port = free_port(), free_port()
    blob_dir = tmp / f"blobs-{http_port}"
    env = {**auth_env, "MAILLINK_NAMESPACE": namespace, "KAFKA_BOOTSTRAP_SERVERS": KAFKA, "MONGODB_URL": MONGODB_URL,
           "BCC_GATEWAY_SMTP_PORT": str(smtp_port), "BCC_GATEWAY_DOMAIN": DOMAIN,
           "BCC_GATEWAY_DNS_HOST": "127.0.0.1", "BCC_GATEWAY_DNS_PORT": str(dns_port),
           "BCC_GATEWAY_MAX_MESSAGE_BYTES": str(MAX_BYTES), "MAILLINK_BLOB_URL": f"file://{blob_dir}",
           "BCC_GATEWAY_TLS_DIR": str(tmp / "tls"), "BCC_GATEWAY_PUBLIC_URL": f"http://127.0.0.1:{http_port}",
           "BCC_GATEWAY_DIRECTORY_REFRESH_S": "1", **overrides}
    name = "bcc_gateway"
    procs.start(name, http_port, env, tmp / f"logs-{http_port}")
    procs.wait_healthy()
    return Gateway(namespace, smtp_port, f"http://127.0.0.1:{http_port}", blob_dir, tmp, env)


@pytest.fixture(scope="module")
def dns_server(tmp_path_factory):
    key = dkim_key("sel1", "signed.test")
    records = {
        "good.test": "v=spf1 ip4:127.0.0.1 -all", "_dmarc.good.test": "v=DMARC1; p=none",
        "signed.test": "v=spf1 ip4:192.0.2.10 -all", "_dmarc.signed.test": "v=DMARC1; p=reject",
        key.record_name: key.record,
        "spoofed.test": "v=spf1 ip4:192.0.2.10 -all", "_dmarc.spoofed.test": "v=DMARC1; p=reject",
        "example.com": "v=spf1 ip4:127.0.0.1 -all",  # Dovecot test users' domain
    }
    server = start_dns(records, ["test", "example.com"], tmp_path_factory.mktemp("dns") / "dnsmasq.log")
    yield server, key
    server.stop()


@pytest.fixture(scope="module")
def mailbox_user():
    from tests.conftest import make_mailbox_user
    return make_mailbox_user()


@pytest.fixture(scope="module")
def gateway(dns_server, auth_env, tmp_path_factory, mailbox_user):
    namespace = f"t{uuid.uuid4().hex[:10]}."
    tmp = tmp_path_factory.mktemp("bcc")
    procs = ServiceSet()
    try:
        gw = start_gateway(procs, namespace, dns_server[0].port, auth_env, tmp)
        users = {**USERS, "u-mbox": ("c-1", mailbox_user[0])}
        records = [(uid.encode(), UserUpserted(user_id=uid, company_id=company, login_email=login, emails=[login])
                    .model_dump_json().encode()) for uid, (company, login) in users.items()]
        asyncio.run(produce(KAFKA, gw.topic("crm.users.v1"), records))
        asyncio.run(wait_group_caught_up(KAFKA, f"{namespace}maillink-bcc-gateway", gw.topic("crm.users.v1")))
        gw.procs, gw.dns_port = procs, dns_server[0].port
        yield gw
    finally:
        procs.stop()
        asyncio.run(drop_namespace(namespace))  # the gateway's topics and database


def test_login_sender_over_starttls_is_accepted_stored_and_published(gateway, token):
    subject = f"Renewal {uuid.uuid4().hex[:6]}"
    data = message("alice@good.test", subject, body="Ceník v příloze.")  # 8bit body, as MUAs send it
    result = gateway.send("alice@good.test", data, tls=True)
    assert result.accepted, result.transcript
    assert "STARTTLS" in result.transcript and "8BITMIME" in result.transcript
    event = asyncio.run(received(gateway, subject))
    assert event.source == "bcc" and event.direction == "outgoing" and event.user_id == "u-alice"
    assert event.company_id == "c-1" and event.deal_hint is None and event.raw.owner == "bcc-gateway"
    assert event.account_addresses == ["alice@good.test"]
    store = open_blob_store(f"file://{gateway.blob_dir}", owner=f"{gateway.namespace}bcc-gateway")
    stored = asyncio.run(store.get(event.raw.blob_id))
    assert stored is not None and hashlib.sha256(stored).hexdigest() == event.raw.blob_id
    assert "Ceník".encode() in stored  # no 8BITMIME downgrade on the way in
    served = httpx.get(f"{gateway.url}/blobs/{event.raw.blob_id}", headers=bearer(token("svc", "blobs:read")))
    assert served.status_code == 200 and served.content == stored
    # Streamed like ingest's blobs: the length up front, the blob id as ETag, and 304 for a client holding it.
    assert served.headers["etag"] == f'"{event.raw.blob_id}"' and served.headers["content-length"] == str(len(stored))
    cached = httpx.get(f"{gateway.url}/blobs/{event.raw.blob_id}",
                       headers={**bearer(token("svc", "blobs:read")), "If-None-Match": served.headers["etag"]})
    assert cached.status_code == 304 and cached.content == b""
    assert httpx.get(f"{gateway.url}/blobs/{event.raw.blob_id}",
                     headers=bearer(token("u-alice", "bcc:read"))).status_code == 403


def test_unverified_sender_is_refused_at_mail_from(gateway):
    result = gateway.send("stranger@good.test", message("stranger@good.test", "x"))
    assert not result.accepted
    assert re.search(r"MAIL FROM:<stranger@good\.test>\s*\n\s*<\*\* 550 5\.7\.1 <stranger@good\.test> is not the "
                     r"login address", result.transcript), result.transcript


def test_from_header_of_another_address_is_refused(gateway):
    data = message("dave@good.test", "From someone else")
    result = gateway.send("alice@good.test", data)
    assert not result.accepted and "550 5.7.1 From <dave@good.test> is not the login address" in result.transcript


def test_unknown_recipient_and_other_company_get_550_at_rcpt(gateway):
    unknown = gateway.send("alice@good.test", message("alice@good.test", "x"), to=f"company-00000000@{DOMAIN}")
    assert not unknown.accepted
    assert re.search(r"RCPT TO:<company-00000000@[^>]+>\s*\n\s*<\*\* 550 5\.1\.1 <company-00000000@bcc\.maillink\.test> "
                     r"is not a Smart Bcc address", unknown.transcript), unknown.transcript
    other = gateway.send("dave@good.test", message("dave@good.test", "x"))
    assert not other.accepted and "550 5.7.1 <dave@good.test> does not belong to a user of this company" in \
        other.transcript


def test_spoofed_from_failing_spf_and_dkim_is_refused(gateway):
    result = gateway.send("carol@spoofed.test", message("carol@spoofed.test", "Spoofed"))
    assert not result.accepted
    assert "550 5.7.26 mail from spoofed.test failed both SPF (fail) and DKIM (none)" in result.transcript


def test_dns_failure_is_a_temporary_refusal_so_the_sender_retries(gateway):
    result = gateway.send("erin@unserved.example", message("erin@unserved.example", "DNS down"))
    assert not result.accepted
    assert "451 4.7.0 SPF/DKIM for unserved.example could not be checked now (DNS); try later" in result.transcript


def test_dkim_signed_message_passes_though_spf_fails(gateway, dns_server):
    key = dns_server[1]
    subject = f"Signed {uuid.uuid4().hex[:6]}"
    signed = key.sign(message("bob@signed.test", subject))
    result = gateway.send("bob@signed.test", signed)
    assert result.accepted, result.transcript
    assert asyncio.run(received(gateway, subject)).user_id == "u-bob"
    tampered = key.sign(message("bob@signed.test", "Tampered")).replace(b"pricing", b"PRICING")
    refused = gateway.send("bob@signed.test", tampered)
    assert not refused.accepted and "failed both SPF (fail) and DKIM (fail)" in refused.transcript


def test_over_size_is_refused_with_552_and_every_refusal_is_counted(gateway):
    big = message("alice@good.test", "Big", body=("x" * 76 + "\r\n") * (MAX_BYTES // 78 + 100))
    result = gateway.send("alice@good.test", big)
    assert not result.accepted and "552" in result.transcript
    metrics = httpx.get(f"{gateway.url}/metrics").text
    assert re.search(r'maillink_bcc_refusals_total\{reason="too_large"\} [1-9]', metrics)
    gateway.send("nobody@good.test", message("nobody@good.test", "x"))
    metrics = httpx.get(f"{gateway.url}/metrics").text
    assert re.search(r'maillink_bcc_refusals_total\{reason="unknown_sender"\} [1-9]', metrics)
    assert promtool_check_metrics(metrics) == ""  # with its labelled series present, the page still lints


def test_deal_specific_address_carries_the_deal_hint(gateway):
    subject = f"Deal {uuid.uuid4().hex[:6]}"
    result = gateway.send("alice@good.test", message("alice@good.test", subject),
                          to=deal_address("c-1", "123", DOMAIN))
    assert result.accepted, result.transcript
    assert asyncio.run(received(gateway, subject)).deal_hint == "123"


def test_a_copy_to_40000_recipients_is_accepted_with_its_lists_capped_in_the_event(gateway):
    # The brief's hostile case: 40,000 To addresses (~700 KB of folded headers) made an event larger
    # than the broker takes, so every delivery attempt ended in 451 and the sender retried for days.
    recipients = [f"r{i}@acme.test" for i in range(40_000)]
    folded = ",\r\n ".join(", ".join(recipients[i:i + 40]) for i in range(0, len(recipients), 40))
    subject = f"All hands {uuid.uuid4().hex[:6]}"
    data = message("alice@good.test", subject, to=folded)
    assert len(data) < MAX_BYTES
    result = gateway.send("alice@good.test", data)
    assert result.accepted, result.transcript[-2000:]
    event = asyncio.run(received(gateway, subject))
    assert len(event.envelope.to) == 100 and event.truncated == {"to": 39_900}
    assert event.envelope.to[0].email == "r0@acme.test"
    assert len(event.model_dump_json()) < 900_000
    # The key is the uncapped message's, as ingest computes it for the synced copy.
    store = open_blob_store(f"file://{gateway.blob_dir}", owner=f"{gateway.namespace}bcc-gateway")
    stored = asyncio.run(store.get(event.raw.blob_id))
    assert stored.rstrip(b"\r\n") == data.rstrip(b"\r\n")  # all 40,000 kept in the raw MIME (swaks ends it its way)


ORIGINAL_BODY = "Hello Alice,\nthe signed contract is attached.\nJan"


def forwarded(fmt: str, to: str, subject: str) -> bytes:
    head = (f"From: alice@good.test\r\nTo: {to}\r\nSubject: Fwd: {subject}\r\n"
            f"Date: Thu, 26 Nov 2026 12:00:00 +0000\r\nMessage-ID: <{uuid.uuid4().hex}@good.test>\r\n"
            "MIME-Version: 1.0\r\n")
    if fmt == "attached":
        original = (f"From: Jan Novak <jan@acme.test>\r\nTo: alice@good.test\r\nSubject: {subject}\r\n"
                    "Date: Thu, 26 Nov 2026 10:00:00 +0000\r\nMessage-ID: <orig-1@acme.test>\r\n\r\n"
                    f"{ORIGINAL_BODY}\r\n")
        return (head + "Content-Type: multipart/mixed; boundary=b1\r\n\r\n--b1\r\nContent-Type: text/plain\r\n\r\n"
                "FYI\r\n--b1\r\nContent-Type: message/rfc822\r\n\r\n" + original + "\r\n--b1--\r\n").encode()
    block = {
        "gmail": ("---------- Forwarded message ---------\nFrom: Jan Novak <jan@acme.test>\n"
                  f"Date: Thu, Nov 26, 2026 at 10:00 AM\nSubject: {subject}\nTo: Alice <alice@good.test>\n\n"),
        "outlook": ("-----Original Message-----\nFrom: Jan Novak [mailto:jan@acme.test]\n"
                    f"Sent: Thursday, November 26, 2026 10:00 AM\nTo: Alice\nSubject: {subject}\n\n"),
        "apple": ("Begin forwarded message:\n\nFrom: Jan Novak <jan@acme.test>\n"
                  f"Subject: {subject}\nDate: November 26, 2026 at 10:00:00 AM GMT+1\nTo: Alice <alice@good.test>\n\n"),
    }[fmt]
    text = "FYI, see below.\n\n" + block + ORIGINAL_BODY + "\n"
    return (head + "Content-Type: text/plain; charset=utf-8\r\n\r\n" + text.replace("\n", "\r\n")).encode()


@pytest.mark.parametrize("fmt", ["attached", "gmail", "outlook", "apple"])
def test_forwarded_message_is_ingested_as_the_original_incoming_message(gateway, fmt):
    subject = f"Contract {fmt} {uuid.uuid4().hex[:6]}"
    result = gateway.send("alice@good.test", forwarded(fmt, gateway.address, subject))
    assert result.accepted, result.transcript
    event = asyncio.run(received(gateway, subject))
    assert [a.email for a in event.envelope.from_] == ["jan@acme.test"]
    assert event.direction == "incoming" and event.user_id == "u-alice"
    assert event.envelope.date == datetime(2026, 11, 26, 9 if fmt == "apple" else 10, 0, tzinfo=timezone.utc)
    assert "signed contract" in event.snippet and "FYI" not in event.snippet
    if fmt == "attached":
        assert event.envelope.message_id == "orig-1@acme.test"


def test_bcc_copy_of_a_forward_is_the_users_own_message(gateway):
    # The gateway only in Bcc (not in To/Cc): the user forwarded to someone else; that is their mail.
    subject = f"Bcc fwd {uuid.uuid4().hex[:6]}"
    result = gateway.send("alice@good.test", forwarded("gmail", "colleague@good.test", subject))
    assert result.accepted, result.transcript
    event = asyncio.run(received(gateway, f"Fwd: {subject}"))
    assert event.direction == "outgoing" and event.envelope.from_[0].email == "alice@good.test"


def _link(command: SendRequested) -> str:
    return re.search(r"http://\S+/bcc/confirm\?token=\S+", command.text).group(0)


async def _commands(gateway: Gateway, to: str) -> list[SendRequested]:
    records = await read_topic(KAFKA, gateway.topic("mail.send.requested.v1"), timeout=5)
    return [c for c in (SendRequested.model_validate_json(r.value) for r in records) if c.to[0].email == to]


async def _verified_sets(gateway: Gateway, user: str) -> list[list[str]]:
    records = await read_topic(KAFKA, gateway.topic("mail.user.addresses.v1"), timeout=5)
    assert all(r.key == user.encode() for r in records if user.encode() == r.key)
    return [e.addresses for e in (UserAddressesVerified.model_validate_json(r.value) for r in records)
            if e.user_id == user]


def test_alternative_address_pending_then_verified_then_removed(gateway, token):
    alice = bearer(token("u-alice", "bcc:read", "bcc:write", company="c-1"))
    alt = f"alice.{uuid.uuid4().hex[:6]}@good.test"
    added = httpx.post(f"{gateway.url}/bcc/addresses", headers=alice, json={"email": alt})
    assert added.status_code == 202 and added.json()["status"] == "pending"
    command = asyncio.run(_commands(gateway, alt))[-1]
    assert command.purpose == "system" and command.user_id == "u-alice" and "72 hours" in command.text

    pending = gateway.send(alt, message(alt, "From a pending address"))
    assert not pending.accepted and f"550 5.7.1 <{alt}> is not confirmed yet" in pending.transcript

    link = _link(command)
    page = httpx.get(link)  # a mail scanner's prefetch must not confirm
    assert page.status_code == 200 and "Confirm" in page.text and alt in page.text
    assert gateway.send(alt, message(alt, "Still pending")).accepted is False
    token_value = link.split("token=")[1]
    done = httpx.post(f"{gateway.url}/bcc/confirm", data={"token": token_value})
    assert done.status_code == 200 and f"{alt} is confirmed" in done.text
    again = httpx.post(f"{gateway.url}/bcc/confirm", data={"token": token_value})
    assert again.status_code == 410 and "already used" in again.text

    subject = f"From alt {uuid.uuid4().hex[:6]}"
    accepted = gateway.send(alt, message(alt, subject))
    assert accepted.accepted, accepted.transcript
    event = asyncio.run(received(gateway, subject))
    assert event.user_id == "u-alice" and alt in event.account_addresses and event.direction == "outgoing"
    assert [alt] in asyncio.run(_verified_sets(gateway, "u-alice"))
    listed = httpx.get(f"{gateway.url}/bcc/addresses", headers=alice).json()
    assert listed["address"] == gateway.address and listed["login_email"] == "alice@good.test"
    assert {"email": alt, "status": "verified"}.items() <= listed["alternatives"][0].items()

    assert httpx.delete(f"{gateway.url}/bcc/addresses/{alt}", headers=alice).status_code == 204
    assert asyncio.run(_verified_sets(gateway, "u-alice"))[-1] == []
    time.sleep(1.5)  # other instances' directories refresh every BCC_GATEWAY_DIRECTORY_REFRESH_S (1 s here)
    assert not gateway.send(alt, message(alt, "After removal")).accepted


def test_address_of_another_user_cannot_be_claimed_and_routes_need_scopes(gateway, token):
    alice = bearer(token("u-alice", "bcc:read", "bcc:write", company="c-1"))
    taken = httpx.post(f"{gateway.url}/bcc/addresses", headers=alice, json={"email": "bob@signed.test"})
    assert taken.status_code == 409
    read_only = bearer(token("u-alice", "bcc:read", company="c-1"))
    assert httpx.post(f"{gateway.url}/bcc/addresses", headers=read_only, json={"email": "x@good.test"}).status_code == 403
    assert httpx.post(f"{gateway.url}/bcc/addresses", headers=alice, json={"email": "a@b"}).status_code == 422
    assert httpx.get(f"{gateway.url}/bcc/confirm", params={"token": "forged.token.1.x"}).status_code == 400


def test_expired_link_leaves_the_address_pending(gateway, auth_env, token, tmp_path):
    procs = ServiceSet()
    try:  # a second instance on the same store whose links live one second
        short = start_gateway(procs, gateway.namespace, gateway.dns_port, auth_env, tmp_path,
                              BCC_GATEWAY_LINK_TTL_S="1")
        alice = bearer(token("u-alice", "bcc:read", "bcc:write", company="c-1"))
        alt = f"late.{uuid.uuid4().hex[:6]}@good.test"
        assert httpx.post(f"{short.url}/bcc/addresses", headers=alice, json={"email": alt}).status_code == 202
        link = _link(asyncio.run(_commands(gateway, alt))[-1])
        time.sleep(2.1)
        page = httpx.get(link)
        assert page.status_code == 410 and "expired" in page.text
        done = httpx.post(f"{short.url}/bcc/confirm", data={"token": link.split("token=")[1]})
        assert done.status_code == 410 and "expired" in done.text
        listed = httpx.get(f"{short.url}/bcc/addresses", headers=alice).json()["alternatives"]
        assert any(a["email"] == alt and a["status"] == "pending" for a in listed)
        refused = gateway.send(alt, message(alt, "Expired"))
        assert not refused.accepted and "is not confirmed yet" in refused.transcript
    finally:
        procs.stop()


def test_bcc_copy_of_a_synced_message_has_the_key_ingest_gives_the_synced_copy(gateway, mailbox_user):
    """One message, two ways in: the Sent copy synced from Dovecot by ingest, and the Bcc copy
    delivered by SMTP. What differs between them is what Bcc delivery changes: the Sent copy keeps
    its Bcc header, the delivered one has Received/Return-Path prepended instead, reaches us with
    CRLF line endings, and (announcing 8BITMIME) keeps its 8bit body."""
    from cryptography.fernet import Fernet
    from maillink_devtools.imap_load import append
    from maillink_ingest.adapters.crypto import CredentialsCipher
    from maillink_ingest.adapters.folder_state import FolderStateStore
    from maillink_ingest.domain.folders import FolderPlan
    from maillink_ingest.imap.connection import close_session, open_session
    from maillink_ingest.sync.delivery import Delivery
    from maillink_ingest.sync.folder_sync import FolderSync
    from maillink_runtime import bus, mongo
    from maillink_schemas.accounts import AccountConfigured, ImapEndpoint, Security
    from maillink_schemas.identity import account_id
    from tests.conftest import IMAP_HOST, IMAP_PORT

    email, password = mailbox_user
    subject = f"Angebot {uuid.uuid4().hex[:6]}"
    sent_copy = message(email, subject, body="Grüße aus Brno,\r\nDíky za schůzku.\r\n\r\n",
                        extra=f"Bcc: {gateway.address}\r\n").replace(b"charset=utf-8\r\n",
                                                                      b"charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n")
    delivered = sent_copy.replace(f"Bcc: {gateway.address}\r\n".encode(), b"")
    delivered = (b"Received: from mua.test (mua.test [127.0.0.1]) by smtp.example.com with ESMTPSA; "
                 b"Thu, 26 Nov 2026 10:00:01 +0000\r\n" + delivered)
    append(IMAP_HOST, IMAP_PORT, email, password, "Sent", [sent_copy])
    result = gateway.send(email, delivered)
    assert result.accepted, result.transcript
    bcc_event = asyncio.run(received(gateway, subject))

    key = Fernet.generate_key().decode()
    account = AccountConfigured(event_id="e", occurred_at=utcnow(), account_id=account_id("u-mbox", email),
                                user_id="u-mbox", email=email, username=email,
                                imap=ImapEndpoint(host=IMAP_HOST, port=IMAP_PORT, security=Security.PLAIN),
                                secret_ciphertext=CredentialsCipher(key).encrypt(password))
    topic = f"{gateway.namespace}ingest.received"

    async def sync_sent() -> list[MessageReceived]:
        client = mongo.connect(MONGODB_URL)
        db = client[f"{gateway.namespace.strip('.')}_ingest_copy"]
        broker = bus.make_broker(KAFKA, "test")
        await broker.start()
        try:
            async def publish(events):
                await bus.publish_many(broker, topic, [(o.key, o.event) for o in events])
            session = await open_session(account.imap, email, password)
            try:
                ingest_blobs = open_blob_store((gateway.tmp / "ingest-blobs").as_uri())
                await FolderSync(session, account, FolderStateStore(db), Delivery(ingest_blobs, publish),
                                 batch_size=50).run(FolderPlan("Sent", True))
            finally:
                await close_session(session)
            return [MessageReceived.model_validate_json(r.value) for r in await read_topic(KAFKA, topic, expect=1)]
        finally:
            await broker.stop()
            await client.drop_database(db.name)
            await client.close()

    synced = [e for e in asyncio.run(sync_sent()) if e.envelope.subject == subject]
    assert len(synced) == 1
    assert bcc_event.account_id == synced[0].account_id
    assert bcc_event.message_key == synced[0].message_key
    assert bcc_event.raw.blob_id != synced[0].raw.blob_id  # the bytes differ; the record does not


def test_an_address_confirmed_by_one_user_cannot_then_be_confirmed_by_another(gateway, token):
    shared = f"shared.{uuid.uuid4().hex[:6]}@good.test"
    links = {}
    for user in ("u-alice", "u-bob"):
        headers = bearer(token(user, "bcc:read", "bcc:write", company="c-1"))
        assert httpx.post(f"{gateway.url}/bcc/addresses", headers=headers, json={"email": shared}).status_code == 202
        command = next(c for c in reversed(asyncio.run(_commands(gateway, shared))) if c.user_id == user)
        links[user] = _link(command).split("token=")[1]
    first = httpx.post(f"{gateway.url}/bcc/confirm", data={"token": links["u-alice"]})
    assert first.status_code == 200
    second = httpx.post(f"{gateway.url}/bcc/confirm", data={"token": links["u-bob"]})
    assert second.status_code == 409 and "another user" in second.text


def test_the_confirmation_mail_goes_out_through_outbounds_system_sender_and_its_link_verifies(gateway, token, auth_env,
                                                                                              tmp_path):
    """bcc-gateway asks for the mail (purpose="system"); outbound sends it from the system sender, not
    from a user's account, untracked and unlinked; the mail reaches the SMTP server with the link."""
    from email import message_from_bytes, policy

    from cryptography.fernet import Fernet

    from maillink_devtools.outbound_testing import SmtpServer
    from maillink_runtime import mongo
    from tests.conftest import IMAP_PORT, RUN_DIR, make_mailbox_user

    server = SmtpServer.start(tmp_path / "smtp", run_dir=RUN_DIR, imap_port=IMAP_PORT, keep=True)
    system_email, system_password = make_mailbox_user()   # the test server checks AUTH against Dovecot's users
    env = {"MAILLINK_NAMESPACE": gateway.namespace, "KAFKA_BOOTSTRAP_SERVERS": KAFKA, "MONGODB_URL": MONGODB_URL,
           "MAILLINK_CREDENTIALS_KEY": Fernet.generate_key().decode(), **auth_env,
           "OUTBOUND_SMTP_CA_FILE": server.ca_file, "OUTBOUND_TRACKING_SECRET": "tracking-secret",
           "OUTBOUND_SYSTEM_SMTP_PORT": str(server.port), "OUTBOUND_SYSTEM_SMTP_SECURITY": "starttls",
           "OUTBOUND_SYSTEM_FROM": system_email, "OUTBOUND_SYSTEM_SMTP_USERNAME": system_email,
           "OUTBOUND_SYSTEM_SMTP_PASSWORD": system_password}
    procs = ServiceSet()
    try:
        procs.start("outbound", free_port(), env, tmp_path / "logs")
        procs.wait_healthy()
        alice = bearer(token("u-alice", "bcc:read", "bcc:write", company="c-1"))
        alt = f"alice.{uuid.uuid4().hex[:6]}@acme.example"
        assert httpx.post(f"{gateway.url}/bcc/addresses", headers=alice, json={"email": alt}).status_code == 202
        deadline = time.monotonic() + 60
        while not (mails := [m for m in server.messages() if alt.encode() in m]):
            assert time.monotonic() < deadline, "the confirmation mail never reached the SMTP server"
            time.sleep(0.5)
        [mail] = mails
        msg = message_from_bytes(mail, policy=policy.default)
        assert system_email in msg["From"] and alt in msg["To"]
        [accepted] = [a for a in server.accepted() if a["rcpt_tos"] == [alt]]
        assert accepted["user"] == system_email and accepted["mail_from"] == system_email
        body = msg.get_body(("plain",)).get_content()
        link = re.search(r"http://\S+/bcc/confirm\?token=\S+", body).group(0)
        assert "/t/c/" not in body and msg.get_body(("html",)) is None   # untracked, as written
        confirmed = httpx.post(f"{gateway.url}/bcc/confirm", data={"token": link.split("token=")[1]})
        assert confirmed.status_code == 200 and f"{alt} is confirmed" in confirmed.text
        listed = httpx.get(f"{gateway.url}/bcc/addresses", headers=alice).json()
        assert {"email": alt, "status": "verified"}.items() <= \
            next(a for a in listed["alternatives"] if a["email"] == alt).items()
        # Maillink's own mail is nobody's conversation: no sent event for the matcher to link.
        sent = asyncio.run(read_topic(KAFKA, gateway.topic("mail.message.sent.v1"), timeout=3))
        assert not [r for r in sent if alt.encode() in (r.value or b"")]
    finally:
        procs.stop()
        server.stop()

        async def drop() -> None:
            client = mongo.connect(MONGODB_URL)
            await client.drop_database(f"{gateway.namespace.replace('.', '_')}maillink_outbound")
            await client.close()
        asyncio.run(drop())
