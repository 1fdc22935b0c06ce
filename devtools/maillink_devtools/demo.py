"""`make run`'s demo: starts the five services, seeds a mailbox and the CRM, shows what was linked."""
import asyncio
import os
import signal
import subprocess
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import httpx

from maillink_schemas.crm import DealUpserted, OrganizationUpserted, PersonUpserted, UserUpserted
from maillink_schemas.topics import Topic

from . import tokens
from .imap_load import append
from .mailgen import Mail
from .processes import SERVICES, ServiceSet

ROOT = Path(__file__).resolve().parents[2]
RUN_DIR = Path(os.environ.get("MAILLINK_RUN_DIR", ROOT / ".run"))
KAFKA = os.environ.get("KAFKA_BOOTSTRAP_SERVERS", f"127.0.0.1:{os.environ.get('KAFKA_PORT', '9092')}")
IMAP_PORT = int(os.environ.get("IMAP_PORT", "10143"))
ME, PASSWORD = "alice@demo.maillink.test", "demo-password"

PERSONS = [PersonUpserted(person_id="p-jan", name="Jan Novák", emails=["jan.novak@acme.example"], organization_id="o-acme"),
           PersonUpserted(person_id="p-eva", name="Eva Svobodová", emails=["eva@acme.example"], organization_id="o-acme"),
           PersonUpserted(person_id="p-priya", name="Priya Raman", emails=["priya@globex.example"], organization_id="o-globex")]
DEALS = [DealUpserted(deal_id="d-acme", title="ACME: 50 seats renewal", person_ids=["p-jan", "p-eva"]),
         DealUpserted(deal_id="d-globex-pilot", title="Globex pilot", person_ids=["p-priya"]),
         DealUpserted(deal_id="d-globex-emea", title="Globex EMEA rollout", person_ids=["p-priya"])]


def demo_mail() -> tuple[list[bytes], list[bytes]]:
    now = datetime.now(timezone.utc)
    t = lambda hours: now - timedelta(hours=hours)  # noqa: E731
    jan, eva, priya = "jan.novak@acme.example", "eva@acme.example", "priya@globex.example"
    inbox = [
        Mail(jan, [ME], "Renewal: pricing for 50 seats", "Hi Alice, could you send us the renewal pricing?",
             sender_name="Jan Novák", message_id="<r1@acme.example>", date=t(30)),
        Mail(jan, [ME], "Re: Renewal: pricing for 50 seats", "Thanks. Adding Eva from finance for the PO.",
             cc=[eva], sender_name="Jan Novák", message_id="<r3@acme.example>", in_reply_to="<r2@demo.maillink.test>",
             references=["<r1@acme.example>", "<r2@demo.maillink.test>"], date=t(20)),
        Mail(eva, [ME], "Re: Renewal: pricing for 50 seats", "PO attached.", cc=[jan], sender_name="Eva Svobodová",
             message_id="<r4@acme.example>", in_reply_to="<r3@acme.example>",
             references=["<r1@acme.example>", "<r2@demo.maillink.test>", "<r3@acme.example>"], date=t(5),
             attachment=b"%PDF-1.4 purchase order"),
        Mail(priya, [ME], "Pilot next steps", "Which of our two projects should the pilot cover?",
             sender_name="Priya Raman", message_id="<g1@globex.example>", date=t(26)),
        Mail("news@saas-weekly.example", [ME], "SaaS Weekly #48", "This week in SaaS...", message_id="<nl48@saas-weekly.example>",
             extra_headers={"List-Unsubscribe": "<mailto:unsubscribe@saas-weekly.example>", "Precedence": "bulk"}, date=t(8)),
    ]
    sent = [
        Mail(ME, [jan], "Re: Renewal: pricing for 50 seats", "Hi Jan, 40 EUR per seat per month, see attached.",
             sender_name="Alice", message_id="<r2@demo.maillink.test>", in_reply_to="<r1@acme.example>",
             references=["<r1@acme.example>"], date=t(28), html=True),
        Mail(ME, [priya], "Re: Pilot next steps", "Let's start with the EMEA team.", sender_name="Alice",
             message_id="<g2@demo.maillink.test>", in_reply_to="<g1@globex.example>", references=["<g1@globex.example>"],
             date=t(24)),
    ]
    return [m.to_bytes() for m in inbox], [m.to_bytes() for m in sent]


def mailbox_count(folder: str) -> int:
    import imaplib
    conn = imaplib.IMAP4("127.0.0.1", IMAP_PORT)
    try:
        conn.login(ME, PASSWORD)
        typ, data = conn.select(folder, readonly=True)
        return int(data[0]) if typ == "OK" else 0
    finally:
        conn.logout()


async def publish_crm() -> None:
    from .kafka_tools import produce, wait_group_caught_up
    await produce(KAFKA, Topic.CRM_USERS, [(b"u-alice", UserUpserted(user_id="u-alice", name="Alice", emails=[ME], company_id="c-demo").model_dump_json().encode())])
    await produce(KAFKA, Topic.CRM_ORGANIZATIONS, [(o.organization_id.encode(), o.model_dump_json().encode()) for o in (
        OrganizationUpserted(organization_id="o-acme", name="ACME s.r.o.", domains=["acme.example"]),
        OrganizationUpserted(organization_id="o-globex", name="Globex", domains=["globex.example"]))])
    await produce(KAFKA, Topic.CRM_PERSONS, [(p.person_id.encode(), p.model_dump_json().encode()) for p in PERSONS])
    await produce(KAFKA, Topic.CRM_DEALS, [(d.deal_id.encode(), d.model_dump_json().encode()) for d in DEALS])
    for topic in (Topic.CRM_USERS, Topic.CRM_PERSONS, Topic.CRM_DEALS):
        await wait_group_caught_up(KAFKA, "maillink-matcher", topic, timeout=60)


def alice() -> dict[str, str]:
    """The demo user's token, from the local key set `make run` created in .run/auth/."""
    token = tokens.mint(RUN_DIR / "auth", subject="u-alice", user_id="u-alice", company_id="c-demo",
                        scopes=["accounts:read", "accounts:write", "mail:read"])
    return {"Authorization": f"Bearer {token}"}


def _interrupt(*_) -> None:
    raise KeyboardInterrupt


def main() -> None:
    started = time.monotonic()
    procs = ServiceSet()
    pid_dir = RUN_DIR / "services"
    pid_dir.mkdir(parents=True, exist_ok=True)
    signal.signal(signal.SIGTERM, _interrupt)  # `make stop` / kill: same clean shutdown as Ctrl-C
    try:
        for name, port in SERVICES.items():
            proc = procs.start(name, port, {}, RUN_DIR / "logs")
            (pid_dir / f"{name}.pid").write_text(str(proc.process.pid))
        procs.wait_healthy()
        print(f"✔ five services healthy ({time.monotonic() - started:.0f}s)")
        subprocess.run(["bash", str(ROOT / "deploy/local/dovecot.sh"), "adduser", ME, PASSWORD], check=True)
        if mailbox_count("INBOX") == 0:
            inbox, sent = demo_mail()
            append("127.0.0.1", IMAP_PORT, ME, PASSWORD, "INBOX", inbox)
            append("127.0.0.1", IMAP_PORT, ME, PASSWORD, "Sent", sent)
        print(f"✔ demo mailbox {ME}: INBOX {mailbox_count('INBOX')}, Sent {mailbox_count('Sent')}")
        asyncio.run(publish_crm())
        print(f"✔ CRM published on crm.* topics: {len(PERSONS)} persons, {len(DEALS)} deals")
        ingest, matcher = procs.running["ingest"].url, procs.running["matcher"].url
        account = httpx.post(f"{ingest}/accounts", headers=alice(), json={
            "email": ME, "password": PASSWORD, "imap_host": "127.0.0.1", "imap_port": IMAP_PORT,
            "security": "plain", "first_sync_days": 30}, timeout=10).raise_for_status().json()
        show(ingest, matcher, account["account_id"], started)
        print("Press Ctrl-C to stop everything.")
        while all(p.process.poll() is None for p in procs.running.values()):
            time.sleep(1)
        print("A service stopped (interrupted, or see .run/logs/); stopping the rest.")
    except KeyboardInterrupt:
        print("\nStopping…")
    finally:
        procs.stop()
        for f in pid_dir.glob("*.pid"):
            f.unlink()


def show(ingest: str, matcher: str, account_id: str, started: float) -> None:
    expected = mailbox_count("INBOX") + mailbox_count("Sent")
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        status = httpx.get(f"{ingest}/accounts/{account_id}", headers=alice()).json()
        mail = httpx.get(f"{matcher}/users/u-alice/mail", headers=alice()).json()
        linked = sum(t["message_count"] for t in mail["threads"])
        if status["state"] == "synced" and linked >= expected:
            break
        time.sleep(0.5)
    print(f"✔ synced {status['messages_synced']} messages, state {status['state']} "
          f"({', '.join(f['folder'] + ' ' + str(f['synced']) for f in status['folders'])}), "
          f"{time.monotonic() - started:.0f}s after start\n")
    print("Conversations on CRM records (GET /persons/{id}/conversations, /deals/{id}/conversations):")
    deal_titles = {d.deal_id: d.title for d in DEALS}
    for person in PERSONS:
        threads = httpx.get(f"{matcher}/persons/{person.person_id}/conversations", headers=alice()).json()["threads"]
        for t in threads:
            deal = t["messages"][0]["deal_id"]
            print(f"  {person.name:<15} “{t['subject']}”  {t['message_count']} messages  "
                  f"deal: {deal_titles.get(deal, 'none (choice left to the user)' if deal is None else deal)}")
    unlinked = [t for t in mail["threads"] if not any(m["person_ids"] for m in t["messages"])]
    for t in unlinked:
        print(f"  {'(no person)':<15} “{t['subject']}”  bulk mail: not linked")
    print("\nHTTP APIs:")
    for name, port in SERVICES.items():
        print(f"  {name:<12} http://127.0.0.1:{port}   /healthz  /metrics")
    print("Every API needs a token (only /healthz and /metrics are open). As the demo user, e.g.:")
    print("  TOKEN=$(.venv/bin/maillink token --user u-alice --scope mail:read --scope accounts:read)")
    print(f"  curl -H \"Authorization: Bearer $TOKEN\" http://127.0.0.1:{SERVICES['matcher']}/users/u-alice/mail")
    print(f"  curl -H \"Authorization: Bearer $TOKEN\" http://127.0.0.1:{SERVICES['ingest']}/accounts/{account_id}")
    print("Kafka: 127.0.0.1:9092 — e.g. kcat -C -b 127.0.0.1:9092 -t mail.message.linked.v1 -e")


if __name__ == "__main__":
    main()
