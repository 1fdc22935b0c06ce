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
