"""Outbound against real servers: the loopback SMTP server (deploy/local/smtp_server.py, STARTTLS +
AUTH, optionally filing what it accepts in Dovecot's Sent folder), Dovecot over IMAP, the store and
Kafka. Each test drives the same service layer the running service uses (accept -> advance)."""
import asyncio
import base64
import email
import uuid
from datetime import timedelta
from email import policy

import pytest
from cryptography.fernet import Fernet
from imapclient import IMAPClient
from pydantic import ValidationError

from maillink_devtools.outbound_testing import SmtpServer, smtp_account
from maillink_ingest.domain.envelope import parse
from maillink_matcher.domain.threads import root_thread_id
from maillink_outbound.adapters.requests import RequestStore
from maillink_outbound.app import build_deps
from maillink_outbound.service_layer import send as sending
from maillink_outbound.service_layer.batch import send_batch
from maillink_outbound.service_layer.prepare import Unsendable, build, load
from maillink_outbound.settings import Settings
from maillink_runtime import bus, mongo
from maillink_schemas.base import utcnow
from maillink_schemas.crm import DealUpserted, PersonUpserted
from maillink_schemas.mail import Address, Envelope
from maillink_schemas.identity import message_key
from maillink_schemas.providers import preset
from maillink_schemas.outbound import Attachment, SendRequested, SendState, SmartFieldContext
from tests.conftest import IMAP_HOST, IMAP_PORT, KAFKA, MONGODB_URL, RUN_DIR, make_mailbox_user

pytestmark = pytest.mark.integration
KEY = Fernet.generate_key().decode()


@pytest.fixture(scope="module")
def servers(tmp_path_factory):
    base = tmp_path_factory.mktemp("smtp")
    started = {"files": SmtpServer.start(base / "files", file_sent=True, run_dir=RUN_DIR, imap_port=IMAP_PORT),
               "plain": SmtpServer.start(base / "plain", run_dir=RUN_DIR, imap_port=IMAP_PORT,
                                         oauth_tokens={"oauth@example.com": "ya29.good-token"})}
    yield started
    for server in started.values():
        server.stop()


class Env:
    def __init__(self, deps, published, servers):
        self.deps, self.published, self.servers = deps, published, servers

    async def account(self, server: str = "plain", **kw):
        email_, password = make_mailbox_user()
        srv = self.servers[server]
        account = smtp_account(email_, password, KEY, srv.port, files_sent=server == "files", imap_port=IMAP_PORT, **kw)
        await self.deps.accounts.upsert(account)
        return account, password

    async def send(self, account, **fields) -> dict:
        cmd = command(account, **fields)
        await sending.accept(cmd, self.deps)
        await sending.advance(cmd.request_id, self.deps)
        return await self.deps.requests.get(cmd.request_id)

    def events(self, kind: str) -> list:
        return [e for t, e in self.published if t == self.deps.topics[kind]]


def command(account, **fields) -> SendRequested:
    defaults = dict(to=[Address(email="jan@acme.example", name="Jan Novák")], subject="Hello", text="Hi there.\n")
    request_id = fields.pop("request_id", uuid.uuid4().hex)
    return SendRequested(event_id=uuid.uuid4().hex, occurred_at=utcnow(), request_id=request_id,
                         account_id=account.account_id, user_id=account.user_id, **{**defaults, **fields})


@pytest.fixture
async def env(servers, namespace, monkeypatch):
    monkeypatch.setenv("MAILLINK_CREDENTIALS_KEY", KEY)
    monkeypatch.setenv("MAILLINK_NAMESPACE", namespace)
    monkeypatch.setenv("OUTBOUND_SMTP_CA_FILE", servers["plain"].ca_file)
    monkeypatch.setenv("OUTBOUND_TRACKING_SECRET", "tracking-secret-for-tests")
    monkeypatch.setenv("OUTBOUND_TRACKER_BASE_URL", "https://t.maillink.example")
    monkeypatch.setenv("OUTBOUND_BACKOFF_S", "0.01")
    settings = Settings()
    # Both servers made their own certificate; trust both.
    bundle = RUN_DIR / f"outbound-ca-{uuid.uuid4().hex}.pem"
    bundle.write_text("".join(open(s.ca_file).read() for s in servers.values()))
    settings.smtp_ca_file = str(bundle)
    client = mongo.connect(MONGODB_URL)
    db = client[settings.database("outbound")]
    broker = bus.make_broker(KAFKA, "test-outbound")
    await broker.start()
    deps = build_deps(settings, broker, db)
    published = []
    real_publish = deps.publish

    async def spy(topic, event, key):
        await real_publish(topic, event, key)   # the real broker, acks=all
        published.append((topic, event))

    deps.publish = spy
    yield Env(deps, published, servers)
    await deps.pools.close()
    await broker.stop()
    await client.drop_database(db.name)
    await client.close()
    bundle.unlink()


def sent_folder(user: str, password: str) -> list[bytes]:
    with IMAPClient(IMAP_HOST, IMAP_PORT, ssl=False) as imap:
        imap.login(user, password)
        imap.select_folder("Sent")
        uids = imap.search("ALL")
        return [d[b"RFC822"] for d in imap.fetch(uids, ["RFC822"]).values()] if uids else []


def delivered(server: SmtpServer, message_id: str) -> list[dict]:
    return [a for a in server.accepted() if a["message_id"] == message_id]


def html_of(raw: bytes) -> str:
    msg = email.message_from_bytes(raw, policy=policy.default)
    return msg.get_body(("html",)).get_content()


async def test_a_request_is_sent_once_and_its_sent_copy_carries_the_key_ingest_computes(env):
    account, password = await env.account("plain")
    doc = await env.send(account, cc=[Address(email="eva@acme.example")], bcc=[Address(email="boss@acme.example")],
                         html="<p>Dear Jan, the <b>offer</b>.</p>", text=None)
    assert doc["state"] == SendState.SENT and doc["sent_copy"] == "appended"
    message_id = doc["sent"]["message_id"]
    [got] = delivered(env.servers["plain"], message_id)
    assert sorted(got["rcpt_tos"]) == ["boss@acme.example", "eva@acme.example", "jan@acme.example"]
    # The same request again (a redelivery, a duplicate POST) sends nothing more.
    await sending.accept(command(account, request_id=doc["_id"]), env.deps)
    await sending.advance(doc["_id"], env.deps)
    assert len(delivered(env.servers["plain"], message_id)) == 1
    [copy] = sent_folder(account.email, password)
    assert b"Bcc: boss@acme.example" in copy   # the sender's record shows the blind copy; the wire never did
    [event] = env.events("sent")
    parsed = parse(copy)
    assert event.message_key == message_key(account.account_id, parsed.envelope, copy)
    assert event.sent_copy == "appended" and event.envelope.message_id == message_id
    text = email.message_from_bytes(copy, policy=policy.default).get_body(("plain",)).get_content()
    assert "Dear Jan, the offer." in text   # text alternative generated from the HTML


async def test_a_provider_that_files_sent_mail_gets_no_second_copy(env):
    account, password = await env.account("files")
    doc = await env.send(account)
    assert doc["state"] == SendState.SENT and doc["sent_copy"] == "provider"
    assert len(sent_folder(account.email, password)) == 1
    [event] = env.events("sent")
    copy = sent_folder(account.email, password)[0]
    assert event.message_key == message_key(account.account_id, parse(copy).envelope, copy)


async def test_concurrent_duplicates_send_one_message(env):
    account, _ = await env.account("plain")
    cmd = command(account)
    await asyncio.gather(*(sending.accept(cmd, env.deps) for _ in range(3)))
    await asyncio.gather(*(sending.advance(cmd.request_id, env.deps) for _ in range(3)))
    doc = await env.deps.requests.get(cmd.request_id)
    assert doc["state"] == SendState.SENT
    assert len(delivered(env.servers["plain"], doc["sent"]["message_id"])) == 1


class _Crash(Exception):
    pass


async def test_crash_after_250_at_a_filing_provider_is_recovered_from_the_sent_folder(env):
    account, password = await env.account("files")
    cmd = command(account)
    await sending.accept(cmd, env.deps)
    real = env.deps.publish

    async def crash_on_sent(topic, event, key):
        if topic == env.deps.topics["sent"]:
            raise _Crash()   # the process "dies" after the 250, before anything is committed
        await real(topic, event, key)

    env.deps.publish = crash_on_sent
    with pytest.raises(_Crash):
        await sending.advance(cmd.request_id, env.deps)
    env.deps.publish = real
    doc = await env.deps.requests.get(cmd.request_id)
    assert doc["state"] == SendState.SENDING
    await env.deps.requests.note(cmd.request_id, SendState.SENDING, lease_until=utcnow())  # the lease runs out
    await sending.advance(cmd.request_id, env.deps)
    doc = await env.deps.requests.get(cmd.request_id)
    assert doc["state"] == SendState.SENT
    assert len(delivered(env.servers["files"], doc["sent"]["message_id"])) == 1
    assert len(sent_folder(account.email, password)) == 1


async def test_a_claim_carries_sending_and_a_dead_senders_request_is_recovered(env):
    """The first claim records `sending` (Message-ID, lease) with no update of the request: readers
    fold it in, the sweep leaves it alone while the lease runs, and once it has run out the Sent
    folder decides (the filing server has no copy: nothing was sent) and it goes out once."""
    account, _ = await env.account("files")
    cmd = command(account)
    [(doc, created)] = await sending.accept_many([cmd], env.deps)
    r = await sending.ready(doc, env.deps)
    assert await env.deps.requests.claim_many([(doc, sending.sending_fields(r, 1, 1, 60))]) == {cmd.request_id}
    # The process "dies" here, between the claim and DATA.
    requests = env.deps.requests._c
    stored = await requests.find_one({"_id": cmd.request_id})
    assert stored["state"] == SendState.PENDING and "sent" not in stored   # no update was made
    now = await env.deps.requests.get(cmd.request_id)
    assert now["state"] == SendState.SENDING and now["sent"]["message_id"] == r.summary["message_id"]
    assert (now["gen"], now["attempts"]) == (1, 1)
    later = utcnow() + timedelta(seconds=30)   # past the pending grace, within the lease
    assert cmd.request_id not in [d["_id"] for d in await env.deps.requests.due(later)]
    # Another process knows nothing of the lease until it reads the request once.
    other = RequestStore(requests.database)
    assert cmd.request_id in [d["_id"] for d in await other.due(later)]
    assert (await other.get(cmd.request_id))["state"] == SendState.SENDING
    assert cmd.request_id not in [d["_id"] for d in await other.due(later)]
    assert cmd.request_id in [d["_id"] for d in await other.due(utcnow() + timedelta(seconds=120))]
    # A write takes the claim's step over: the document alone is current again.
    assert await env.deps.requests.note(cmd.request_id, SendState.SENDING, lease_until=utcnow())   # the lease runs out
    stored = await requests.find_one({"_id": cmd.request_id})
    assert stored["state"] == SendState.SENDING and stored["sent"]["message_id"] == r.summary["message_id"]
    await sending.advance(cmd.request_id, env.deps)
    doc = await env.deps.requests.get(cmd.request_id)
    assert doc["state"] == SendState.SENT and doc["attempts"] == 2
    assert len(delivered(env.servers["files"], doc["sent"]["message_id"])) == 1


async def test_a_send_interrupted_before_delivery_at_a_filing_provider_is_retried(env):
    account, _ = await env.account("files")
    cmd = command(account)
    await sending.accept(cmd, env.deps)
    # State as a crash between entering `sending` and DATA leaves it: nothing reached the server.
    doc = await env.deps.requests.get(cmd.request_id)
    await env.deps.requests.move(cmd.request_id, SendState.SENDING, lease_until=utcnow(), sent={
        "message_id": f"never-sent-{uuid.uuid4().hex}@example.com", "files_sent": True})
    await sending.advance(cmd.request_id, env.deps)
    doc = await env.deps.requests.get(cmd.request_id)
    assert doc["state"] == SendState.SENT
    assert len(delivered(env.servers["files"], doc["sent"]["message_id"])) == 1


async def test_crash_before_the_250_is_recorded_elsewhere_ends_unknown_and_is_never_resent(env):
    account, password = await env.account("plain")
    cmd = command(account)
    await sending.accept(cmd, env.deps)
    real_note = env.deps.requests.note

    async def crash_on_note(*a, **kw):
        raise _Crash()

    env.deps.requests.note = crash_on_note
    with pytest.raises(_Crash):
        await sending.advance(cmd.request_id, env.deps)
    env.deps.requests.note = real_note
    await env.deps.requests.note(cmd.request_id, SendState.SENDING, lease_until=utcnow())
    await sending.advance(cmd.request_id, env.deps)
    doc = await env.deps.requests.get(cmd.request_id)
    assert doc["state"] == SendState.UNKNOWN
    assert len(delivered(env.servers["plain"], doc["sent"]["message_id"])) == 1
    [failed] = env.events("failed")
    assert failed.state == SendState.UNKNOWN and "cannot be told whether it was sent" in failed.reason


async def test_crash_after_the_250_was_recorded_appends_the_copy_and_ends_sent(env):
    account, password = await env.account("plain")
    cmd = command(account)
    await sending.accept(cmd, env.deps)
    real_append = env.deps.sent_folder.append

    async def crash_on_append(*a, **kw):
        raise _Crash()

    env.deps.sent_folder.append = crash_on_append
    with pytest.raises(_Crash):
        await sending.advance(cmd.request_id, env.deps)
    env.deps.sent_folder.append = real_append
    await env.deps.requests.note(cmd.request_id, SendState.SENDING, lease_until=utcnow())
    await sending.advance(cmd.request_id, env.deps)
    doc = await env.deps.requests.get(cmd.request_id)
    assert doc["state"] == SendState.SENT
    assert len(delivered(env.servers["plain"], doc["sent"]["message_id"])) == 1
    [copy] = sent_folder(account.email, password)
    [event] = env.events("sent")
    assert event.message_key == message_key(account.account_id, parse(copy).envelope, copy)


async def test_permanent_smtp_errors_fail_with_the_servers_reason(env):
    account, _ = await env.account("plain")
    doc = await env.send(account, to=[Address(email="reject-me@acme.example")])
    assert doc["state"] == SendState.FAILED
    assert "550 5.1.1 The email account that you tried to reach does not exist." in doc["reason"]
    assert env.events("failed")[0].smtp_code == 550


async def test_transient_smtp_errors_are_retried_with_backoff(env):
    account, _ = await env.account("plain")
    doc = await env.send(account, to=[Address(email=f"tempfail-{uuid.uuid4().hex[:6]}@acme.example")])
    assert doc["state"] == SendState.PENDING and doc["attempts"] == 1 and "451" in doc["last_error"]
    await asyncio.sleep(0.05)
    await sending.advance(doc["_id"], env.deps)
    doc = await env.deps.requests.get(doc["_id"])
    assert doc["state"] == SendState.SENT
    assert len(delivered(env.servers["plain"], doc["sent"]["message_id"])) == 1


async def test_xoauth2_login(env):
    password_account, _ = await env.account("plain")
    good = password_account.model_copy(update={"account_id": f"acc-{uuid.uuid4().hex[:8]}", "email": "oauth@example.com",
                                               "username": "oauth@example.com", "provider": "microsoft365",
                                               "secret_ciphertext": Fernet(KEY.encode()).encrypt(b"ya29.good-token").decode()})
    bad = good.model_copy(update={"account_id": f"acc-{uuid.uuid4().hex[:8]}",
                                  "secret_ciphertext": Fernet(KEY.encode()).encrypt(b"ya29.expired").decode()})
    for account in (good, bad):
        await env.deps.accounts.upsert(account)
    ok = await env.send(good)
    refused = await env.send(bad)
    assert ok["state"] == SendState.SENT
    assert refused["state"] == SendState.FAILED and "535" in refused["reason"]


async def test_templates_and_smart_fields_from_the_crm_projection(env):
    account, password = await env.account("plain")
    await env.deps.stores.crm.on_person(PersonUpserted(person_id="p-1", name="Jan Novák", emails=["jan@acme.example"]))
    await env.deps.stores.crm.on_deal(DealUpserted(deal_id="d-1", title="ACME: 50 seats"))
    template = await env.deps.stores.templates.create(account.user_id, "c-test", {
        "name": "offer", "subject": "{{ deal.title }}: the offer",
        "html": "<p>Hi {{ person.first_name }}, see {{ organization.name | default('your team') }}.</p>"
                "<script>alert(1)</script><a href=\"javascript:alert(2)\" onclick=\"x()\">x</a>"})
    await env.deps.stores.signatures.create(account.account_id, account.user_id,
                                            {"name": "main", "html": "<p>Alice, ACME sales</p>", "default": True})
    doc = await env.send(account, subject="", text=None, template_id=template["_id"],
                         context=SmartFieldContext(person_id="p-1", deal_id="d-1"))
    assert doc["state"] == SendState.SENT
    [copy] = sent_folder(account.email, password)
    msg = email.message_from_bytes(copy, policy=policy.default)
    assert msg["Subject"] == "ACME: 50 seats: the offer"
    html = html_of(copy)
    assert "Hi Jan, see your team." in html and "Alice, ACME sales" in html
    assert "script" not in html and "javascript:" not in html and "onclick" not in html


async def test_a_template_with_a_missing_field_fails_naming_it(env):
    account, _ = await env.account("plain")
    doc = await env.send(account, html="<p>Hi {{ person.first_name }}</p>", text=None,
                         context=SmartFieldContext(person_id="nobody"))
    assert doc["state"] == SendState.FAILED and "person.first_name" in doc["reason"]
    assert "sent" not in doc and not env.events("sent")   # it never reached `sending`, so never SMTP


RTL = {
    "ar": "مرحباً، نود أن نشكركم على اهتمامكم بعرضنا الجديد. يرجى مراجعة التفاصيل المرفقة.",
    "he": "שלום, תודה רבה על הפגישה אתמול. מצורפת ההצעה המעודכנת לעיונכם.",
    "fa": "سلام، از جلسه دیروز بسیار سپاسگزاریم. پیشنهاد به‌روز شده پیوست شده است.",
    "ur": "السلام علیکم، کل کی ملاقات کا بہت شکریہ۔ تازہ ترین پیشکش منسلک ہے۔",
}


@pytest.mark.parametrize("lang", sorted(RTL))
async def test_right_to_left_bodies_are_marked_with_direction_and_language(env, lang):
    account, password = await env.account("plain")
    doc = await env.send(account, html=f"<p>{RTL[lang]}</p>", text=None)
    assert doc["state"] == SendState.SENT
    html = html_of(sent_folder(account.email, password)[0])
    assert f'<p dir="rtl" lang="{lang}">' in html and f'<div dir="rtl" lang="{lang}">' in html


async def test_mixed_and_quoting_bodies_are_marked_per_block(env):
    account, password = await env.account("plain")
    mixed = ("<p>يسعدنا أن نقدم لكم منتجنا الجديد Acme Cloud Pro، التفاصيل على https://acme.example/cloud-pro "
             "ونحن في انتظار ردكم.</p><p>Best regards, the Acme team</p>")
    await env.send(account, html=mixed, text=None)
    await env.send(account, html="<p>Please call Mr. محمد عبد الله tomorrow about the renewal contract.</p>", text=None)
    copies = {html_of(c).count("Acme team") and "mixed" or "quote": html_of(c) for c in sent_folder(account.email, password)}
    assert '<p dir="rtl" lang="ar">' in copies["mixed"] and '<p dir="ltr">Best regards' in copies["mixed"]
    assert 'dir="rtl"' not in copies["quote"]


async def test_over_the_provider_limit_fails_before_any_network_call(env):
    # What the send API runs before it accepts a request (the sender runs it again before SMTP).
    account, _ = await env.account("plain", provider="gmail")
    before = len(env.servers["plain"].accepted())
    # base64 in MIME: 57 bytes become a 76-character line plus CRLF, so 27.4 MB encoded is this much raw.
    data = base64.b64encode(b"\0" * int(27.4 * 1024 * 1024 * 57 / 78)).decode()
    cmd = command(account, attachments=[Attachment(filename="big.bin", data_base64=data)])
    with pytest.raises(Unsendable) as refused:
        build(cmd, await load(cmd, account, preset("gmail"), env.deps.stores), utcnow(), None)
    assert str(refused.value) == "this message is 27.4 MB; Gmail accepts at most 25 MB"
    assert refused.value.status == 413
    assert len(env.servers["plain"].accepted()) == before


async def test_attachments_and_inline_images_arrive(env):
    account, password = await env.account("plain")
    png = base64.b64encode(b"\x89PNG\r\n\x1a\nfake").decode()
    await env.send(account, html='<p>Logo: <img src="cid:logo1" alt="logo"></p>', text=None, attachments=[
        Attachment(filename="logo.png", content_type="image/png", data_base64=png, content_id="logo1"),
        Attachment(filename="offer.pdf", content_type="application/pdf", data_base64=base64.b64encode(b"%PDF-1.4").decode())])
    msg = email.message_from_bytes(sent_folder(account.email, password)[0], policy=policy.default)
    parts = {p.get_filename(): p for p in msg.walk() if p.get_filename()}
    assert parts["logo.png"]["Content-ID"] == "<logo1>" and parts["offer.pdf"].get_content() == b"%PDF-1.4"
    assert 'src="cid:logo1"' in html_of(msg.as_bytes())


def test_header_injection_is_refused_where_it_enters():
    for bad in ({"subject": "Hi\r\nBcc: all@evil.example"}, {"attachments": [{"filename": "a\r\n.pdf", "data_base64": ""}]}):
        with pytest.raises(ValidationError):
            SendRequested.model_validate({"event_id": "e", "occurred_at": utcnow(), "request_id": "r",
                                          "account_id": "a", "user_id": "u", **bad})


async def test_header_injection_through_smart_fields_or_names_is_refused(env):
    account, _ = await env.account("plain")
    named = await env.send(account, to=[Address(email="a@acme.example", name="x\nBcc: e@vil.example")])
    assert named["state"] == SendState.FAILED and "single line" in named["reason"]
    await env.deps.stores.crm.on_deal(DealUpserted(deal_id="d-evil", title="x\r\nBcc: all@evil.example"))
    doc = await env.send(account, subject="{{ deal.title }}", context=SmartFieldContext(deal_id="d-evil"))
    assert doc["state"] == SendState.FAILED and "single line" in doc["reason"]


async def test_idn_recipients_are_sent_in_ascii(env):
    account, _ = await env.account("plain")
    doc = await env.send(account, to=[Address(email="jan@bücher.example")])
    [got] = delivered(env.servers["plain"], doc["sent"]["message_id"])
    assert got["rcpt_tos"] == ["jan@xn--bcher-kva.example"]
    bad = await env.send(account, to=[Address(email="not an address")])
    assert bad["state"] == SendState.FAILED and "not a valid email address" in bad["reason"]


async def test_scheduled_send_waits_and_can_be_cancelled(env):
    account, _ = await env.account("plain")
    later = await env.send(account, send_at=utcnow() + timedelta(hours=1))
    assert later["state"] == SendState.SCHEDULED
    assert await sending.cancel_request(later, env.deps)
    await sending.advance(later["_id"], env.deps)
    assert (await env.deps.requests.get(later["_id"]))["state"] == SendState.CANCELLED
    assert env.events("failed")[0].state == SendState.CANCELLED
    soon = await env.send(account, send_at=utcnow() + timedelta(seconds=1))
    assert soon["state"] == SendState.SCHEDULED
    assert [d["_id"] for d in await env.deps.requests.due(utcnow())] == []
    await asyncio.sleep(1.1)
    assert soon["_id"] in [d["_id"] for d in await env.deps.requests.due(utcnow())]
    await sending.advance(soon["_id"], env.deps)
    done = await env.deps.requests.get(soon["_id"])
    assert done["state"] == SendState.SENT
    assert not await sending.cancel_request(done, env.deps)   # too late once sent


async def test_a_reply_keeps_the_thread(env):
    account, password = await env.account("plain")
    original = Envelope(message_id="orig-1@acme.example", subject="Renewal: pricing", references=["root-0@acme.example"],
                        **{"from": [Address(email="jan@acme.example")]})
    await env.deps.stores.replies.remember("key-orig", account.account_id, original)
    doc = await env.send(account, subject="", reply_to_message="key-orig")
    copy = sent_folder(account.email, password)[0]
    msg = email.message_from_bytes(copy, policy=policy.default)
    assert msg["Subject"] == "Re: Renewal: pricing"
    assert msg["In-Reply-To"] == "<orig-1@acme.example>"
    assert msg["References"] == "<root-0@acme.example> <orig-1@acme.example>"
    reply = parse(copy).envelope
    assert root_thread_id(account.account_id, reply, None, "k") == root_thread_id(account.account_id, original, None, "o")
    assert doc["state"] == SendState.SENT


async def test_tracking_rewrites_http_links_and_adds_a_pixel_and_registers_first(env):
    account, password = await env.account("plain")
    html = ('<p>See <a href="https://acme.example/offer?id=7&amp;x=1">the offer</a>, '
            '<a href="mailto:sales@acme.example">mail us</a>, '
            '<a href="https://acme.example/unsubscribe?u=1">unsubscribe</a>.</p>')
    doc = await env.send(account, html=html, text=None, tracking=True)
    copy = sent_folder(account.email, password)[0]
    body = html_of(copy)
    assert "https://t.maillink.example/c/" in body and "https://acme.example/offer" not in body
    assert 'href="mailto:sales@acme.example"' in body and 'href="https://acme.example/unsubscribe?u=1"' in body
    assert '<img src="https://t.maillink.example/o/' in body
    text = email.message_from_bytes(copy, policy=policy.default).get_body(("plain",)).get_content()
    assert "https://acme.example/offer?id=7&x=1" in text and "t.maillink.example" not in text
    kinds = [t for t, _ in env.published]
    assert kinds.index(env.deps.topics["tracking"]) < kinds.index(env.deps.topics["sent"])
    [registered] = env.events("tracking")
    assert [(l.index, l.url) for l in registered.links] == [(0, "https://acme.example/offer?id=7&x=1")]
    assert registered.message_key == doc["sent"]["message_key"] == env.events("sent")[0].message_key


async def test_a_batch_sends_each_request_once_and_leaves_contested_ones_to_the_single_path(env):
    files, files_password = await env.account("files")
    plain, password = await env.account("plain")
    many = []
    real_many = env.deps.publish_many

    async def spy_many(topic, events):
        await real_many(topic, events)   # the real broker, acks awaited
        many.extend((topic, e) for _, e in events)

    env.deps.publish_many = spy_many
    tracked = [command(files, tracking=True, text=None, html="<p><a href='https://acme.example/x'>offer</a></p>")
               for _ in range(4)]
    appended = command(plain)                                            # its copy is appended: leaves after the 250
    rejected = command(files, to=[Address(email="reject-me@acme.example")])  # 550
    contested = command(files)
    cmds = [*tracked, appended, rejected, contested, tracked[0]]         # the same request twice in one poll
    stored = await sending.accept_many(cmds, env.deps)
    assert [created for _, created in stored] == [True] * 7 + [False]
    docs = [doc for doc, created in stored if created]
    assert await env.deps.requests.claim(docs[6], 60) is not None        # another worker holds this one

    left = await send_batch(docs, env.deps)

    assert [d["_id"] for d in left] == [contested.request_id]
    doc = await env.deps.requests.get(contested.request_id)
    assert doc["state"] == SendState.PENDING and "sent" not in doc
    for cmd in tracked:
        doc = await env.deps.requests.get(cmd.request_id)
        assert doc["state"] == SendState.SENT and doc["sent_copy"] == "provider" and doc["attempts"] == 1
        assert len(delivered(env.servers["files"], doc["sent"]["message_id"])) == 1
    doc = await env.deps.requests.get(appended.request_id)
    assert doc["state"] == SendState.SENT and doc["sent_copy"] == "appended"
    [copy] = sent_folder(plain.email, password)
    failed = await env.deps.requests.get(rejected.request_id)
    assert failed["state"] == SendState.FAILED and "550" in failed["reason"]
    registered = [e for t, e in many if t == env.deps.topics["tracking"]]
    sent = [e for t, e in many if t == env.deps.topics["sent"]] + env.events("sent")
    assert {e.request_id for e in sent} == {c.request_id for c in (*tracked, appended)}
    assert {e.message_key for e in registered} == {e.message_key for e in sent if e.tracked} and len(registered) == 4
    assert next(e for e in sent if e.request_id == appended.request_id).message_key == \
        message_key(plain.account_id, parse(copy).envelope, copy)
    # The copies the server filed itself (as Gmail does) carry the keys of the sent events: ingest's
    # Sent sync and outbound name each message alike.
    filed = sent_folder(files.email, files_password)
    assert sorted(message_key(files.account_id, parse(c).envelope, c) for c in filed) == \
        sorted(e.message_key for e in sent if e.account_id == files.account_id)

    # The batch's `sent` is an outcome record; the documents take it over when settled. Until then
    # readers fold it in, the sweep does not offer them, and a reply finds the message.
    first = tracked[0].request_id
    requests, later = env.deps.requests._c, utcnow() + timedelta(minutes=10)
    assert (await requests.find_one({"_id": first}))["state"] == SendState.PENDING
    assert first not in [d["_id"] for d in await env.deps.requests.due(later)]
    other = RequestStore(requests.database)   # another process learns it on its first read
    assert first in [d["_id"] for d in await other.due(later)]
    assert (await other.get(first))["state"] == SendState.SENT
    assert first not in [d["_id"] for d in await other.due(later)]
    key = next(e.message_key for e in sent if e.request_id == first)
    assert (await env.deps.stores.replies.get(key))["message_id"] == (await other.get(first))["sent"]["message_id"]
    counts = {"sent": 4, "failed": 1, "pending": 1}   # the contested one is another worker's
    assert await env.deps.requests.count_by_state(files.account_id) == counts
    assert await env.deps.requests.settle() == 4 and env.deps.requests.unsettled() == 0
    assert await env.deps.requests.count_by_state(files.account_id) == counts
    settled = await requests.find_one({"_id": first})
    assert (settled["state"], settled["sent_copy"], settled["attempts"]) == (SendState.SENT, "provider", 1)
    assert first not in [d["_id"] for d in await RequestStore(requests.database).due(later)]
