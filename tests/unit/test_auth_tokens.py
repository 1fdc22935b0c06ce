"""Token verification through the real middleware, on a tiny app: every kind of bad token gets 401,
a missing scope 403, and key rotation works by editing the JWKS file the service reads."""
import json
import time

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from fastapi import Depends, FastAPI
from jwt.algorithms import OKPAlgorithm

from maillink_devtools import tokens
from maillink_runtime.auth import Principal, require
from maillink_runtime.auth.keys import FileKeySet
from maillink_runtime.auth.middleware import AuthMiddleware
from tests.conftest import bearer

AUD = "maillink-matcher"


@pytest.fixture
def keys_dir(tmp_path):
    tokens.init_keys(tmp_path)
    return tmp_path


@pytest.fixture
def client(keys_dir):
    app = FastAPI()
    app.add_middleware(AuthMiddleware, keys=FileKeySet(str(keys_dir / "jwks.json")), audience=AUD,
                       max_lifetime_s=3600, issuer=None)

    @app.get("/healthz")
    async def healthz():
        return {"ok": True}

    @app.get("/mine")
    async def mine(caller: Principal = Depends(require("mail:read"))):
        return {"user": caller.user_id, "company": caller.company_id, "kid": caller.key_id}

    return httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://t")


def mint(keys_dir, **kw):
    return tokens.mint(keys_dir, subject="u-1", user_id="u-1", company_id="c-1",
                       scopes=kw.pop("scopes", ["mail:read"]), audience=kw.pop("audience", AUD), **kw)


async def test_valid_token_passes_and_names_the_acting_user(client, keys_dir):
    r = await client.get("/mine", headers=bearer(mint(keys_dir)))
    assert r.status_code == 200 and r.json()["user"] == "u-1" and r.json()["company"] == "c-1"


async def test_public_route_needs_no_token(client):
    assert (await client.get("/healthz")).status_code == 200


@pytest.mark.parametrize("case", ["missing", "not-bearer", "garbage", "expired", "wrong-audience", "unknown-kid",
                                  "forged", "alg-none", "hs256-with-public-key", "too-long-lived", "no-exp",
                                  "tampered-claims"])
async def test_every_kind_of_bad_token_gets_401(client, keys_dir, case):
    good = mint(keys_dir)
    private = json.loads((keys_dir / "signing-keys.json").read_text())["keys"][0]
    now = int(time.time())
    claims = {"sub": "u-1", "user_id": "u-1", "aud": AUD, "iat": now, "exp": now + 600, "scope": "mail:read"}
    other_key = Ed25519PrivateKey.generate()
    headers = {
        "missing": {},
        "not-bearer": {"Authorization": f"Basic {good}"},
        "garbage": bearer("not.a.token"),
        "expired": bearer(mint(keys_dir, now=now - 7200, ttl_s=600)),
        "wrong-audience": bearer(mint(keys_dir, audience="maillink-ingest")),
        "unknown-kid": bearer(jwt.encode(claims, other_key, algorithm="EdDSA", headers={"kid": "nobody"})),
        # Same kid as a real key, signed by another key: the signature check must catch it.
        "forged": bearer(jwt.encode(claims, other_key, algorithm="EdDSA", headers={"kid": private["kid"]})),
        "alg-none": bearer(jwt.encode(claims, None, algorithm="none", headers={"kid": private["kid"]})),
        "hs256-with-public-key": bearer(_hs256(claims, private)),
        "too-long-lived": bearer(mint(keys_dir, ttl_s=86400)),
        "no-exp": bearer(_signed({k: v for k, v in claims.items() if k != "exp"}, private)),
        "tampered-claims": bearer(_tamper(good)),
    }[case]
    r = await client.get("/mine", headers=headers)
    assert r.status_code == 401, (case, r.text)
    assert r.headers["www-authenticate"].startswith("Bearer")
    assert r.json()["detail"] and "Traceback" not in r.text


async def test_missing_scope_gets_403_naming_it(client, keys_dir):
    r = await client.get("/mine", headers=bearer(mint(keys_dir, scopes=["accounts:read"])))
    assert r.status_code == 403 and "mail:read" in r.json()["detail"]


async def test_rotation_old_key_works_until_retired(client, keys_dir):
    old_token = mint(keys_dir)
    old_kid = jwt.get_unverified_header(old_token)["kid"]
    new_kid = tokens.rotate_keys(keys_dir)
    new_token = mint(keys_dir)
    assert jwt.get_unverified_header(new_token)["kid"] == new_kid
    assert (await client.get("/mine", headers=bearer(old_token))).status_code == 200
    assert (await client.get("/mine", headers=bearer(new_token))).json()["kid"] == new_kid
    tokens.retire_key(keys_dir, old_kid)
    assert (await client.get("/mine", headers=bearer(old_token))).status_code == 401
    assert (await client.get("/mine", headers=bearer(new_token))).status_code == 200


def _signed(claims, private):
    return jwt.encode(claims, OKPAlgorithm.from_jwk(json.dumps(private)), algorithm="EdDSA",
                      headers={"kid": private["kid"]})


def _hs256(claims, private):
    # The classic confusion attack: the public key's bytes used as an HMAC secret.
    import base64
    import hashlib
    import hmac
    header = {"alg": "HS256", "typ": "JWT", "kid": private["kid"]}
    enc = lambda d: base64.urlsafe_b64encode(json.dumps(d).encode()).rstrip(b"=")  # noqa: E731
    signing_input = enc(header) + b"." + enc(claims)
    sig = hmac.new(private["x"].encode(), signing_input, hashlib.sha256).digest()
    return (signing_input + b"." + base64.urlsafe_b64encode(sig).rstrip(b"=")).decode()


def _tamper(token):
    import base64
    header, payload, sig = token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=="))
    claims["user_id"] = "u-admin"
    forged = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    return f"{header}.{forged}.{sig}"
