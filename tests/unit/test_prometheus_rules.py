"""The Prometheus kit is checked by Prometheus' own tool: the scrape config and alert rules parse,
and each alert fires when it should and not before (deploy/prometheus/alerts_test.yml)."""
import subprocess
from pathlib import Path

import pytest

KIT = Path(__file__).resolve().parents[2] / "deploy" / "prometheus"


@pytest.mark.parametrize("args", [["check", "config", "prometheus.yml"], ["check", "rules", "alerts.yml"],
                                  ["test", "rules", "alerts_test.yml"]])
def test_promtool_accepts_the_kit(args):
    done = subprocess.run(["promtool", *args], cwd=KIT, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr


def test_every_alert_has_a_rule_test():
    import yaml
    alerts = {r["alert"] for g in yaml.safe_load((KIT / "alerts.yml").read_text())["groups"] for r in g["rules"]}
    tested = {t["alertname"] for case in yaml.safe_load((KIT / "alerts_test.yml").read_text())["tests"]
              for t in case["alert_rule_test"]}
    assert alerts == tested


def alert_expressions() -> dict[str, str]:
    import yaml
    return {r["alert"]: r["expr"] for g in yaml.safe_load((KIT / "alerts.yml").read_text())["groups"] for r in g["rules"]}


def test_alerts_use_only_metrics_and_labels_the_services_export():
    from tests.deploy_kit import exported_metric_names, metric_labels, promql_label_matchers, promql_metric_names
    exported = exported_metric_names() | {"up"}
    for alert, expr in alert_expressions().items():
        names = promql_metric_names(expr)
        assert names and names <= exported, f"{alert}: {sorted(names - exported)} are exported by nothing"
        for metric, label in promql_label_matchers(expr):
            assert metric == "up" or label in metric_labels(metric), f"{alert}: {metric} has no label {label}"


def test_the_alerts_cover_what_operators_must_hear_about():
    from tests.deploy_kit import promql_metric_names
    used = {name for expr in alert_expressions().values() for name in promql_metric_names(expr)}
    assert {"up", "maillink_consumer_lag", "maillink_ingest_accounts", "maillink_ingest_sync_errors_total",
            "maillink_ingest_reconcile_gaps_total", "maillink_messages_dead_lettered_total", "tracker_responses_total",
            "maillink_bcc_refusals_total", "maillink_blob_store_errors_total", "maillink_consumer_paused"} <= used
