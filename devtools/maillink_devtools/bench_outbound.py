"""make bench-outbound: templated, tracked sends through outbound vs a raw aiosmtplib loop, same run.

(a) outbound's path, in process, on the real store and broker, as the service runs it (the command
    consumer's polls of 100 stored with one insert each, then the worker's group commit): each
    request is stored (idempotency key), its template rendered with smart fields from the CRM
    projection, sanitised, marked for direction, tracked (pixel + 3 rewritten links,
    TrackingRegistered published before sending), composed, claimed (`sending`, Message-ID fixed)
    before DATA, sent through the account's pool (4 connections), MessageSent published (acks=all)
    and the request committed `sent`;
(b) the yardstick: one aiosmtplib connection sending the same prepared messages in a loop.
Both go to the same local SMTP sink (deploy/local/smtp_server.py --sink: loopback, AUTH, no TLS,
nothing stored). The account says the server files sent mail itself, so no IMAP APPEND is made;
that step is not what is compared (the raw loop has no Sent copy either).
"""
import argparse
import asyncio
import gc
import json
import os
import tempfile
import time
import uuid
from pathlib import Path

import aiosmtplib
from cryptography.fernet import Fernet

from maillink_runtime import bus, mongo
from maillink_schemas.base import utcnow
from maillink_schemas.crm import DealUpserted, OrganizationUpserted, PersonUpserted
from maillink_schemas.mail import Address
from maillink_schemas.outbound import SendRequested, SmartFieldContext

from .kafka_tools import NAMESPACE_DATABASES, drop_namespace
from .outbound_testing import SmtpServer, smtp_account

ROOT = Path(__file__).resolve().parents[2]
RUN_DIR = Path(os.environ.get("MAILLINK_RUN_DIR", ROOT / ".run"))
KAFKA = os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9092")
MONGODB_URL = os.environ.get("MONGODB_URL", "mongodb://127.0.0.1:27017/")
TEMPLATE = {
    "name": "renewal", "subject": "{{ deal.title }}: your renewal offer",
    "html": "<p>Hi {{ person.first_name }},</p><p>thank you for choosing us at {{ organization.name }}. "
            "The offer for <b>{{ deal.title }}</b> is ready: <a href='https://acme.example/offer?d=1'>open it</a>, "
            "see <a href='https://acme.example/pricing'>pricing</a> and "
            "<a href='https://acme.example/faq'>questions</a>.</p><p>{{ sender.email }}</p>",
}


def commands(account, n: int) -> list[SendRequested]:
    return [SendRequested(event_id=f"bench-{i}", occurred_at=utcnow(), request_id=f"bench-{uuid.uuid4().hex}",
                          account_id=account.account_id, user_id=account.user_id, template_id="bench-template",
                          to=[Address(email=f"customer{i}@acme.example", name=f"Customer {i}")], tracking=True,
                          context=SmartFieldContext(person_id=f"p-{i % 50}", deal_id=f"d-{i % 50}"))
            for i in range(n)]


async def setup(deps, account) -> None:
    await deps.accounts.upsert(account)
    await deps.stores.templates._c.insert_one({"_id": "bench-template", "owner": account.user_id,
                                               "company_id": account.company_id, **TEMPLATE})
    await deps.stores.crm.on_organization(OrganizationUpserted(organization_id="o-1", name="ACME s.r.o."))
    for i in range(50):
        await deps.stores.crm.on_person(PersonUpserted(person_id=f"p-{i}", name=f"Jan{i} Novák", organization_id="o-1"))
        await deps.stores.crm.on_deal(DealUpserted(deal_id=f"d-{i}", title=f"ACME renewal {i}", organization_id="o-1"))


async def run_ours(deps, cmds, batches: int, batch_size: int) -> tuple[float, float, float]:
    """(seconds until every request is recorded sent, seconds more until the documents are settled,
    CPU seconds of this process until sent). The worker runs as the service runs it, but for the sweep
    (as this benchmark always had it: on FerretDB v1 its query reads the whole collection, ~1-3 s for
    5,000 requests, which is not what is compared); the settling the sweep does when the worker is idle
    is run and timed after the last send instead.

    Completion is watched on the service's own counter of requests ended (incremented once the store
    has the final state), not by counting in the store: on FerretDB v1 a count of 5,000 documents takes
    ~3 s and holds the store back meanwhile. The store's count is checked once at the end."""
    from maillink_outbound.service_layer.outcomes import ENDED
    from maillink_outbound.service_layer.send import accept_many
    from maillink_outbound.service_layer.worker import Worker

    def ended() -> dict[str, float]:
        return {s: ENDED.labels(s)._value.get() for s in ("sent", "failed", "unknown", "cancelled")}

    before = ended()
    worker = Worker(deps, batches=batches, sweep_s=3600, batch_size=batch_size)
    await worker.start()
    started, cpu = time.perf_counter(), time.process_time()
    for i in range(0, len(cmds), batch_size):   # what the command consumer does with each poll
        for doc, _ in await accept_many(cmds[i:i + batch_size], deps):
            worker.submit(doc["_id"], doc)
    while sum(ended().values()) - sum(before.values()) < len(cmds):
        await asyncio.sleep(0.01)
    elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
    await worker.settle()   # what the sweep does once no batch runs
    settled = time.perf_counter() - started - elapsed
    await worker.stop()
    counts = await deps.requests.count_by_state()
    if counts.get("sent", 0) < len(cmds) or set(counts) - {"sent"}:
        raise RuntimeError(f"not every request was sent: {counts}")
    return elapsed, settled, cpu


async def prepared(deps, account, cmds) -> list[tuple[str, list[str], bytes]]:
    from maillink_outbound.service_layer.prepare import build, load
    from maillink_schemas.providers import preset
    out = []
    for cmd in cmds:
        p = build(cmd, await load(cmd, account, preset(account.provider), deps.stores), utcnow().replace(microsecond=0),
                  deps.tracking)
        out.append((p.sender.email, p.recipients, p.composed.raw))
    return out


async def run_raw(port: int, messages) -> tuple[float, float]:
    smtp = aiosmtplib.SMTP(hostname="127.0.0.1", port=port, start_tls=False)
    await smtp.connect()
    await smtp.login("bench@example.com", "x")
    started, cpu = time.perf_counter(), time.process_time()
    for sender, recipients, raw in messages:
        await smtp.sendmail(sender, recipients, raw)
    elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
    await smtp.quit()
    return elapsed, cpu


async def main(n: int) -> dict:
    from maillink_outbound.app import build_deps
    from maillink_outbound.settings import Settings
    namespace = f"bench{uuid.uuid4().hex[:8]}."
    key = Fernet.generate_key().decode()
    os.environ.update({"MAILLINK_CREDENTIALS_KEY": key, "MAILLINK_NAMESPACE": namespace,
                       "OUTBOUND_TRACKING_SECRET": "bench-tracking-secret"})
    server = SmtpServer.start(Path(tempfile.mkdtemp(prefix="bench-smtp-")), tls=False, sink=True)
    client = mongo.connect(MONGODB_URL)
    settings = Settings()
    db = client[settings.database("outbound")]
    broker = bus.make_broker(KAFKA, "bench-outbound")
    await broker.start()
    try:
        deps = build_deps(settings, broker, db)
        account = smtp_account("bench@example.com", "x", key, server.port, files_sent=True, tls=False)
        await setup(deps, account)
        await deps.requests.ensure_indexes()
        # Warm-up (topics created, connections open), not measured.
        await run_ours(deps, commands(account, 20), settings.batches, settings.batch_size)
        cmds = commands(account, n)
        messages = await prepared(deps, account, cmds)
        # As the service does after start-up (its __main__), with this benchmark's own commands and
        # prepared messages: kept out of the collector's full passes, for both runs alike.
        gc.freeze()
        raw_s, raw_cpu_s = await run_raw(server.port, messages)
        ours_s, settle_s, ours_cpu_s = await run_ours(deps, cmds, settings.batches, settings.batch_size)
        await deps.pools.close()
    finally:
        await broker.stop()
        await client.close()
        server.stop()
        # Topics as well as the database (its send and status topics, 6 partitions each).
        await drop_namespace(KAFKA, MONGODB_URL, namespace, NAMESPACE_DATABASES)
    result = {"messages": n, "ours_s": round(ours_s, 2), "raw_s": round(raw_s, 2),
              "ours_msg_per_s": round(n / ours_s, 1), "raw_msg_per_s": round(n / raw_s, 1),
              "ratio": round(raw_s / ours_s, 3), "target": 0.5, "settle_s": round(settle_s, 2),
              "ours_cpu_s": round(ours_cpu_s, 2), "raw_cpu_s": round(raw_cpu_s, 2),
              "batches": settings.batches, "batch_size": settings.batch_size, "avg_size": sum(len(m[2]) for m in messages) // len(messages)}
    return result


def report(r: dict) -> None:
    print(f"\n{'':34}{'messages/s':>12}{'seconds':>10}")
    print(f"{'outbound (templated, tracked)':34}{r['ours_msg_per_s']:>12}{r['ours_s']:>10}")
    print(f"{'raw aiosmtplib loop':34}{r['raw_msg_per_s']:>12}{r['raw_s']:>10}")
    print(f"(CPU of the process: {r['ours_cpu_s']} s for outbound, {r['raw_cpu_s']} s for the raw loop)")
    print(f"({r['messages']} messages of {r['avg_size']} bytes each, local SMTP sink; the request documents "
          f"took {r['settle_s']} s more to settle, after the last send)")
    out = RUN_DIR / "bench" / "outbound.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(r, indent=2))
    print(f"bench outbound: ratio={r['ratio']} target={r['target']}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--messages", type=int, default=5000)
    report(asyncio.run(main(parser.parse_args().messages)))
