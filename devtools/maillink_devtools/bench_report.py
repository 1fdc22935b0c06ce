"""`make bench-report` (and the end of `make bench`): one table of every benchmark's figures.

Reads the per-benchmark results in .run/bench/*.json, as each benchmark wrote them, and writes
.run/bench/summary.md and summary.json: each figure next to its yardstick (measured in the same
run), their ratio, the target and whether it is met, and when the result was written, so a stale
figure shows as stale. Each benchmark has its own JSON shape, read by one small function below; a
file written by a benchmark not listed here is still reported when it has `ratio` and `target`.
"""
import json
import os
import sys
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
RUN_DIR = Path(os.environ.get("MAILLINK_RUN_DIR", ROOT / ".run"))
OUTPUTS = {"summary.json", "summary.md"}


@dataclass(frozen=True)
class Figure:
    bench: str
    figure: str
    value: float
    unit: str
    yardstick: str | None = None
    yardstick_value: float | None = None
    target: float | None = None     # the least acceptable ratio (ours / yardstick, higher is better)
    limit: float | None = None      # or the most acceptable value (latency, memory: lower is better)
    written: str | None = None      # when the result file was written (UTC)
    source: str | None = None

    @property
    def ratio(self) -> float | None:
        if self.yardstick_value in (None, 0):
            return None
        return self.value / self.yardstick_value

    @property
    def met(self) -> bool | None:
        if self.limit is not None:
            return self.value <= self.limit
        return None if self.target is None or self.ratio is None else self.ratio >= self.target

    def as_dict(self) -> dict:
        ratio = self.ratio
        return {**asdict(self), "ratio": None if ratio is None else round(ratio, 3), "met": self.met}


def _ingest(d: dict) -> list[Figure]:
    rates = d["rates"]
    return [Figure("ingest", f"initial sync, {d['messages']} messages", rates["a"], "msg/s", "mbsync", rates["b"], 3.0),
            Figure("ingest", "initial sync vs the raw imaplib ceiling", rates["a"], "msg/s", "imaplib, no parsing",
                   rates["c"], 0.25)]


def _imap_reader(d: dict) -> list[Figure]:
    size = max(d["msg_per_s"], key=int)
    rates = d["msg_per_s"][size]
    return [Figure("imap-reader", f"response reader, {size} messages", rates["ours"], "msg/s",
                   f"aioimaplib {d.get('aioimaplib', '')} stock".replace("  ", " "), rates["stock"], d.get("target"))]


def _bcc(d: dict) -> list[Figure]:
    if "loads" not in d:  # a result from before the two loads: one load, of 2 KB messages
        return [Figure("bcc", "Smart Bcc gateway, sender checks on", d["gateway_msg_per_s"], "msg/s",
                       "aiosmtpd sink", d["sink_msg_per_s"], d.get("target"))]
    labels = {"mix": "realistic mix, all signed", "small": "2 KB plain, a quarter signed"}
    return [Figure("bcc", f"Smart Bcc gateway, sender checks on ({labels.get(name, name)})", f["gateway_msg_per_s"],
                   "msg/s", "aiosmtpd sink", f["sink_msg_per_s"], d.get("target"))
            for name, f in d["loads"].items()]


def _matcher(d: list | dict) -> list[Figure]:
    out = []
    for r in d if isinstance(d, list) else [d]:
        store = r.get("store", "store")
        raw = min(r["b_raw_kafka_per_s"], r["c_raw_insert_per_s"])
        which = "raw Kafka consume" if r["b_raw_kafka_per_s"] <= r["c_raw_insert_per_s"] else "raw bulk insert"
        out.append(Figure("matcher", f"linked/s ({store})", r["a_linked_per_s"], "msg/s", which, raw,
                          r.get("target", 0.5)))
        if "query_p99_ms" in r:
            out.append(Figure("matcher", f"query API p99 ({store})", r["query_p99_ms"], "ms", limit=50.0))
    return out


def _outbound(d: dict) -> list[Figure]:
    return [Figure("outbound", "templated, tracked sends", d["ours_msg_per_s"], "msg/s", "raw aiosmtplib loop",
                   d["raw_msg_per_s"], d.get("target"))]


def _tracker(d: dict) -> list[Figure]:
    return [Figure("tracker", "open pixel", d["tracker"]["rps"], "req/s", "nginx, same GIF", d["nginx"]["rps"],
                   d.get("target")),
            Figure("tracker", "open pixel p99 at full load", d["tracker"]["p99_ms"], "ms")]


def _latency(d: dict) -> list[Figure]:
    return [Figure("latency", f"new mail, APPEND -> event on Kafka, p50 ({d['messages']} messages)", d["p50_ms"],
                   "ms", limit=300.0),
            Figure("latency", "new mail, APPEND -> event on Kafka, p99", d["p99_ms"], "ms", limit=1000.0)]


def _idle(d: dict) -> list[Figure]:
    n = d["accounts"]
    return [Figure("idle", f"RSS with {n} idle accounts", d["rss_mb"], "MB", limit=300.0 if n >= 1000 else None),
            Figure("idle", f"CPU while {n} accounts idle", d["cpu_percent"], "%", limit=5.0),
            Figure("idle", f"new mail in 20 of {n} idle accounts, slowest", d["new_mail_ms"]["max"], "ms", limit=1000.0)]


def _generic(name: str, d) -> list[Figure]:
    """Any other benchmark that states its ratio and target (the project's convention)."""
    if isinstance(d, dict) and isinstance(d.get("ratio"), (int, float)):
        return [Figure(name, "ratio", float(d["ratio"]), "x", "its yardstick", 1.0, d.get("target"))]
    return []


READERS = {"ingest": _ingest, "latency": _latency, "idle": _idle, "imap-reader": _imap_reader, "bcc": _bcc, "matcher": _matcher,
           "outbound": _outbound, "tracker": _tracker}


def collect(bench_dir: Path) -> tuple[list[Figure], list[str]]:
    """Figures from every result file; and the files that could not be read, with why."""
    figures, skipped = [], []
    for path in sorted(bench_dir.glob("*.json")):
        if path.name in OUTPUTS:
            continue
        name = path.stem
        written = datetime.fromtimestamp(path.stat().st_mtime, timezone.utc).strftime("%Y-%m-%d %H:%M")
        try:
            data = json.loads(path.read_text())
            found = READERS[name](data) if name in READERS else _generic(name, data)
        except (ValueError, KeyError, TypeError) as exc:
            skipped.append(f"{path.name}: unreadable ({type(exc).__name__}: {exc})")
            continue
        if not found:
            skipped.append(f"{path.name}: no ratio to report")
        figures += [Figure(**{**asdict(f), "written": written, "source": path.name}) for f in found]
    return figures, skipped


def _num(value: float | None, digits: int = 0) -> str:
    return "" if value is None else f"{value:,.{digits}f}"


def markdown(figures: list[Figure], skipped: list[str]) -> str:
    lines = ["| bench | figure | value | yardstick | yardstick value | ratio | target | met | written (UTC) |",
             "|---|---|---:|---|---:|---:|---:|:---:|---|"]
    for f in figures:
        met = {True: "yes", False: "**no**", None: ""}[f.met]
        lines.append(f"| {f.bench} | {f.figure} | {_num(f.value, 1 if f.unit == 'ms' else 0)} {f.unit} | "
                     f"{f.yardstick or ''} | {_num(f.yardstick_value)} | {_num(f.ratio, 3)} | "
                     f"{_num(f.target, 2) if f.limit is None else '<= ' + _num(f.limit)} | "
                     f"{met} | {f.written or ''} |")
    if skipped:
        lines += ["", "Not in the table: " + "; ".join(skipped)]
    return "\n".join(lines) + "\n"


def write(bench_dir: Path) -> tuple[list[Figure], list[str]]:
    figures, skipped = collect(bench_dir)
    (bench_dir / "summary.md").write_text(markdown(figures, skipped))
    (bench_dir / "summary.json").write_text(json.dumps(
        {"figures": [f.as_dict() for f in figures], "skipped": skipped}, indent=2))
    return figures, skipped


def main(argv: list[str] | None = None) -> int:
    bench_dir = Path(argv[0]) if argv else RUN_DIR / "bench"
    if not bench_dir.is_dir():
        print(f"no benchmark results in {bench_dir}: run `make bench` (or one `make bench-*`) first", file=sys.stderr)
        return 1
    figures, skipped = write(bench_dir)
    print(markdown(figures, skipped), end="")
    judged = [f for f in figures if f.met is not None]
    print(f"written to {bench_dir / 'summary.md'} and summary.json")
    print(f"bench summary: figures={len(figures)} met={sum(f.met for f in judged)}/{len(judged)}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
