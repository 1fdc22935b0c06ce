"""Outbound and the tracker agree on the tracking URLs: outbound (a process) sends a tracked message
through the test SMTP server, which files it in the sender's Sent folder in Dovecot; the test takes
the pixel and a link out of that MIME and follows them on the tracker (a process, its public
listener): the open and the click arrive on Kafka under the sent message's key, the click
redirects to the original URL, and the stats API finds the message by that key."""
import asyncio
import email
import re
import uuid
from email import policy

import httpx
import pytest
from cryptography.fernet import Fernet
from imapclient import IMAPClient

from maillink_devtools.kafka_tools import read_topic
from maillink_devtools.outbound_testing import SmtpServer
from maillink_devtools.processes import ServiceSet
from maillink_schemas.topics import Topic
from maillink_schemas.tracking import TrackingClicked, TrackingOpened, TrackingRegistered
from tests.conftest import IMAP_PORT, KAFKA, MONGODB_URL, RUN_DIR, bearer
from tests.e2e.test_outbound_service import connect_account, wait_known, wait_state

pytestmark = pytest.mark.e2e
CHROME = ("Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 "
          "Safari/537.36")


@pytest.fixture
def services(namespace, auth_env, tmp_path):
    key = Fernet.generate_key().decode()
    server = SmtpServer.start(tmp_path / "smtp", run_dir=RUN_DIR, imap_port=IMAP_PORT)
    base = 16000 + uuid.uuid4().int % 900 * 3
    public = f"http://127.0.0.1:{base + 2}"
    common = {**auth_env, "MAILLINK_NAMESPACE": namespace, "KAFKA_BOOTSTRAP_SERVERS": KAFKA,
              "MONGODB_URL": MONGODB_URL}
    procs = ServiceSet()
    logs = RUN_DIR / "e2e-logs" / namespace
    tracker = procs.start("tracker", base, {**common, "TRACKER_PUBLIC_PORT": str(base + 2),
                                            "TRACKER_PUBLIC_HOST": "127.0.0.1"}, logs)
    # Only the shared MAILLINK_TRACKING_KEYS (in auth_env): no outbound-only secret.
    outbound = procs.start("outbound", base + 1, {**common, "MAILLINK_CREDENTIALS_KEY": key,
                                                  "OUTBOUND_SMTP_CA_FILE": server.ca_file,
                                                  "OUTBOUND_TRACKER_BASE_URL": public}, logs)
    procs.wait_healthy()
    yield {"outbound": outbound.url, "tracker": tracker.url, "public": public, "key": key, "server": server,
           "namespace": namespace}
    procs.stop()
    server.stop()


def sent_copy(user: str, password: str, message_id: str) -> bytes:
    with IMAPClient("127.0.0.1", IMAP_PORT, ssl=False) as imap:
        imap.login(user, password)
        imap.select_folder("Sent")
        uids = imap.search(["HEADER", "Message-ID", message_id])
        [raw] = [d[b"RFC822"] for d in imap.fetch(uids, ["RFC822"]).values()]
        return raw


async def test_a_tracked_message_sent_by_outbound_is_counted_by_the_tracker(services, token):
    s = services
    alice = bearer(token("u-alice", "mail:send", "templates:read", "tracking:read", company="c-1"))
    async with httpx.AsyncClient(base_url=s["outbound"], timeout=60) as client:
        account, password = await connect_account(s, "u-alice")
        await wait_known(client, account, alice)
        body = {"request_id": f"r-{uuid.uuid4().hex}", "account_id": account.account_id,
                "to": [{"email": "jan@acme.example", "name": "Jan"}], "subject": "The offer", "tracking": True,
                "html": '<p>See <a href="https://acme.example/offer?id=7&amp;ref=mail">the offer</a> and '
                        '<a href="https://acme.example/pricing">our prices</a>.</p>'}
        assert (await client.post("/send", json=body, headers=alice)).status_code == 202
        done = await wait_state(client, body["request_id"], alice)
        assert done["state"] == "sent", done
    message_key = done["message_key"]

    # What the recipient got (the server filed exactly what it accepted).
    raw = sent_copy(account.email, password, done["message_id"].strip("<>"))
    html = email.message_from_bytes(raw, policy=policy.default).get_body(("html",)).get_content()
    links = re.findall(r'<a href="([^"]+)"', html)
    [pixel] = re.findall(r'<img src="([^"]+)"', html)
    assert pixel.startswith(f"{s['public']}/o/") and len(links) == 2
    assert all(link.startswith(f"{s['public']}/c/") and len(link) < 200 for link in links)
    assert "acme.example" not in " ".join(links)

    # The registration reached the tracker before the message left; it names the sent message's key.
    [registered] = [TrackingRegistered.model_validate_json(r.value) for r in await read_topic(
        KAFKA, s["namespace"] + Topic.TRACKING_REGISTERED, expect=1)]
    assert registered.message_key == message_key and registered.tracking_id

    async with httpx.AsyncClient(timeout=30, headers={"User-Agent": CHROME}) as web:
        opened = await web.get(pixel)
        assert opened.status_code == 200 and opened.headers["content-type"] == "image/gif"
        clicked = await web.get(links[0])  # not followed: the answer itself is what is checked
        assert clicked.status_code == 302 and clicked.headers["location"] == "https://acme.example/offer?id=7&ref=mail"
        forged = await web.get(links[1][:-2] + ("AA" if not links[1].endswith("AA") else "BB"))
        assert forged.status_code == 404 and "location" not in forged.headers

    [open_event] = [TrackingOpened.model_validate_json(r.value) for r in await read_topic(
        KAFKA, s["namespace"] + Topic.TRACKING_OPENED, expect=1)]
    [click_event] = [TrackingClicked.model_validate_json(r.value) for r in await read_topic(
        KAFKA, s["namespace"] + Topic.TRACKING_CLICKED, expect=1)]
    for event in (open_event, click_event):
        assert event.message_key == message_key and event.tracking_id == registered.tracking_id
        assert event.account_id == account.account_id and event.user_id == "u-alice"
        assert event.user_agent_family == "Chrome" and event.network == "127.0.0.0/24"
    assert (click_event.link_index, click_event.url) == (0, "https://acme.example/offer?id=7&ref=mail")

    # The stats API finds the message by its key once the aggregator has recorded both.
    async with httpx.AsyncClient(base_url=s["tracker"], timeout=30) as api:
        for _ in range(100):
            stats = (await api.get(f"/messages/{message_key}/tracking", headers=alice)).json()
            if stats.get("opens_human", 0) + stats.get("opens_machine", 0) == 1 and sum(
                    c["human"] + c["machine"] for c in stats.get("clicks", [])) == 1:
                break
            await asyncio.sleep(0.3)
    assert stats["message_key"] == message_key and stats["opens_human"] == 1
    assert [(c["link_index"], c["url"], c["human"] + c["machine"]) for c in stats["clicks"]] == [
        (0, "https://acme.example/offer?id=7&ref=mail", 1), (1, "https://acme.example/pricing", 0)]
