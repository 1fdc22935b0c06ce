"""The `make bench` summary, from result files shaped exactly as each benchmark writes them."""
import json

from maillink_devtools import bench_report

SAMPLES = {
    "ingest.json": {"messages": 20000, "mb": 186.0, "seconds": {"a": 17.2, "b": 12.0, "c": 6.0},
                    "rates": {"a": 1162.0, "b": 1673.0, "c": 3333.0}, "breakdown": {"blob store": 9.1}},
    "imap-reader.json": {"aioimaplib": "2.0.3", "msg_per_s": {"1000": {"stock": 900, "ours": 9000, "ratio": 10.0},
                                                              "8000": {"stock": 1000, "ours": 12000, "ratio": 12.0}},
                         "ratio": 12.0, "target": 10},
    "bcc.json": {"messages": 2000, "sink_msg_per_s": 1000.0, "gateway_msg_per_s": 400.0, "ratio": 0.4, "target": 0.5},
    "matcher.json": [{"store": "sqlite", "a_linked_per_s": 3000.0, "b_raw_kafka_per_s": 9000.0,
                      "c_raw_insert_per_s": 5000.0, "ratio": 0.6, "query_p50_ms": 4.0, "query_p99_ms": 18.5}],
    "outbound.json": {"messages": 5000, "ours_msg_per_s": 300.0, "raw_msg_per_s": 500.0, "ratio": 0.6, "target": 0.5},
    "tracker.json": {"nginx": {"rps": 20000.0, "p99_ms": 5.0}, "tracker": {"rps": 6000.0, "p99_ms": 12.0},
                     "ratio": 0.3, "target": 0.25},
    "chaos.json": {"ratio": 1.0, "target": 1.0},
    "latency.json": {"messages": 200, "p50_ms": 310.0, "p99_ms": 740.0},
    "idle.json": {"accounts": 1000, "rss_mb": 180.0, "cpu_percent": 1.0, "new_mail_ms": {"max": 1200.0}},
    "notes.json": {"p50_ms": 3.0},
}


def write_samples(directory):
    for name, data in SAMPLES.items():
        (directory / name).write_text(json.dumps(data))
    (directory / "broken.json").write_text("{not json")


def test_every_figure_next_to_its_yardstick_with_ratio_target_and_verdict(tmp_path):
    write_samples(tmp_path)
    figures, skipped = bench_report.write(tmp_path)
    by = {(f.bench, f.figure): f for f in figures}
    ingest = by[("ingest", "initial sync, 20000 messages")]
    assert (ingest.value, ingest.yardstick, ingest.yardstick_value, ingest.met) == (1162.0, "mbsync", 1673.0, False)
    assert round(ingest.ratio, 3) == 0.695
    assert by[("imap-reader", "response reader, 8000 messages")].ratio == 12.0        # the largest size
    assert by[("bcc", "Smart Bcc gateway, sender checks on")].met is False             # 0.4 < 0.5
    matcher = by[("matcher", "linked/s (sqlite)")]
    assert (matcher.yardstick, matcher.ratio, matcher.target, matcher.met) == ("raw bulk insert", 0.6, 0.5, True)
    assert by[("matcher", "query API p99 (sqlite)")].ratio is None
    assert by[("outbound", "templated, tracked sends")].met is True
    assert by[("tracker", "open pixel")].ratio == 0.3 and by[("tracker", "open pixel")].met is True
    assert by[("chaos", "ratio")].met is True                                          # a benchmark not listed
    assert any(s.startswith("broken.json: unreadable") for s in skipped)
    assert "notes.json: no ratio to report" in skipped
    # Lower-is-better figures are judged against their limit.
    assert by[("latency", "new mail, APPEND -> event on Kafka, p50 (200 messages)")].met is False   # 310 > 300
    assert by[("latency", "new mail, APPEND -> event on Kafka, p99")].met is True                   # 740 <= 1000
    assert by[("idle", "RSS with 1000 idle accounts")].met is True
    assert by[("idle", "new mail in 20 of 1000 idle accounts, slowest")].met is False
    assert all(f.written and f.source for f in figures)

    summary = json.loads((tmp_path / "summary.json").read_text())
    assert len(summary["figures"]) == len(figures) and summary["skipped"] == skipped
    row = next(r for r in summary["figures"] if r["bench"] == "bcc")
    assert (row["ratio"], row["target"], row["met"]) == (0.4, 0.5, False)
    table = (tmp_path / "summary.md").read_text()
    assert "| bcc | Smart Bcc gateway, sender checks on | 400 msg/s | aiosmtpd sink | 1,000 | 0.400 | 0.50 | **no** |" in table
    # A second run does not read its own outputs back in.
    again, _ = bench_report.write(tmp_path)
    assert len(again) == len(figures)


def test_main_says_what_to_do_without_results(tmp_path, capsys):
    assert bench_report.main([str(tmp_path / "none")]) == 1
    assert "make bench" in capsys.readouterr().err
    write_samples(tmp_path)
    assert bench_report.main([str(tmp_path)]) == 0
    assert capsys.readouterr().out.splitlines()[-1] == "bench summary: figures=15 met=10/14"


def test_bcc_shows_both_loads_each_against_the_target(tmp_path):
    # bench_bcc's result since it runs two loads: the realistic mix (of record) and 2 KB messages.
    (tmp_path / "bcc.json").write_text(json.dumps({
        "messages": 2000, "target": 0.5, "ratio": 0.6, "ratio_small": 0.45,
        "sink_msg_per_s": 1000.0, "gateway_msg_per_s": 600.0,
        "loads": {"mix": {"sink_msg_per_s": 1000.0, "gateway_msg_per_s": 600.0, "ratio": 0.6, "mean_kb": 9.8},
                  "small": {"sink_msg_per_s": 3000.0, "gateway_msg_per_s": 1350.0, "ratio": 0.45, "mean_kb": 1.7}}}))
    figures, _ = bench_report.write(tmp_path)
    by = {f.figure: f for f in figures if f.bench == "bcc"}
    assert by["Smart Bcc gateway, sender checks on (realistic mix, all signed)"].met is True
    small = by["Smart Bcc gateway, sender checks on (2 KB plain, a quarter signed)"]
    assert (small.ratio, small.met) == (0.45, False)   # shown, and shown as short of the target
