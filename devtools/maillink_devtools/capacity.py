"""Capacity plan: fleet size and cost drivers for a number of mailboxes (docs/SCALING.md explains it).

    python -m maillink_devtools.capacity [--mailboxes 10000000] [--bench-dir .run/bench] [--json]

Per-process throughput comes from the benchmarks' own results in .run/bench/ (`make bench`) when
present, and from the documented defaults below when not; the output says which. The workload
(messages per mailbox and day, sizes, connections) is an assumption, every one a flag. Pure
arithmetic in `plan`; `main` only reads files and prints.
"""
import argparse
import json
import math
import os
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
RUN_DIR = Path(os.environ.get("MAILLINK_RUN_DIR", ROOT / ".run"))
GB, TB = 1e9, 1e12
GMAIL_DAILY_IMAP_BYTES = 2.5 * GB      # Gmail's per-account IMAP download limit per day
GMAIL_CONNECTIONS = 15                 # Gmail's simultaneous IMAP connections per account
PARTITIONS_PER_BROKER = 4000           # a comfortable KRaft broker's partition replicas
ACCOUNT_KEYED_TOPICS = 8               # consumed by ingest or matcher, co-partitioned (README "Topics")
OTHER_TOPICS, OTHER_PARTITIONS = 40, 12  # CRM, tracking, settings topics and every .dlq: created beforehand with 12


@dataclass(frozen=True)
class Workload:
    mailboxes: int = 10_000_000
    messages_per_mailbox_day: float = 120        # received + sent, a salesperson's mailbox
    mean_message_bytes: int = 60_000             # raw MIME, attachments included
    onboarding_per_day: int = 50_000             # new mailboxes starting their first sync
    first_sync_messages: int = 3_600             # a 30-day first-sync window (first_sync_days, default 3, max 730)
    peak_factor: float = 3.0                     # busiest hour / average hour
    connections_per_mailbox: int = 2             # one command session + IDLE on INBOX (INGEST_IDLE_FOLDERS_MAX=1)
    connections_per_ingest: int = 10_000         # IMAP sessions one ingest process holds (mostly idle, TLS)
    utilisation: float = 0.5                     # share of a process's measured rate planned at peak
    tracker_requests_per_message: float = 0.5    # opens + clicks per sent or received message
    event_bytes: int = 1_600                     # mail.message.received.v1 (schemas/samples: ~1.5 kB)
    kafka_retention_days: int = 7
    replication: int = 3
    store_doc_bytes: int = 3_000                 # matcher message + thread share + indexes, per message
    store_shard_bytes: float = 2 * TB
    broker_disk_bytes: float = 8 * TB


@dataclass(frozen=True)
class Measured:
    """Messages (or requests) per second one process sustains, and where each figure came from."""
    ingest_msg_s: float = 1_160.0     # make bench-ingest, 2026-11-27 (README)
    matcher_msg_s: float = 2_000.0    # assumed until make bench-matcher has run
    tracker_req_s: float = 2_900.0    # make bench-tracker on a loaded 2-core machine
    sources: dict = field(default_factory=lambda: {"ingest": "default", "matcher": "default", "tracker": "default"})


def measured_from(bench_dir: Path) -> Measured:
    values, sources = asdict(Measured()), dict(Measured().sources)

    def take(name: str, key: str, read) -> None:
        path = bench_dir / f"{name}.json"
        try:
            value = float(read(json.loads(path.read_text())))
        except (OSError, ValueError, KeyError, TypeError, IndexError):
            return
        if value > 0:
            values[key], sources[name] = value, f"measured ({path.name})"

    take("ingest", "ingest_msg_s", lambda d: d["rates"]["a"])
    take("matcher", "matcher_msg_s", lambda d: (d[0] if isinstance(d, list) else d)["a_linked_per_s"])
    take("tracker", "tracker_req_s", lambda d: d["tracker"]["rps"])
    values["sources"] = sources
    return Measured(**values)


def round_up(n: float, step: int = 64) -> int:
    return max(step, math.ceil(n / step) * step)


def plan(w: Workload, m: Measured) -> dict:
    day = 86_400
    steady_per_day = w.mailboxes * w.messages_per_mailbox_day
    onboarding_per_day = w.onboarding_per_day * w.first_sync_messages
    mean_msg_s = (steady_per_day + onboarding_per_day) / day
    peak_msg_s = steady_per_day / day * w.peak_factor + onboarding_per_day / day

    connections = w.mailboxes * w.connections_per_mailbox
    ingest_for_connections = math.ceil(connections / w.connections_per_ingest)
    ingest_for_throughput = math.ceil(peak_msg_s / (m.ingest_msg_s * w.utilisation))
    ingest = max(ingest_for_connections, ingest_for_throughput)
    matcher = math.ceil(peak_msg_s / (m.matcher_msg_s * w.utilisation))
    # Account-keyed topics share one partition count (the matcher's range assignor co-partitions
    # them), and a group never gives one partition to two processes: partitions bound both fleets.
    partitions = round_up(max(ingest, matcher) * 1.25)   # headroom: adding partitions later moves accounts
    tracker_peak = steady_per_day / day * w.tracker_requests_per_message * w.peak_factor
    tracker = max(2, math.ceil(tracker_peak / (m.tracker_req_s * w.utilisation)))

    raw_per_day = (steady_per_day + onboarding_per_day) * w.mean_message_bytes
    kafka_per_day = (steady_per_day + onboarding_per_day) * w.event_bytes * 3  # received, linked, status/changes
    kafka_stored = kafka_per_day * w.kafka_retention_days * w.replication
    partition_replicas = (partitions * ACCOUNT_KEYED_TOPICS + OTHER_TOPICS * OTHER_PARTITIONS) * w.replication
    brokers = max(3, math.ceil(kafka_stored / w.broker_disk_bytes), math.ceil(partition_replicas / PARTITIONS_PER_BROKER))
    store_year = steady_per_day * 365 * w.store_doc_bytes
    per_mailbox_day = w.messages_per_mailbox_day * w.mean_message_bytes
    return {
        "messages_per_day": round(steady_per_day + onboarding_per_day),
        "mean_msg_s": round(mean_msg_s), "peak_msg_s": round(peak_msg_s),
        "imap_connections": connections,
        "ingest_instances": ingest, "ingest_bound_by": "connections" if ingest_for_connections >= ingest_for_throughput
        else "throughput", "ingest_for_connections": ingest_for_connections, "ingest_for_throughput": ingest_for_throughput,
        "connections_per_ingest": math.ceil(connections / ingest),
        "account_topic_partitions": partitions,
        "matcher_instances": matcher, "tracker_instances": tracker,
        "kafka_mb_s_in_peak": round(kafka_per_day / day * w.peak_factor / 1e6, 1),
        "kafka_stored_tb": round(kafka_stored / TB, 1), "kafka_brokers": brokers,
        "object_store_tb_per_day": round(raw_per_day / TB, 2), "object_store_pb_per_year": round(raw_per_day * 365 / 1e15, 2),
        "object_store_puts_per_day": round(steady_per_day + onboarding_per_day),
        "store_tb_per_year": round(store_year / TB, 1), "store_shards_after_a_year": max(1, math.ceil(store_year / w.store_shard_bytes)),
        "gmail_cap_share_per_mailbox_day": round(per_mailbox_day / GMAIL_DAILY_IMAP_BYTES, 5),
        "gmail_days_for_first_sync": round(w.first_sync_messages * w.mean_message_bytes / GMAIL_DAILY_IMAP_BYTES, 2),
        "gmail_days_for_730_day_sync": math.ceil(730 * w.messages_per_mailbox_day * w.mean_message_bytes
                                                 / GMAIL_DAILY_IMAP_BYTES),
        "gmail_connection_share": round(w.connections_per_mailbox / GMAIL_CONNECTIONS, 2),
    }


def render(w: Workload, m: Measured, p: dict) -> str:
    rows = [
        ("workload", f"{w.mailboxes:,} mailboxes x {w.messages_per_mailbox_day:g} msg/day + {w.onboarding_per_day:,} "
                     f"first syncs/day of {w.first_sync_messages:,} msg = {p['messages_per_day']:,} msg/day "
                     f"({p['mean_msg_s']:,} msg/s mean, {p['peak_msg_s']:,} at peak)"),
        ("per-process rates", f"ingest {m.ingest_msg_s:,.0f} msg/s ({m.sources['ingest']}), matcher "
                              f"{m.matcher_msg_s:,.0f} msg/s ({m.sources['matcher']}), tracker {m.tracker_req_s:,.0f} "
                              f"req/s ({m.sources['tracker']}); planned at {w.utilisation:.0%}"),
        ("ingest", f"{p['ingest_instances']:,} instances, bound by {p['ingest_bound_by']} "
                   f"({p['ingest_for_connections']:,} for {p['imap_connections']:,} IMAP connections, "
                   f"{p['ingest_for_throughput']:,} for throughput); {p['connections_per_ingest']:,} connections each"),
        ("account topics", f"{p['account_topic_partitions']:,} partitions each (ceiling: instances <= partitions)"),
        ("matcher", f"{p['matcher_instances']:,} instances"),
        ("tracker", f"{p['tracker_instances']:,} instances"),
        ("Kafka", f"{p['kafka_mb_s_in_peak']} MB/s in at peak, {p['kafka_stored_tb']} TB stored "
                  f"({w.kafka_retention_days} d x RF {w.replication}), {p['kafka_brokers']} brokers"),
        ("object store", f"{p['object_store_tb_per_day']} TB/day raw MIME, {p['object_store_pb_per_year']} PB/year, "
                         f"{p['object_store_puts_per_day']:,} PUTs/day"),
        ("MongoDB", f"{p['store_tb_per_year']} TB/year of matcher documents: {p['store_shards_after_a_year']} shards after a year"),
        ("Gmail limits", f"a mailbox's day uses {p['gmail_cap_share_per_mailbox_day']:.3%} of the 2.5 GB/day IMAP cap; "
                         f"a first sync needs {p['gmail_days_for_first_sync']} days of it (730-day window: "
                         f"{p['gmail_days_for_730_day_sync']} days); "
                         f"{w.connections_per_mailbox} of 15 connections per account"),
    ]
    return "\n".join(f"{k:<18}{v}" for k, v in rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="maillink capacity plan")
    for name, default in asdict(Workload()).items():
        parser.add_argument(f"--{name.replace('_', '-')}", type=type(default), default=default)
    parser.add_argument("--bench-dir", type=Path, default=RUN_DIR / "bench")
    parser.add_argument("--json", action="store_true", help="print the plan as JSON")
    args = vars(parser.parse_args(argv))
    bench_dir, as_json = args.pop("bench_dir"), args.pop("json")
    workload, measured = Workload(**args), measured_from(bench_dir)
    result = plan(workload, measured)
    print(json.dumps({"workload": asdict(workload), "measured": asdict(measured), "plan": result}, indent=2)
          if as_json else render(workload, measured, result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
