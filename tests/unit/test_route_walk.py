"""Walks every route of every service: only the routes listed in PUBLIC_ROUTES answer without a
token; everything else (FastAPI's /docs and /openapi.json included) answers 401."""
import re

import httpx
import pytest
from cryptography.fernet import Fernet
from starlette.routing import Route

from maillink_runtime.auth import PUBLIC_ROUTES

SERVICES = ["ingest", "matcher", "tracker", "outbound", "bcc_gateway"]


def build(name: str):
    module = __import__(f"maillink_{name}.app", fromlist=["create_app"])
    settings_module = __import__(f"maillink_{name}.settings", fromlist=["x"])
    settings_cls = next(c for n, c in vars(settings_module).items()
                        if n.endswith("Settings") and getattr(c, "__module__", "") == settings_module.__name__)
    return module.create_app(settings_cls())


@pytest.fixture
def apps(monkeypatch, auth_env):
    for key, value in auth_env.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("MAILLINK_CREDENTIALS_KEY", Fernet.generate_key().decode())
    return {name: build(name) for name in SERVICES}


def all_routes(routes, prefix: str = ""):
    """(path, methods) of every route, through FastAPI's included routers (kept lazily since 0.16x)."""
    for route in routes:
        if hasattr(route, "original_router"):
            yield from all_routes(route.original_router.routes, prefix + route.include_context.prefix)
        elif isinstance(route, Route):
            yield prefix + route.path, route.methods or {"GET"}


def concrete(path: str) -> str:
    return re.sub(r"\{[^}]+\}", "0" * 64, path)


async def test_every_non_public_route_of_every_service_needs_a_token(apps, token):
    walked, public = 0, 0
    wrong_audience = token("u-1", "mail:read", "accounts:read", "accounts:write", "blobs:read", "bcc:read", "bcc:write",
                           audience="elsewhere")
    for name, app in apps.items():
        client = httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://svc")
        routes = list(all_routes(app.routes))
        assert routes, name
        for template, methods in routes:
            for method in sorted(methods):
                path = concrete(template)
                if template in PUBLIC_ROUTES:
                    public += 1
                    continue
                walked += 1
                bare = await client.request(method, path)
                assert bare.status_code == 401, (name, method, template, bare.status_code)
                wrong = await client.request(method, path, headers={"Authorization": f"Bearer {wrong_audience}"})
                assert wrong.status_code == 401, (name, method, template, wrong.status_code)
    # Every service has /healthz and /metrics; ingest and matcher have their APIs; all have /docs.
    # bcc-gateway's confirmation link is public too (GET shows the page, POST confirms).
    assert public == 2 * len(SERVICES) + 2
    assert walked >= 4 * len(SERVICES) + 5


async def test_public_routes_answer_without_a_token(apps):
    client = httpx.AsyncClient(transport=httpx.ASGITransport(apps["tracker"]), base_url="http://svc")
    response = await client.get("/metrics")
    assert response.status_code == 200 and "python_info" in response.text


async def test_a_422_never_echoes_the_request_body(apps, token):
    client = httpx.AsyncClient(transport=httpx.ASGITransport(apps["ingest"]), base_url="http://svc")
    secret = "hunter2-Sekr3t-" + "x" * 10
    response = await client.post("/accounts", headers={"Authorization": f"Bearer {token('u-1', 'accounts:write')}"},
                                 json={"email": "not-an-address", "password": secret, "imap_host": "127.0.0.1"})
    assert response.status_code == 422
    assert secret not in response.text and "input" not in response.json()["detail"][0]
    assert response.json()["detail"][0]["loc"] == ["body", "email"]


@pytest.mark.parametrize("field,value", [("password", "pass\r\nA2 DELETE INBOX"), ("password", "nul\x00byte"),
                                         ("username", "bob\nA2 LOGOUT")])
async def test_line_breaks_in_credentials_are_refused(apps, token, field, value):
    client = httpx.AsyncClient(transport=httpx.ASGITransport(apps["ingest"]), base_url="http://svc")
    body = {"email": "bob@example.com", "password": "secret-pw", "imap_host": "127.0.0.1", field: value}
    response = await client.post("/accounts", headers={"Authorization": f"Bearer {token('u-1', 'accounts:write')}"},
                                 json=body)
    assert response.status_code == 422 and "single line" in response.text and value not in response.text
