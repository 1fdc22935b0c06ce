"""The Grafana dashboard (deploy/grafana/): every panel query is valid PromQL (promtool parses it:
each goes into a throw-away rules file for `promtool check rules`, there being no expression
checker on its own), selects only metrics and labels the services export, and together the
panels show the whole pipeline."""
import json
import subprocess

import yaml

from tests.deploy_kit import ROOT, exported_metric_names, metric_labels, promql_label_matchers, promql_metric_names

DASHBOARDS = sorted((ROOT / "deploy" / "grafana").glob("*.json"))


def panels() -> list[dict]:
    return [p for path in DASHBOARDS for p in json.loads(path.read_text())["panels"] if p["type"] != "row"]


def expressions() -> dict[str, str]:
    return {f"{p['title']} [{t['refId']}]": t["expr"] for p in panels() for t in p["targets"]}


def test_every_query_is_valid_promql(tmp_path):
    rules = {"groups": [{"name": "dashboard", "rules": [
        {"record": f"dashboard:query_{n}", "expr": expr} for n, expr in enumerate(expressions().values())]}]}
    (tmp_path / "dashboard_rules.yml").write_text(yaml.safe_dump(rules))
    done = subprocess.run(["promtool", "check", "rules", "dashboard_rules.yml"], cwd=tmp_path, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"SUCCESS: {len(expressions())} rules found" in done.stdout


def test_promtool_does_reject_a_broken_query(tmp_path):
    (tmp_path / "bad.yml").write_text(yaml.safe_dump({"groups": [{"name": "x", "rules": [
        {"record": "x:y", "expr": "sum by (state (maillink_ingest_accounts)"}]}]}))
    assert subprocess.run(["promtool", "check", "rules", "bad.yml"], cwd=tmp_path, capture_output=True).returncode != 0


def test_queries_use_only_exported_metrics_and_labels():
    exported = exported_metric_names() | {"up"}
    for title, expr in expressions().items():
        names = promql_metric_names(expr)
        assert names and names <= exported, f"{title}: {sorted(names - exported)} are exported by nothing"
        for metric, label in promql_label_matchers(expr):
            assert metric == "up" or label in metric_labels(metric), f"{title}: {metric} has no label {label}"


def test_the_pipeline_is_shown_at_a_glance():
    used = {name for expr in expressions().values() for name in promql_metric_names(expr)}
    assert {"maillink_ingest_messages_total",        # received
            "maillink_matcher_messages_linked_total",  # linked
            "maillink_consumer_lag", "maillink_messages_dead_lettered_total", "maillink_ingest_accounts",
            "tracker_requests_total", "tracker_responses_total", "maillink_bcc_accepted_total",
            "maillink_bcc_refusals_total", "maillink_blob_store_errors_total", "up"} <= used


def test_panels_are_well_formed():
    for path in DASHBOARDS:
        dashboard = json.loads(path.read_text())
        ids = [p["id"] for p in dashboard["panels"]]
        assert len(ids) == len(set(ids)) and dashboard["uid"]
        for panel in dashboard["panels"]:
            assert {"h", "w", "x", "y"} <= set(panel["gridPos"]) and panel["gridPos"]["x"] + panel["gridPos"]["w"] <= 24
            if panel["type"] != "row":
                assert panel["datasource"]["uid"] == "prometheus" and panel["targets"]
