"""The capacity simulation (devtools/capacity.py): its arithmetic on a case worked by hand, the
partition ceiling it must respect, and where its per-process figures come from."""
import json

from maillink_devtools import capacity
from maillink_devtools.capacity import Measured, Workload, plan


def test_a_small_fleet_worked_by_hand():
    w = Workload(mailboxes=10_000, messages_per_mailbox_day=86.4, onboarding_per_day=0, peak_factor=2.0,
                 connections_per_mailbox=2, connections_per_ingest=10_000, utilisation=0.5,
                 tracker_requests_per_message=0.5, mean_message_bytes=50_000)
    p = plan(w, Measured(ingest_msg_s=10, matcher_msg_s=4, tracker_req_s=1))
    assert (p["mean_msg_s"], p["peak_msg_s"], p["imap_connections"]) == (10, 20, 20_000)
    assert (p["ingest_for_connections"], p["ingest_for_throughput"]) == (2, 4)
    assert (p["ingest_instances"], p["ingest_bound_by"], p["connections_per_ingest"]) == (4, "throughput", 5_000)
    assert p["matcher_instances"] == 10                         # 20 msg/s / (4 x 50 %)
    assert p["tracker_instances"] == 20                         # 10 x 0.5 x 2 = 10 req/s / (1 x 50 %)
    assert p["account_topic_partitions"] == 64                  # the smallest step, >= both fleets
    assert p["object_store_tb_per_day"] == round(864_000 * 50_000 / 1e12, 2)
    assert p["gmail_cap_share_per_mailbox_day"] == round(86.4 * 50_000 / 2.5e9, 5)


def test_ten_million_mailboxes_are_connection_bound_and_partitions_bound_every_fleet():
    for mailboxes in (10_000, 1_000_000, 10_000_000, 50_000_000):
        p = plan(Workload(mailboxes=mailboxes), Measured())
        assert p["account_topic_partitions"] >= max(p["ingest_instances"], p["matcher_instances"])
        assert p["connections_per_ingest"] <= Workload().connections_per_ingest
    big = plan(Workload(), Measured())
    assert big["ingest_bound_by"] == "connections" and big["imap_connections"] == 20_000_000
    assert big["gmail_days_for_730_day_sync"] == 3           # 730 x 120 x 60 kB = 5.3 GB at 2.5 GB/day


def test_figures_come_from_the_benchmarks_when_they_have_run(tmp_path):
    defaults = capacity.measured_from(tmp_path)
    assert defaults == Measured() and set(defaults.sources.values()) == {"default"}
    (tmp_path / "ingest.json").write_text(json.dumps({"rates": {"a": 1500.0, "b": 1700.0, "c": 3000.0}}))
    (tmp_path / "matcher.json").write_text(json.dumps([{"store": "sqlite", "a_linked_per_s": 3100.0}]))
    (tmp_path / "tracker.json").write_text("{truncated")
    m = capacity.measured_from(tmp_path)
    assert (m.ingest_msg_s, m.matcher_msg_s, m.tracker_req_s) == (1500.0, 3100.0, Measured().tracker_req_s)
    assert m.sources == {"ingest": "measured (ingest.json)", "matcher": "measured (matcher.json)", "tracker": "default"}


def test_main_prints_the_fleet_and_its_json(tmp_path, capsys):
    assert capacity.main(["--bench-dir", str(tmp_path), "--mailboxes", "1000000"]) == 0
    text = capsys.readouterr().out
    assert "1,000,000 mailboxes" in text and "ingest" in text and "partitions" in text and "Gmail" in text
    assert capacity.main(["--bench-dir", str(tmp_path), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["workload"]["mailboxes"] == 10_000_000 and out["plan"]["ingest_instances"] == 2_000
