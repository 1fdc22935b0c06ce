"""deploy/k8s/ is validated against Kubernetes' own OpenAPI schemas (kubernetes-validate ships them:
nothing is downloaded) and checked against the code: each Deployment runs its package's module
with variables its settings read, probes /healthz on its port, has requests and limits, a Service
and a PodDisruptionBudget that select it; the matcher's HPA scales on an exported lag metric; and
no HPA goes past the partition count, the ceiling of a consumer group."""
import copy
from pathlib import Path

import kubernetes_validate
import pytest
import yaml

from tests.deploy_kit import ROOT, SERVICES, http_port_var, service_env_names

K8S = ROOT / "deploy" / "k8s"
VERSION = "1.30.0"


def docs(path: Path) -> list[dict]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d]


def kind(name: str, k: str) -> dict:
    return next(d for d in docs(K8S / f"{name}.yaml") if d["kind"] == k)


COMMON = {d["metadata"]["name"]: d for d in docs(K8S / "common.yaml") if d["kind"] == "ConfigMap"}
SECRET_KEYS = set(next(d for d in docs(K8S / "secrets.example.yaml")
                       if d["metadata"]["name"] == "maillink-secrets")["stringData"])


@pytest.mark.parametrize("path", sorted(K8S.glob("*.yaml")), ids=lambda p: p.name)
def test_every_manifest_is_valid_against_the_kubernetes_schemas(path):
    if path.name == "kustomization.yaml":
        return  # kustomize's own format, not an API object; its resources are checked below
    for doc in docs(path):
        kubernetes_validate.validate(doc, VERSION, strict=True)


def test_the_validator_does_reject_a_broken_manifest():
    broken = copy.deepcopy(kind("matcher", "Deployment"))
    broken["spec"]["replicas"] = "two"
    broken["spec"]["template"]["spec"]["containers"][0]["livenessProbe"]["httpGet"]["pathh"] = "/healthz"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, VERSION, strict=True)


def test_kustomization_lists_every_service_and_no_secret_values():
    resources = yaml.safe_load((K8S / "kustomization.yaml").read_text())["resources"]
    assert set(resources) == {"common.yaml", *(f"{n}.yaml" for n in SERVICES)}
    assert all((K8S / r).is_file() for r in resources)


@pytest.mark.parametrize("name", SERVICES)
def test_deployment_matches_the_service(name):
    _, module, _, port = SERVICES[name]
    deployment = kind(name, "Deployment")
    pod = deployment["spec"]["template"]
    container = pod["spec"]["containers"][0]
    assert container["command"] == ["python", "-m", module]
    assert container["image"].rsplit(":", 1)[1] != "latest"
    http = next(p for p in container["ports"] if p["name"] == "http")
    assert http["containerPort"] == port

    env = set()
    for source in container["envFrom"]:
        ref = source["configMapRef"]["name"]
        data = COMMON[ref]["data"] if ref in COMMON else kind(name, "ConfigMap")["data"]
        assert ref in COMMON or ref == kind(name, "ConfigMap")["metadata"]["name"]
        env |= set(data)
        if ref == f"{name}-config":
            assert data[http_port_var(name)] == str(port)
    for var in container["env"]:
        secret = var["valueFrom"]["secretKeyRef"]
        assert secret["name"] == "maillink-secrets" and secret["key"] in SECRET_KEYS
        env.add(var["name"])
    assert not env - service_env_names(name), sorted(env - service_env_names(name))
    if "MAILLINK_BLOB_URL" in env:
        assert COMMON["maillink-blobs"]["data"]["MAILLINK_BLOB_URL"].startswith("s3://")

    for probe in ("readinessProbe", "livenessProbe"):
        assert container[probe]["httpGet"] == {"path": "/healthz", "port": "http"}
    resources = container["resources"]
    assert set(resources["requests"]) == set(resources["limits"]) == {"cpu", "memory"}
    security = container["securityContext"]
    assert security["runAsNonRoot"] and security["runAsUser"] != 0 and security["readOnlyRootFilesystem"]
    assert pod["metadata"]["annotations"]["prometheus.io/port"] == str(port)

    labels = pod["metadata"]["labels"]
    for selector in (kind(name, "PodDisruptionBudget")["spec"]["selector"]["matchLabels"],
                     kind(name, "Service")["spec"]["selector"], deployment["spec"]["selector"]["matchLabels"]):
        assert selector.items() <= labels.items()
    service_port = next(p for p in kind(name, "Service")["spec"]["ports"] if p["name"] == "http")
    assert service_port["port"] == port and service_port["targetPort"] == "http"
    assert deployment["spec"]["replicas"] >= 2 or name == "ingest"
    assert kind(name, "PodDisruptionBudget")["spec"]["maxUnavailable"] == 1


def test_matcher_scales_on_its_consumer_lag():
    from maillink_runtime.lag import LAG
    hpa = kind("matcher", "HorizontalPodAutoscaler")
    assert hpa["spec"]["scaleTargetRef"]["name"] == "matcher"
    metric = hpa["spec"]["metrics"][0]["external"]["metric"]
    assert metric["name"] == LAG._name == "maillink_consumer_lag"       # the gauge runtime/lag.py exports
    assert set(metric["selector"]["matchLabels"]) <= set(LAG._labelnames)
    assert metric["selector"]["matchLabels"]["group"] == "maillink-matcher"  # Service.group_id, no namespace
    adapter = yaml.safe_load(docs(K8S / "prometheus-adapter.yaml")[0]["data"]["config.yaml"])
    assert adapter["externalRules"][0]["name"]["as"] == metric["name"]


@pytest.mark.parametrize("name", ["ingest", "matcher"])
def test_no_autoscaler_goes_past_the_partition_count(name):
    partitions = int(COMMON["maillink-common"]["data"]["MAILLINK_TOPIC_PARTITIONS"])
    hpa = kind(name, "HorizontalPodAutoscaler")
    assert hpa["spec"]["minReplicas"] <= hpa["spec"]["maxReplicas"] <= partitions
    assert kind(name, "Deployment")["spec"]["replicas"] <= partitions
