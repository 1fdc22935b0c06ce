"""make bench-bcc: accepted messages/s of the Smart Bcc gateway vs a bare aiosmtpd sink, same run.

(a) the yardstick: aiosmtpd's own Sink handler (`python -m aiosmtpd -c aiosmtpd.handlers.Sink`),
    which accepts every message and does nothing with it;
(b) bcc-gateway with its sender checks on: directory checks at MAIL/RCPT, From check, SPF + DKIM +
    DMARC against a loopback dnsmasq, the blob written (fsync) and mail.message.received.v1
    acknowledged by Kafka (acks=all) before each 250.
The same concurrent client (aiosmtplib, CONNECTIONS persistent connections) sends the same
MESSAGES messages to each; a quarter of them are DKIM-signed. Target: the gateway reaches at least
half the sink's rate.
"""
import argparse
import asyncio
import json
import os
import re
import secrets
import subprocess
import sys
import tempfile
import time
import uuid
from email.utils import format_datetime
from datetime import datetime, timezone
from pathlib import Path

import aiosmtplib
import httpx

from . import tokens
from .bcc_harness import dkim_key, free_port, start_dns
from .kafka_tools import produce, read_topic, wait_group_caught_up
from .processes import ServiceSet

ROOT = Path(__file__).resolve().parents[2]
RUN_DIR = Path(os.environ.get("MAILLINK_BENCH_RUN_DIR", ROOT / ".run"))
KAFKA = os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9092")
MONGODB_URL = os.environ.get("MONGODB_URL", "mongodb://127.0.0.1:27017/")
DOMAIN, SENDER_DOMAIN, TARGET = "bcc.bench.test", "bench.test", 0.5


def messages(count: int, users: list[str], signer) -> list[tuple[str, bytes]]:
    body = ("Thanks for the call today. As discussed, the pricing for 50 seats is attached and the pilot "
            "can start next week.\r\n") * 12
    out = []
    for i in range(count):
        sender = users[i % len(users)]
        raw = (f"From: {sender}\r\nTo: jan{i}@acme.example\r\nSubject: Pricing {i}\r\n"
               f"Date: {format_datetime(datetime.now(timezone.utc))}\r\nMessage-ID: <{uuid.uuid4().hex}@{SENDER_DOMAIN}>"
               f"\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n{body}").encode()
        out.append((sender, signer(raw) if i % 4 == 0 else raw))
    return out


async def blast(port: int, to: str, load: list[tuple[str, bytes]], connections: int) -> tuple[float, int]:
    queue: asyncio.Queue = asyncio.Queue()
    for item in load:
        queue.put_nowait(item)
    refused = 0

    async def worker() -> None:
        nonlocal refused
        client = aiosmtplib.SMTP(hostname="127.0.0.1", port=port, timeout=120, start_tls=False)
        await client.connect()
        try:
            while not queue.empty():
                sender, raw = queue.get_nowait()
                try:
                    await client.sendmail(sender, [to], raw)
                except aiosmtplib.SMTPException as exc:
                    refused += 1
                    if refused <= 3:
                        print(f"  refused: {exc}", file=sys.stderr)
                    await client.rset()
        finally:
            await client.quit()

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(connections)))
    return time.perf_counter() - started, refused


def stage_means(metrics: str) -> dict[str, float]:
    """Mean milliseconds per step, from the gateway's maillink_bcc_stage_seconds histogram."""
    sums = dict(re.findall(r'maillink_bcc_stage_seconds_sum\{stage="(\w+)"\} ([0-9.e+-]+)', metrics))
    counts = dict(re.findall(r'maillink_bcc_stage_seconds_count\{stage="(\w+)"\} ([0-9.e+-]+)', metrics))
    return {k: 1000 * float(sums[k]) / float(counts[k]) for k in sums if float(counts.get(k, 0))}


def wait_port(port: int, process: subprocess.Popen, timeout: float = 30) -> None:
    import socket
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError("the SMTP sink exited")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.1)
    raise TimeoutError(f"nothing listening on {port}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--messages", type=int, default=2000)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--users", type=int, default=20)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-bcc-"))
    namespace = f"bench{uuid.uuid4().hex[:8]}."
    key = dkim_key("bench", SENDER_DOMAIN)
    dns_server = start_dns({SENDER_DOMAIN: "v=spf1 ip4:127.0.0.1 -all", f"_dmarc.{SENDER_DOMAIN}": "v=DMARC1; p=reject",
                            key.record_name: key.record}, ["test"], work / "dnsmasq.log")
    users = [f"user{i}@{SENDER_DOMAIN}" for i in range(args.users)]
    load = messages(args.messages, users, key.sign)
    procs, sink = ServiceSet(), None
    try:
        sink_port = free_port()
        sink = subprocess.Popen([sys.executable, "-m", "aiosmtpd", "-n", "-c", "aiosmtpd.handlers.Sink",
                                 "-l", f"127.0.0.1:{sink_port}"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_port(sink_port, sink)
        print(f"sink: {args.messages} messages over {args.connections} connections…", flush=True)
        sink_s, sink_refused = asyncio.run(blast(sink_port, f"anyone@{DOMAIN}", load, args.connections))

        tokens.init_keys(work / "auth")
        http_port, smtp_port = free_port(), free_port()
        env = {"MAILLINK_JWKS_FILE": str(work / "auth" / "jwks.json"), "MAILLINK_LINK_KEYS": secrets.token_hex(16),
               "MAILLINK_NAMESPACE": namespace, "KAFKA_BOOTSTRAP_SERVERS": KAFKA, "MONGODB_URL": MONGODB_URL,
               "BCC_GATEWAY_SMTP_PORT": str(smtp_port), "BCC_GATEWAY_DOMAIN": DOMAIN, "LOG_LEVEL": "WARNING",
               "BCC_GATEWAY_DNS_HOST": "127.0.0.1", "BCC_GATEWAY_DNS_PORT": str(dns_server.port),
               "BCC_GATEWAY_BLOB_DIR": str(work / "blobs"), "BCC_GATEWAY_TLS_DIR": str(work / "tls")}
        procs.start("bcc_gateway", http_port, env, work / "logs")
        procs.wait_healthy()
        from maillink_bcc_gateway.domain.recipients import company_address
        from maillink_schemas.crm import UserUpserted
        records = [(f"u{i}".encode(), UserUpserted(user_id=f"u{i}", company_id="c-bench", login_email=u, emails=[u])
                    .model_dump_json().encode()) for i, u in enumerate(users)]
        asyncio.run(produce(KAFKA, f"{namespace}crm.users.v1", records))
        asyncio.run(wait_group_caught_up(KAFKA, f"{namespace}maillink-bcc-gateway", f"{namespace}crm.users.v1"))
        print(f"bcc-gateway: {args.messages} messages over {args.connections} connections…", flush=True)
        gw_s, gw_refused = asyncio.run(blast(smtp_port, company_address("c-bench", DOMAIN), load, args.connections))
        published = len(asyncio.run(read_topic(KAFKA, f"{namespace}mail.message.received.v1", expect=args.messages)))
        stages = stage_means(httpx.get(f"http://127.0.0.1:{http_port}/metrics").text)
    finally:
        procs.stop()
        if sink is not None:
            sink.terminate()
            sink.wait(10)
        dns_server.stop()

    sink_rate, gw_rate = args.messages / sink_s, (args.messages - gw_refused) / gw_s
    ratio = gw_rate / sink_rate
    rows = [("aiosmtpd Sink (yardstick)", sink_s, sink_rate, args.messages - sink_refused, "-"),
            ("bcc-gateway, checks on", gw_s, gw_rate, args.messages - gw_refused, str(published))]
    print(f"\n{'':28} {'seconds':>8} {'msg/s':>8} {'accepted':>9} {'published':>10}")
    for name, seconds, rate, accepted, pub in rows:
        print(f"{name:28} {seconds:8.2f} {rate:8.0f} {accepted:9d} {pub:>10}")
    print("gateway, mean ms per message: " + ", ".join(f"{k} {v:.1f}" for k, v in sorted(stages.items())))
    result = {"messages": args.messages, "connections": args.connections, "users": args.users,
              "sink": {"seconds": sink_s, "msg_per_s": sink_rate, "refused": sink_refused},
              "gateway": {"seconds": gw_s, "msg_per_s": gw_rate, "refused": gw_refused, "published": published,
                          "stage_ms": stages},
              "ratio": ratio, "target": TARGET, "cpu_count": os.cpu_count()}
    out = RUN_DIR / "bench" / "bcc.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2))
    if gw_refused or published != args.messages:
        print(f"WARNING: {gw_refused} refused, {published} published of {args.messages}", file=sys.stderr)
    print(f"bench bcc: ratio={ratio:.2f} target={TARGET}")


if __name__ == "__main__":
    main()
