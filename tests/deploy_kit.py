"""What the deploy kit is checked against: the five services as the code defines them (package,
module entry point, settings class, port) and the environment variable names those settings read."""
import importlib
from pathlib import Path

from pydantic import AliasChoices

ROOT = Path(__file__).resolve().parents[1]

# deploy name -> (source folder, module run by `python -m`, settings class, HTTP port)
SERVICES = {
    "ingest": ("services/ingest", "maillink_ingest", "maillink_ingest.settings:IngestSettings", 8101),
    "matcher": ("services/matcher", "maillink_matcher", "maillink_matcher.settings:MatcherSettings", 8102),
    "tracker": ("services/tracker", "maillink_tracker", "maillink_tracker.settings:Settings", 8103),
    "outbound": ("services/outbound", "maillink_outbound", "maillink_outbound.settings:Settings", 8104),
    "bcc-gateway": ("services/bcc-gateway", "maillink_bcc_gateway", "maillink_bcc_gateway.settings:Settings", 8105),
}
# Read by libraries, not by our settings: obstore reads the S3 credentials itself (README, "Raw MIME"),
# and OpenSSL / rustls-native-certs read SSL_CERT_FILE (how a private CA for S3 is trusted).
LIBRARY_ENV = {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "SSL_CERT_FILE"}
# Read with os.environ by runtime/logs.py.
RUNTIME_ENV = {"MAILLINK_DEBUG_LOGGERS"}


def settings_class(name: str):
    module, cls = SERVICES[name][2].split(":")
    return getattr(importlib.import_module(module), cls)


def env_names(settings_cls) -> set[str]:
    """Every variable a pydantic-settings class reads: its aliases, else prefix + field name."""
    prefix = (settings_cls.model_config.get("env_prefix") or "").upper()
    names = set()
    for field_name, field in settings_cls.model_fields.items():
        alias = field.validation_alias
        if isinstance(alias, AliasChoices):
            names |= {c.upper() for c in alias.choices if isinstance(c, str)}
        elif isinstance(alias, str):
            names.add(alias.upper())
        else:
            names.add(prefix + field_name.upper())
    return names


def service_env_names(name: str) -> set[str]:
    from maillink_runtime.auth.settings import AuthSettings
    return env_names(settings_class(name)) | env_names(AuthSettings) | LIBRARY_ENV | RUNTIME_ENV


def http_port_var(name: str) -> str:
    return f"{settings_class(name).model_config['env_prefix']}HTTP_PORT"


def exported_metric_names() -> set[str]:
    """Every metric name the five services and the runtime can export: their modules are imported
    (each registers its metrics in prometheus_client's registry), then the registry is read."""
    import pkgutil
    from prometheus_client import REGISTRY
    for package in ["maillink_runtime", *(module for _, module, _, _ in SERVICES.values())]:
        root = importlib.import_module(package)
        for info in pkgutil.walk_packages(root.__path__, f"{package}."):
            if not info.name.endswith("__main__"):
                importlib.import_module(info.name)
    return set(REGISTRY._names_to_collectors)  # with each family's _total/_bucket/... sample names


def promql_metric_names(expr: str) -> set[str]:
    """The metric names an expression selects: maillink's own prefixes, and Prometheus' `up`."""
    import re
    without_strings = re.sub(r'"[^"]*"', '""', expr)
    return {name for name in re.findall(r"\b([a-z_][a-z0-9_]*)\b\s*(?=[{\[)]|$|\s)", without_strings)
            if name.startswith(("maillink_", "tracker_")) or name == "up"}


SCRAPE_LABELS = {"job", "instance", "service", "namespace", "pod"}


def promql_label_matchers(expr: str) -> list[tuple[str, str]]:
    """(metric, label) for every `metric{label=...}` matcher in an expression."""
    import re
    out = []
    for metric, body in re.findall(r"\b([a-z_][a-z0-9_]*)\{([^}]*)\}", expr):
        out += [(metric, label) for label in re.findall(r"([a-z_][a-z0-9_]*)\s*(?:=~|!~|!=|=)", body)]
    return out


def metric_labels(name: str) -> set[str]:
    from prometheus_client import REGISTRY
    collector = REGISTRY._names_to_collectors.get(name)
    return set(getattr(collector, "_labelnames", ())) | SCRAPE_LABELS
