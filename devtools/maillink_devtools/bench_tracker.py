"""make bench-tracker: the open pixel under load, against Debian's nginx serving the same GIF.

Same run, same machine, same load: wrk (Debian) with the same threads, connections, duration and
script (wrk_pixels.lua: the pixels of --messages registered messages in turn) against (a) nginx
with --workers workers, a private config on a loopback port (deploy/local/nginx/), (b) a bare
ASGI app under uvicorn, and (c) --workers tracker processes sharing the public listener's port
(SO_REUSEPORT; edge only: TRACKER_AGGREGATE=false), each of which verifies the token, classifies
the request and has Kafka acknowledge its event (acks=all) before it answers. Then the p99 at 25 %
of nginx's rate, with wrk paced to that rate (Debian's wrk has no rate option; see wrk_pixels.lua).

Then the check that matters as much as the speed: every counted request became exactly one event.
The trackers' count of acknowledged events must equal their counted requests and the number of
records on the (fresh, namespaced) topic, with no duplicate event id; and the requests wrk saw
answered must all be among them (at most one in-flight request per connection may be answered
after wrk stopped counting). docs/tracker.md, Benchmark, explains the method and the figures.
"""
import argparse
import asyncio
import json
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import time
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path

import httpx
from aiokafka import AIOKafkaConsumer, TopicPartition
from prometheus_client.parser import text_string_to_metric_families

from maillink_schemas import tracking_token as tt
from maillink_schemas.tracking import TrackedLink, TrackingRegistered

from .kafka_tools import forget_namespace, produce
from .processes import ServiceSet

ROOT = Path(__file__).resolve().parents[2]
RUN_DIR = Path(os.environ.get("MAILLINK_RUN_DIR", ROOT / ".run"))
KAFKA = os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9092")
MONGODB_URL = os.environ.get("MONGODB_URL", "mongodb://127.0.0.1:27017/")
TARGET = 0.25
# The tracker's pixel, byte for byte (services/tracker/maillink_tracker/entrypoints/public.py).
GIF_B64 = "R0lGODlhAQABAIAAAP///wAAACH5BAEAAAAALAAAAAABAAEAAAICRAEAOw=="


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_nginx(work: Path, workers: int) -> tuple[subprocess.Popen, str]:
    nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    port = free_port()
    for sub in ("www", "tmp"):
        (work / sub).mkdir(parents=True, exist_ok=True)
    import base64
    (work / "www" / "pixel.gif").write_bytes(base64.b64decode(GIF_B64))
    conf = (ROOT / "deploy/local/nginx/tracker-bench.conf.in").read_text()
    (work / "nginx.conf").write_text(conf.replace("@DIR@", str(work)).replace("@PORT@", str(port))
                                          .replace("@WORKERS@", str(workers)))
    proc = subprocess.Popen([nginx, "-c", str(work / "nginx.conf"), "-p", str(work)],
                            stdout=subprocess.DEVNULL, stderr=open(work / "nginx.stderr", "wb"))
    url = f"http://127.0.0.1:{port}"
    for _ in range(100):
        try:
            if httpx.get(f"{url}/o/x").status_code == 200:
                return proc, url
        except httpx.HTTPError:
            time.sleep(0.1)
    raise RuntimeError(f"nginx did not start; see {work}/error.log and nginx.stderr")


def bare_server(port: int) -> None:
    """The ceiling for any Python service here: the same GIF from a bare ASGI app under the same
    uvicorn (uvloop + httptools), no token, no classification, no Kafka."""
    import base64

    import uvicorn

    gif = base64.b64decode(GIF_B64)
    headers = [(b"content-type", b"image/gif"), (b"content-length", str(len(gif)).encode()),
               (b"cache-control", b"no-store, no-cache, must-revalidate, max-age=0")]

    async def app(scope, receive, send):
        if scope["type"] == "http":
            await send({"type": "http.response.start", "status": 200, "headers": headers})
            await send({"type": "http.response.body", "body": gif})

    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False, loop="uvloop",
                http="httptools", lifespan="off")


def start_bare() -> tuple[subprocess.Popen, str]:
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "maillink_devtools.bench_tracker", "--bare-server", str(port)])
    url = f"http://127.0.0.1:{port}"
    for _ in range(100):
        try:
            httpx.get(f"{url}/o/x")
            return proc, url
        except httpx.HTTPError:
            time.sleep(0.1)
    raise RuntimeError("the bare reference server did not start")


SCRIPT = Path(__file__).with_name("wrk_pixels.lua")


def wrk(url: str, threads: int, connections: int, duration: int, paths: Path, delay_ms: float | None = None) -> dict:
    """Requests cycle through the pixel paths in `paths` (wrk_pixels.lua). `delay_ms`: each
    connection waits this long after an answer before its next request, which fixes the offered
    rate near connections * 1000 / (delay + latency)."""
    out = subprocess.run(["wrk", f"-t{threads}", f"-c{connections}", f"-d{duration}s", "--latency", "-s", str(SCRIPT),
                          url], capture_output=True, text=True, check=True,
                         env={**os.environ, "WRK_DELAY_MS": f"{delay_ms or 0:.3f}", "WRK_PATHS_FILE": str(paths)}).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    total = int(re.search(r"(\d+) requests in", out).group(1))
    non2xx = int(m.group(1)) if (m := re.search(r"Non-2xx or 3xx responses: (\d+)", out)) else 0
    errors = sum(int(x) for x in m.groups()) if (m := re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)) else 0
    latency = {p: _ms(v) for p, v in re.findall(r"^\s+(50|75|90|99)%\s+([\d.]+\w+)", out, re.M)}
    mean = _ms(re.search(r"Latency\s+([\d.]+\w+)", out).group(1))
    return {"rps": rps, "requests": total, "non_2xx": non2xx, "socket_errors": errors, "mean_ms": mean,
            "p50_ms": latency.get("50"), "p99_ms": latency.get("99"), "raw": out}


def _ms(value: str) -> float:
    number, unit = re.fullmatch(r"([\d.]+)(\w+)", value).groups()
    return float(number) * {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0}[unit]


_TICK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """User + system CPU of a process and its children (nginx's worker, uvicorn's nothing else)."""
    total, pids = 0.0, [pid]
    try:
        pids += [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        pass
    for p in pids:
        try:
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / _TICK
        except (OSError, IndexError, ValueError):
            pass
    return total


def summary(runs: list[dict]) -> dict:
    """Medians over rounds (requests: the total)."""
    return {"rps": statistics.median(r["rps"] for r in runs), "p50_ms": statistics.median(r["p50_ms"] for r in runs),
            "p99_ms": statistics.median(r["p99_ms"] for r in runs), "requests": sum(r["requests"] for r in runs),
            "non_2xx": sum(r["non_2xx"] for r in runs), "socket_errors": sum(r["socket_errors"] for r in runs),
            "cpu_us_per_request": round(sum(r["cpu_s"] for r in runs) / max(1, sum(r["requests"] for r in runs)) * 1e6, 1)}


def metric(url: str, name: str, **labels: str) -> float:
    text = httpx.get(f"{url}/metrics").text
    return sum(s.value for f in text_string_to_metric_families(text) for s in f.samples
               if s.name == name and all(s.labels.get(k) == v for k, v in labels.items()))


async def topic_events(topic: str) -> tuple[int, int]:
    """(records on the topic, distinct event ids among them)."""
    consumer = AIOKafkaConsumer(bootstrap_servers=KAFKA, group_id=None, enable_auto_commit=False,
                                auto_offset_reset="earliest", fetch_max_bytes=50 * 1024 * 1024)
    await consumer.start()
    try:
        partitions = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or
                      (await consumer._client.fetch_all_metadata()).partitions_for_topic(topic)]
        ends = await consumer.end_offsets(partitions)
        total = sum(ends.values())
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        ids, read = set(), 0
        while read < total:
            for records in (await consumer.getmany(timeout_ms=1000, max_records=20000)).values():
                for record in records:
                    read += 1
                    ids.add(json.loads(record.value)["event_id"])
        return total, len(ids)
    finally:
        await consumer.stop()


def paced_p99(url: str, rate: float, threads: int, connections: int, duration: int, paths: Path,
              tries: int = 4) -> dict:
    """p99 at a fixed offered rate (wrk_pace.lua): the per-connection delay is calibrated from each
    run's achieved rate and mean latency; the run closest to `rate` is reported, with its rate."""
    delay = connections * 1000 / rate
    runs = []
    for _ in range(tries):
        run = wrk(url, threads, connections, duration, paths, delay_ms=delay)
        run["delay_ms"] = round(delay, 3)
        runs.append(run)
        if run["rps"] and abs(run["rps"] - rate) / rate <= 0.05:
            break
        # rate = C * 1000 / (delay + latency): solve for the delay that gives `rate` at this latency.
        cycle = connections * 1000 / max(run["rps"], 1.0)
        latency = max(cycle - delay, run["mean_ms"])
        delay = max(0.0, connections * 1000 / rate - latency)
    best = min(runs, key=lambda r: abs(r["rps"] - rate))
    return {**{k: v for k, v in best.items() if k != "raw"}, "target_rps": round(rate, 1), "calibration_runs": len(runs),
            "answered_in_all_runs": sum(r["requests"] - r["non_2xx"] for r in runs)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=int, default=3, help="seconds of load per target and round")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds; the figures are medians")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--connections", type=int, default=128,
                        help="wrk connections at full load: pixels come from many clients at once, and each "
                        "request waits for Kafka's ack, so throughput needs concurrency")
    parser.add_argument("--workers", type=int, default=1,
                        help="tracker processes sharing the public port (SO_REUSEPORT); nginx gets as many workers")
    parser.add_argument("--paced-connections", type=int, default=64,
                        help="wrk connections for the p99 at 25%% of nginx's rate (paced, see wrk_pace.lua)")
    parser.add_argument("--messages", type=int, default=64,
                        help="tracked messages whose pixels the load cycles through (registered first)")
    parser.add_argument("--linger-ms", type=int, default=None, help="TRACKER_PUBLISH_LINGER_MS for the tracker")
    parser.add_argument("--bare-server", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.bare_server:
        return bare_server(args.bare_server)
    for tool in ("wrk", "nginx"):
        if not (shutil.which(tool) or Path(f"/usr/sbin/{tool}").exists()):
            raise SystemExit(f"{tool} is missing: scripts/bootstrap.sh installs it (APT_PKGS)")

    namespace = f"bench{uuid.uuid4().hex[:8]}."
    work = RUN_DIR / "bench" / f"tracker-{namespace.rstrip('.')}"
    work.mkdir(parents=True, exist_ok=True)
    keys = "1:2020-01-01:" + uuid.uuid4().hex + uuid.uuid4().hex
    jwks = RUN_DIR / "auth" / "jwks.json"
    if not jwks.exists():
        from . import tokens
        tokens.init_keys(work / "auth")
        jwks = work / "auth" / "jwks.json"
    public_port = free_port()
    env = {"MAILLINK_NAMESPACE": namespace, "KAFKA_BOOTSTRAP_SERVERS": KAFKA, "MONGODB_URL": MONGODB_URL,
           "MAILLINK_JWKS_FILE": str(jwks), "MAILLINK_TRACKING_KEYS": keys, "TRACKER_AGGREGATE": "false",
           "TRACKER_PUBLIC_PORT": str(public_port), "TRACKER_PUBLIC_HOST": "127.0.0.1",
           "LOG_LEVEL": "WARNING", **({"TRACKER_PUBLISH_LINGER_MS": str(args.linger_ms)}
                                      if args.linger_ms is not None else {})}
    ring = tt.parse_keys(keys, timedelta(days=30))
    message_keys = [uuid.uuid4().hex for _ in range(args.messages)]
    pixel_paths = [f"/o/{tt.mint(ring, key, 'open')}" for key in message_keys]
    pixel_path = pixel_paths[0]
    paths_file = work / "pixels.txt"
    paths_file.write_text("".join(f"{p}\n" for p in pixel_paths))

    procs = ServiceSet()
    nginx, nginx_url = start_nginx(work, args.workers)
    try:
        trackers = [procs.start(f"tracker{i}", free_port(), env, work, service="tracker") for i in range(args.workers)]
        procs.wait_healthy()
        public_url = f"http://127.0.0.1:{public_port}"
        registrations = [
            (key.encode(), TrackingRegistered(
                event_id=uuid.uuid4().hex, occurred_at=datetime.now(timezone.utc), message_key=key,
                account_id="bench-account", user_id="bench-user", links=[TrackedLink(index=0, url="https://example.com/")],
                sent_at=datetime.now(timezone.utc) - timedelta(hours=1)).model_dump_json().encode())
            for key in message_keys]
        asyncio.run(produce(KAFKA, f"{namespace}mail.tracking.registered.v1", registrations))
        time.sleep(2)  # the registrations reach the tracker's store
        warmup = max(200, 4 * args.messages)
        with httpx.Client() as client:
            for n in range(warmup):
                # A new connection each time: with SO_REUSEPORT the kernel spreads connections, so
                # every process gets some of the warm-up (its registration cache, its producer).
                path = pixel_paths[n % len(pixel_paths)]
                assert client.get(f"{public_url}{path}", headers={"Connection": "close"}).status_code == 200
                client.get(f"{nginx_url}{path}")
        print(f"wrk -t{args.threads} -c{args.connections} -d{args.duration}s x {args.rounds} rounds, "
              f"{args.workers} tracker process(es) vs nginx with {args.workers} worker(s), pixels of "
              f"{args.messages} messages ({pixel_path[:20]}…)",
              flush=True)
        targets = {"nginx": nginx_url, "bare": None, "tracker": public_url}
        pids = {"nginx": [nginx.pid], "tracker": [t.process.pid for t in trackers]}
        runs: dict[str, list[dict]] = {name: [] for name in targets}
        bare_proc, targets["bare"] = start_bare()
        pids["bare"] = [bare_proc.pid]
        try:
            # Interleaved, in a rotating order: the machine is shared, and what else runs on it
            # changes from second to second; each round compares the three under the same load.
            for round_no in range(args.rounds):
                order = list(targets)[round_no % 3:] + list(targets)[:round_no % 3]
                for name in order:
                    before = sum(cpu_seconds(pid) for pid in pids[name])
                    run = wrk(targets[name], args.threads, args.connections, args.duration, paths_file)
                    run["cpu_s"] = sum(cpu_seconds(pid) for pid in pids[name]) - before
                    runs[name].append(run)
        finally:
            bare_proc.terminate()
            bare_proc.wait(10)
        # The latency target is at a rate: 25 % of what nginx served in this run.
        target_rate = TARGET * statistics.median(r["rps"] for r in runs["nginx"])
        paced = paced_p99(public_url, target_rate, args.threads, args.paced_connections, max(args.duration, 5),
                          paths_file)
        time.sleep(1)  # let any request wrk cut off at the end finish
        urls = [t.url for t in trackers]
        counted = sum(metric(u, "tracker_requests_total", kind="open", outcome="counted") for u in urls)
        queued = sum(metric(u, "tracker_requests_total", kind="open", outcome="queued") for u in urls)
        acked = sum(metric(u, "tracker_events_published_total") for u in urls)
        procs.stop()  # flushes anything still queued
        on_kafka, distinct = asyncio.run(topic_events(f"{namespace}mail.tracking.opened.v1"))
    finally:
        procs.stop()
        nginx.send_signal(signal.SIGQUIT)
        nginx.wait(10)
        forget_namespace(KAFKA, MONGODB_URL, namespace)

    yard, bare, ours = (summary(runs[name]) for name in ("nginx", "bare", "tracker"))
    for name, r in (("nginx", yard), ("bare", bare), ("tracker", ours)):
        if r["non_2xx"] or r["socket_errors"]:
            print(f"warning: {name} answered {r['non_2xx']} non-2xx and had {r['socket_errors']} socket errors")
    if yard["non_2xx"]:
        raise SystemExit("nginx did not serve the pixel: the yardstick is void")
    answered = sum(r["requests"] - r["non_2xx"] for r in runs["tracker"]) + warmup + paced["answered_in_all_runs"]
    calibration = paced["calibration_runs"]
    # Cut off by wrk at the end of each run: at most one request per connection.
    in_flight = args.connections * args.threads * args.rounds + args.paced_connections * args.threads * calibration
    exact = (on_kafka == distinct == int(acked) == int(counted) and queued == 0
             and answered <= on_kafka <= answered + in_flight)
    ratios = [t["rps"] / n["rps"] for t, n in zip(runs["tracker"], runs["nginx"]) if n["rps"]]
    ratio = statistics.median(ratios) if ratios else 0.0
    p99_ok = paced["p99_ms"] <= 20 and paced["rps"] >= 0.95 * target_rate
    result = {
        "when": datetime.now(timezone.utc).isoformat(timespec="seconds"), "duration_s": args.duration,
        "threads": args.threads, "connections": args.connections, "rounds": args.rounds, "messages": args.messages,
        "workers": {"tracker_processes": args.workers, "nginx_workers": args.workers},
        "ratio_per_round": [round(r, 3) for r in ratios],
        "rounds_raw": {name: [{k: v for k, v in r.items() if k != "raw"} for r in rs] for name, rs in runs.items()},
        "nginx": yard, "bare_uvicorn": bare, "tracker": ours, "tracker_at_target_rate": paced,
        "ratio": round(ratio, 3), "target": TARGET, "p99_target_ms": 20, "p99_met": p99_ok,
        "load_average": os.getloadavg(),
        "events": {"answered_by_tracker_counted_runs": answered, "counted_by_tracker": int(counted),
                   "acked_by_kafka": int(acked), "records_on_topic": on_kafka, "distinct_event_ids": distinct,
                   "cut_off_by_wrk_at_most": in_flight, "exactly_one_each": exact},
    }
    out = RUN_DIR / "bench" / "tracker.json"
    out.write_text(json.dumps(result, indent=2))
    print(f"\nmedian of {args.rounds} rounds{'':7}{'requests/s':>12}{'p50 ms':>9}{'p99 ms':>9}{'requests':>10}"
          f"{'non-2xx':>9}{'CPU us/req':>12}")
    rows = ((f"nginx, {args.workers} worker(s)", yard), ("bare uvicorn (1 process)", bare),
            (f"tracker, {args.workers} process(es)", ours))
    for name, r in rows:
        print(f"{name:27}{r['rps']:>12.0f}{r['p50_ms']:>9.2f}{r['p99_ms']:>9.2f}{r['requests']:>10}{r['non_2xx']:>9}{r['cpu_us_per_request']:>12.1f}")
    print(f"tracker/nginx per round: {', '.join(f'{r:.3f}' for r in ratios)}")
    print(f"\ntracker at {TARGET:.0%} of nginx's rate (target {target_rate:.0f}/s; wrk -c{args.paced_connections}, "
          f"paced {paced['delay_ms']:.1f} ms between answers and requests, {calibration} calibration run(s)): "
          f"{paced['rps']:.0f} requests/s, p50 {paced['p50_ms']:.2f} ms, p99 {paced['p99_ms']:.2f} ms "
          f"-> {'met' if p99_ok else 'NOT met'} (p99 <= 20 ms)")
    print(f"\nevents: {int(counted)} counted by the tracker, {int(acked)} acked by Kafka, {on_kafka} records on the "
          f"topic, {distinct} distinct ids; {answered} answers seen by wrk (incl. {warmup} "
          f"warm-up and the paced runs), at most {in_flight} more cut off in flight -> {'exactly one event per counted request' if exact else 'MISMATCH'}")
    cpu_ratio = yard["cpu_us_per_request"] / ours["cpu_us_per_request"] if ours["cpu_us_per_request"] else 0.0
    result["cpu_ratio"] = round(cpu_ratio, 3)
    out.write_text(json.dumps(result, indent=2))
    print(f"CPU per request, nginx/tracker: {cpu_ratio:.3f} (the load-independent view of the same ratio)")
    print(f"load average: {' '.join(f'{x:.2f}' for x in os.getloadavg())} on {os.cpu_count()} CPUs")
    print(f"written to {out}")
    print(f"bench tracker: ratio={ratio:.3f} target={TARGET}")
    if not exact:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
