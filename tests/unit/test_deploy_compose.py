"""deploy/compose/compose.yaml cannot be run here (no Docker engine), so it is checked against the
code: each service runs its package's module, from a Dockerfile that exists, with variables its
settings really read, on the port its settings default to, behind a health check, after its
dependencies are healthy; and the Prometheus it starts scrapes exactly those ports."""
import re
import shutil
import subprocess
from importlib.util import find_spec
from pathlib import Path

import pytest
import yaml

from tests.deploy_kit import ROOT, SERVICES, http_port_var, service_env_names

KIT = ROOT / "deploy" / "compose"
COMPOSE = yaml.safe_load((KIT / "compose.yaml").read_text())
PREPARED = set(re.findall(r'print\(f"([A-Z0-9_]+)=', (KIT / "prepare.sh").read_text()))


def test_the_whole_stack_is_there():
    assert set(SERVICES) | {"kafka", "mongo", "s3", "s3-init", "prometheus", "grafana"} == set(COMPOSE["services"])
    kafka = COMPOSE["services"]["kafka"]["environment"]
    assert kafka["KAFKA_PROCESS_ROLES"] == "broker,controller"  # KRaft: no ZooKeeper
    assert "ZOOKEEPER" not in str(COMPOSE)


@pytest.mark.parametrize("name", SERVICES)
def test_service_runs_its_package_from_its_dockerfile(name):
    folder, module, _, _ = SERVICES[name]
    service = COMPOSE["services"][name]
    assert service["command"] == ["python", "-m", module]
    assert find_spec(f"{module}.__main__") is not None
    context = (KIT / service["build"]["context"]).resolve()
    assert context == ROOT
    assert service["build"]["dockerfile"] == f"{folder}/Dockerfile" and (context / folder / "Dockerfile").is_file()
    assert service["image"].startswith(f"maillink/{name}:")


@pytest.mark.parametrize("name", SERVICES)
def test_environment_names_are_real_settings(name):
    env = COMPOSE["services"][name]["environment"]
    unknown = set(env) - service_env_names(name)
    assert not unknown, f"{name}: {sorted(unknown)} are read by nothing"
    assert env[http_port_var(name)] == SERVICES[name][3]
    assert env[http_port_var(name).replace("PORT", "HOST")] == "0.0.0.0"  # reachable from the other containers
    assert {"KAFKA_BOOTSTRAP_SERVERS", "MONGODB_URL", "MAILLINK_JWKS_FILE"} <= set(env)


@pytest.mark.parametrize("name", SERVICES)
def test_service_waits_for_its_dependencies_and_is_health_checked(name):
    service, port = COMPOSE["services"][name], SERVICES[name][3]
    depends = service["depends_on"]
    assert depends["kafka"]["condition"] == depends["mongo"]["condition"] == "service_healthy"
    if "MAILLINK_BLOB_URL" in service["environment"]:
        assert service["environment"]["MAILLINK_BLOB_URL"].startswith("s3://")
        assert depends["s3-init"]["condition"] == "service_completed_successfully"
    assert f"http://127.0.0.1:{port}/healthz" in " ".join(service["healthcheck"]["test"])
    assert f"{port}:{port}" in service["ports"]


def test_infrastructure_is_health_checked():
    for name in ("kafka", "mongo", "prometheus", "grafana"):
        assert COMPOSE["services"][name]["healthcheck"]["test"], name


def test_every_interpolated_variable_is_prepared_or_defaulted():
    text = (KIT / "compose.yaml").read_text()
    for var, rest in re.findall(r"\$\{([A-Z0-9_]+)(:[-?][^}]*)?\}", text):
        assert rest.startswith(":-") or var in PREPARED, f"${{{var}}} is neither defaulted nor written by prepare.sh"


def test_mounted_files_exist_or_are_prepared():
    for name, service in COMPOSE["services"].items():
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith("."):
                path = (KIT / source).resolve()
                assert path.exists() or path.is_relative_to(KIT / "state"), f"{name}: {source} missing"


def test_compose_prometheus_scrapes_every_service_on_its_port(tmp_path):
    config = yaml.safe_load((KIT / "prometheus.yml").read_text())
    targets = {t["labels"]["service"]: t["targets"] for job in config["scrape_configs"] for t in job["static_configs"]}
    assert targets == {name: [f"{name}:{port}"] for name, (_, _, _, port) in SERVICES.items()}
    shutil.copy(KIT / "prometheus.yml", tmp_path)
    shutil.copy(ROOT / "deploy/prometheus/alerts.yml", tmp_path)   # mounted beside it in compose.yaml
    done = subprocess.run(["promtool", "check", "config", "prometheus.yml"], cwd=tmp_path, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr


def test_grafana_is_provisioned_with_prometheus_and_the_dashboards():
    grafana = COMPOSE["services"]["grafana"]
    sources = {v.split(":")[0]: v.split(":")[1] for v in grafana["volumes"] if v.startswith(".")}
    datasource = yaml.safe_load((KIT / "grafana/provisioning/datasources/prometheus.yml").read_text())
    assert datasource["datasources"][0]["url"] == "http://prometheus:9090"
    provider = yaml.safe_load((KIT / "grafana/provisioning/dashboards/maillink.yml").read_text())
    assert sources["../grafana"] == provider["providers"][0]["options"]["path"]
    assert list((KIT / "../grafana").resolve().glob("*.json"))
