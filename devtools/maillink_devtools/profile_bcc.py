"""CPU per message of the Smart Bcc gateway's SMTP side, in this process, against the sink's (an aid
to make bench-bcc, not a benchmark of record: run it under flock /tmp/maillink-bench.lock too).

    python -m maillink_devtools.profile_bcc gateway|sink|bare [--load mix|small] [--messages N] [--rounds R]
                                            [--profile FILE]

`gateway`: the real handler (entrypoints/smtp.py) on uvloop with the real checks against a private
dnsmasq serving the bench's records, the blob written and flushed to a temporary local store
through the real group commit, and each event built and serialised; only Kafka is left out (the
publish is the event's JSON). `sink`: aiosmtpd's Sink as smtp_sink.py serves it (asyncio's loop). `bare`: the gateway's SMTP
class (its DATA reader and address parse) on uvloop with aiosmtpd's Sink as the handler: what its
protocol layer costs without any check, store or event (0.19-0.26 ms a mix message against the
sink's 0.54-0.61 ms, stop 18). The load is
make bench-bcc's (--load small: 2 KB messages, a quarter DKIM-signed; --load mix: mailgen's mix, all signed; 20 users) from bench_bcc's client over 64
connections in another process, so only the server's work is counted (time.process_time). With
--profile the last round runs under cProfile and its stats are written to FILE.
"""
import argparse
import asyncio
import cProfile
import gc
import pickle
import shutil
import sys
import tempfile
import time
from pathlib import Path

from aiosmtpd.handlers import Sink
from aiosmtpd.smtp import DATA_SIZE_DEFAULT, SMTP

from maillink_bcc_gateway.adapters.auth_checks import AuthChecker
from maillink_bcc_gateway.adapters.directory import Directory
from maillink_bcc_gateway.commit import GroupCommit
from maillink_bcc_gateway.domain.recipients import company_address
from maillink_bcc_gateway.entrypoints.smtp import GatewayHandler, GatewaySMTP, serve_smtp
from maillink_bcc_gateway.intake import IntakeDeps
from maillink_runtime import logs
from maillink_runtime.blobs import open_blob_store

from .bcc_harness import dkim_key, free_port, start_dns
from .fs_settle import settle
from .bench_bcc import DOMAIN, LOADS, SENDER_DOMAIN

CLIENT = """
import asyncio, pickle, sys
from maillink_devtools.bench_bcc import blast
load = pickle.loads(open(sys.argv[1], "rb").read())
seconds, refused = asyncio.run(blast(int(sys.argv[2]), sys.argv[3], load, int(sys.argv[4])))
if refused:
    sys.exit(f"{refused} refused")
"""


async def serve(side: str, work: Path, key, users: list[str], dns_port: int | None) -> tuple[asyncio.AbstractServer, int, str]:
    port = free_port()
    if side == "sink":
        server = await asyncio.get_running_loop().create_server(
            lambda: SMTP(Sink(), data_size_limit=DATA_SIZE_DEFAULT), "127.0.0.1", port)
        return server, port, f"anyone@{DOMAIN}"
    if side == "bare":  # the gateway's SMTP class on uvloop with aiosmtpd's Sink: its protocol cost alone
        server = await asyncio.get_running_loop().create_server(
            lambda: GatewaySMTP(Sink(), data_size_limit=DATA_SIZE_DEFAULT), "127.0.0.1", port)
        return server, port, f"anyone@{DOMAIN}"
    directory = Directory(None, None)
    for number, user in enumerate(users):
        directory.apply_user({"_id": f"u{number}", "company_id": "c-bench", "login_email": user})
    blobs = open_blob_store(f"file://{work / 'blobs'}", owner="bcc-gateway")

    async def publish(events) -> None:  # what the gateway hands to aiokafka, without the broker
        [(event.kafka_key, event.payload) for event in events]

    handler = GatewayHandler(IntakeDeps(directory, GroupCommit(blobs, publish).commit,
                                        AuthChecker("127.0.0.1", dns_port, 5)), DOMAIN)
    server = await serve_smtp(handler, "127.0.0.1", port, "gateway.bench.test", 20 * 2**20, None)
    return server, port, company_address("c-bench", DOMAIN)


async def run(args, work: Path, key, users: list[str], dns_port: int | None) -> None:
    server, port, to = await serve(args.side, work, key, users, dns_port)
    if args.gc_freeze:
        gc.freeze()
    if args.gc_threshold:
        gc.set_threshold(*args.gc_threshold)
    load_file = work / "load.pkl"
    try:
        for number in range(1, args.rounds + 1):
            load_file.write_bytes(pickle.dumps(LOADS[args.load](args.messages, users, key.sign)))
            profile = cProfile.Profile() if args.profile and number == args.rounds else None
            started = time.process_time()
            if profile:
                profile.enable()
            client = await asyncio.create_subprocess_exec(sys.executable, "-c", CLIENT, str(load_file), str(port), to,
                                                          str(args.connections))
            if await client.wait():
                raise RuntimeError("the client failed")
            if profile:
                profile.disable()
                profile.dump_stats(args.profile)
            spent = time.process_time() - started
            print(f"{args.side} round {number}: {1000 * spent / args.messages:.3f} ms of server CPU per message"
                  f"{' (profiled)' if profile else ''}", flush=True)
    finally:
        server.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("side", choices=("gateway", "sink", "bare"))
    parser.add_argument("--messages", type=int, default=2000)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--load", choices=sorted(LOADS), default="small", help="make bench-bcc's loads")
    parser.add_argument("--profile", help="write the last round's cProfile stats here")
    parser.add_argument("--loop", choices=("default", "asyncio", "uvloop"), default="default",
                        help="event loop of the server (default: the gateway's uvloop, the sink's asyncio)")
    parser.add_argument("--gc-freeze", action="store_true", help="gc.freeze() once the server is up")
    parser.add_argument("--gc-threshold", type=int, nargs=3, help="gc.set_threshold(...) once the server is up")
    args = parser.parse_args()
    logs.configure("bcc-gateway", "WARNING")  # as make bench-bcc runs it
    work = Path(tempfile.mkdtemp(prefix="profile-bcc-"))
    key = dkim_key("bench", SENDER_DOMAIN)
    users = [f"user{i}@{SENDER_DOMAIN}" for i in range(20)]
    dns_server = None
    if args.side == "gateway":
        dns_server = start_dns({SENDER_DOMAIN: "v=spf1 ip4:127.0.0.1 -all", f"_dmarc.{SENDER_DOMAIN}": "v=DMARC1; p=reject",
                                key.record_name: key.record}, ["test"], work / "dnsmasq.log")
    try:
        if args.side == "gateway":
            settle(work / "settle")  # the gateway creates a file per message (fs_settle.py)
        main_coroutine = run(args, work, key, users, dns_server.port if dns_server else None)
        if args.loop == "uvloop" or (args.loop == "default" and args.side in ("gateway", "bare")):
            # each by default on the loop it runs on in make bench-bcc
            import uvloop
            uvloop.run(main_coroutine)
        else:
            asyncio.run(main_coroutine)
    finally:
        if dns_server:
            dns_server.stop()
        shutil.rmtree(work, ignore_errors=True)  # its blobs (a run of 3 rounds left ~100 MB in /tmp)


if __name__ == "__main__":
    main()
