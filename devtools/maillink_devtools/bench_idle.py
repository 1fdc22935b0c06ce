"""make bench-idle: 1,000 idle accounts on one ingest process, against Dovecot on loopback.

The shared Dovecot keeps its limits; this bench starts a private instance of its own (its own
ports and directory under the bench's run dir) with the limits raised through dovecot.sh's
DOVECOT_* variables: every account holds a sync connection plus one IDLE connection per watched
folder (INBOX and Sent: 3,000 connections), served by imap processes of 100 clients each.

Once every account reported `synced`, it measures the ingest process's RSS, its CPU over 60 s of
idling, and then the time from APPENDing one message to each of 20 random accounts until each is
published on mail.message.received.v1.
"""
import argparse
import asyncio
import imaplib
import json
import os
import random
import signal
import sys
import subprocess
import time
import uuid
from pathlib import Path

from .imap_load import login
from .ingest_process import RUN_DIR, stop_all, Arrivals, IngestUnderTest, Mailbox, percentile
from .mailgen import Mail

ROOT = Path(__file__).resolve().parents[2]
HOST = "127.0.0.1"
PORT, TLS_PORT = int(os.environ.get("IDLE_IMAP_PORT", "14143")), int(os.environ.get("IDLE_IMAPS_PORT", "14993"))
DOVECOT_ENV = {"MAILLINK_RUN_DIR": str(RUN_DIR / "bench" / "idle"), "IMAP_PORT": str(PORT), "IMAPS_PORT": str(TLS_PORT),
               "DOVECOT_IMAP_PROCESS_LIMIT": "200", "DOVECOT_IMAP_CLIENT_LIMIT": "100",
               "DOVECOT_IMAP_SERVICE_COUNT": "0",
               "DOVECOT_CLIENT_LIMIT": "10000", "DOVECOT_LOGIN_SERVICE_COUNT": "0"}


def dovecot(*args: str) -> None:
    subprocess.run(["bash", str(ROOT / "deploy/local/dovecot.sh"), *args], check=True, env={**os.environ, **DOVECOT_ENV})


def mailboxes(count: int) -> list[Mailbox]:
    users = Path(DOVECOT_ENV["MAILLINK_RUN_DIR"]) / "dovecot" / "users.d"
    boxes = [Mailbox(f"idle{i:04d}@example.com", f"idle-password-{i}", f"idle-{i:04d}") for i in range(count)]
    for box in boxes:
        if not (users / box.email).exists():  # kept between runs: adding 1,000 users takes a while
            dovecot("adduser", box.email, box.password)
    return boxes


def connections(pid: int) -> int:
    return sum(1 for fd in Path(f"/proc/{pid}/fd").iterdir() if os.readlink(fd).startswith("socket:"))


async def measure(count: int, idle_s: float, probes: int) -> dict:
    boxes = mailboxes(count)
    env = {"INGEST_RELIST_INTERVAL_S": "300"}  # the documented setting for many idle accounts
    async with IngestUnderTest("benchidle", env) as ingest:
        started = time.monotonic()
        await ingest.add_accounts(HOST, PORT, boxes, ["INBOX", "Sent"])
        sync_s = await ingest.wait_synced({b.account_id for b in boxes}, timeout=120 + count * 0.9)
        print(f"{count} accounts synced {time.monotonic() - started:.0f}s after they were published", flush=True)
        await asyncio.sleep(15)  # let the IDLE watchers settle
        sockets = connections(ingest.pid)
        rss = ingest.rss_mb()
        cpu0, t0 = ingest.cpu_s(), time.monotonic()
        await asyncio.sleep(idle_s)
        cpu = (ingest.cpu_s() - cpu0) / (time.monotonic() - t0) * 100
        rss_after = ingest.rss_mb()
        chosen = random.sample(boxes, probes)
        sent: dict[str, float] = {}
        async with Arrivals(ingest.topic("mail.message.received.v1")) as arrivals:
            for box in chosen:
                message_id = f"idle-{uuid.uuid4().hex[:10]}@bench.example"
                raw = Mail(sender="jan@acme.cz", to=[box.email], subject="new mail", body="hello",
                           message_id=f"<{message_id}>").to_bytes()
                # In a thread: blocking IMAP calls on the event loop would stop the consumer that
                # timestamps arrivals (20 APPENDs of ~60 ms each once made the first probe look 1.2 s late).
                typ, data = await asyncio.to_thread(_append, box, raw, message_id, sent)
                assert typ == "OK", data
            await arrivals.wait_for(set(sent), timeout=120)
            seen = dict(arrivals.seen)
        missing = [m for m in sent if m not in seen]
        assert not missing, f"{len(missing)} of {probes} new messages never published"
        latencies = [(seen[m] - t) * 1000 for m, t in sent.items()]
        return {"accounts": count, "sync_s": sync_s, "sockets": sockets, "rss_mb": max(rss, rss_after),
                "rss_mb_before_idle": rss, "cpu_percent": cpu, "idle_s": idle_s,
                "new_mail_ms": {"p50": percentile(latencies, 50), "max": max(latencies),
                                "all_published_ms": (max(seen[m] for m in sent) - min(sent.values())) * 1000},
                "latencies_ms": latencies}


def _append(box: Mailbox, raw: bytes, message_id: str, sent: dict[str, float]):
    conn = imaplib.IMAP4(HOST, PORT)
    try:
        login(conn, box.email, box.password)
        sent[message_id] = time.time()
        return conn.append("INBOX", None, imaplib.Time2Internaldate(time.time()), raw)
    finally:
        conn.logout()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--accounts", type=int, default=1000)
    parser.add_argument("--idle-seconds", type=float, default=60)
    parser.add_argument("--probes", type=int, default=20)
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # a killed bench still stops what it started
    dovecot("start")
    try:
        result = asyncio.run(measure(args.accounts, args.idle_seconds, args.probes))
    finally:
        stop_all()
        dovecot("stop")
    load = os.getloadavg()
    n = result["new_mail_ms"]
    print(f"\n{args.accounts} idle accounts on one ingest process ({result['sockets']} sockets), load {load[0]:.2f}")
    print(f"  RSS                                   {result['rss_mb']:>8.0f} MB      (target <= 300 MB)")
    print(f"  CPU while idle, over {args.idle_seconds:.0f} s              {result['cpu_percent']:>8.2f} % of a core (target < 5 %)")
    print(f"  new mail in {args.probes} random accounts, APPEND -> event: p50 {n['p50']:.0f} ms, "
          f"max {n['max']:.0f} ms (target: each within 1000 ms)")
    out = RUN_DIR / "bench" / "idle.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({**result, "load": load}, indent=2))
    print(f"bench idle: rss_mb={result['rss_mb']:.0f} target=300")


if __name__ == "__main__":
    main()
