"""make bench-latency: new-mail latency of one idle account, from APPEND to the event on Kafka.

One real ingest process (default settings: 15 s between full passes) syncs one mailbox on the
local Dovecot. Once it reports `synced`, 200 messages are APPENDed one at a time, 250 ms apart,
each with its own Message-ID; a consumer on mail.message.received.v1 notes when each one's event
arrives. Latency = arrival - the moment the APPEND command was sent. A message that waited for
the poll interval shows up as a 15 s outlier in p99 and max.
"""
import argparse
import asyncio
import imaplib
import json
import os
import signal
import sys
import time
import uuid

from .imap_load import login
from .ingest_process import RUN_DIR, stop_all, Arrivals, IngestUnderTest, Mailbox, percentile
from .mailgen import Mail

HOST, PORT = "127.0.0.1", int(os.environ.get("IMAP_PORT", "10143"))


async def measure(count: int, gap_s: float) -> dict:
    import subprocess
    from pathlib import Path
    email, password = f"lat{uuid.uuid4().hex[:8]}@example.com", uuid.uuid4().hex
    subprocess.run(["bash", str(Path(__file__).resolve().parents[2] / "deploy/local/dovecot.sh"), "adduser",
                    email, password], check=True)
    box = Mailbox(email, password, f"lat-{uuid.uuid4().hex[:8]}")
    async with IngestUnderTest("benchlat") as ingest:
        print(f"ingest up (pid {ingest.pid}); adding the account…", flush=True)
        await ingest.add_accounts(HOST, PORT, [box], ["INBOX", "Sent"])
        took = await ingest.wait_synced({box.account_id}, timeout=120)
        print(f"account synced after {took:.1f}s; appending…", flush=True)
        await asyncio.sleep(1)  # settle into IDLE
        conn = imaplib.IMAP4(HOST, PORT)
        login(conn, email, password)
        sent: dict[str, float] = {}
        async with Arrivals(ingest.topic("mail.message.received.v1")) as arrivals:
            for i in range(count):
                message_id = f"lat-{i}-{uuid.uuid4().hex[:8]}@bench.example"
                raw = Mail(sender="jan@acme.cz", to=[email], subject=f"latency {i}", body=f"message {i}",
                           message_id=f"<{message_id}>").to_bytes()
                sent[message_id] = time.time()
                typ, data = await asyncio.to_thread(conn.append, "INBOX", None, imaplib.Time2Internaldate(time.time()), raw)
                assert typ == "OK", data
                await asyncio.sleep(max(0.0, sent[message_id] + gap_s - time.time()))
            await arrivals.wait_for(set(sent), timeout=60)
            seen = dict(arrivals.seen)
        conn.logout()
    missing = [m for m in sent if m not in seen]
    assert not missing, f"{len(missing)} of {count} messages never published"
    return {m: (seen[m] - t) * 1000 for m, t in sent.items()}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--messages", type=int, default=200)
    parser.add_argument("--gap-ms", type=float, default=250)
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # a killed bench still stops what it started
    try:
        latencies = list(asyncio.run(measure(args.messages, args.gap_ms / 1000)).values())
    finally:
        stop_all()
    p50, p99, worst = percentile(latencies, 50), percentile(latencies, 99), max(latencies)
    load = os.getloadavg()
    print(f"{args.messages} messages APPENDed {args.gap_ms:.0f} ms apart to one idle account (load {load[0]:.2f})")
    print(f"APPEND -> event on Kafka: p50 {p50:.0f} ms   p99 {p99:.0f} ms   max {worst:.0f} ms   "
          f"(targets: p50 <= 300 ms, p99 <= 1000 ms)")
    out = RUN_DIR / "bench" / "latency.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"messages": args.messages, "gap_ms": args.gap_ms, "p50_ms": p50, "p99_ms": p99,
                               "max_ms": worst, "load": load, "latencies_ms": latencies}, indent=2))
    print(f"bench latency: p99_ms={p99:.0f} target=1000")


if __name__ == "__main__":
    main()
