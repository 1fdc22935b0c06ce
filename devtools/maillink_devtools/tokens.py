"""A local token issuer for development, tests and scripts: an Ed25519 key set on disk and tokens
signed with it. Production tokens come from the CRM's identity provider; services never mint.

Layout of the key directory (default `.run/auth/`):
  jwks.json          public keys (what services read through MAILLINK_JWKS_FILE)
  signing-keys.json  private keys, mode 600; the first one signs
"""
import json
import os
import secrets
import time
from pathlib import Path

import jwt
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from jwt.algorithms import OKPAlgorithm

SERVICES = ("ingest", "matcher", "tracker", "outbound", "bcc-gateway")
ALL_AUDIENCES = [f"maillink-{s}" for s in SERVICES]


def _new_key() -> dict:
    jwk = OKPAlgorithm.to_jwk(Ed25519PrivateKey.generate(), as_dict=True)
    return {**jwk, "kid": f"dev-{time.strftime('%Y%m%d')}-{secrets.token_hex(4)}", "use": "sig", "alg": "EdDSA"}


def _write(directory: Path, private: list[dict]) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    public = {"keys": [{k: v for k, v in key.items() if k != "d"} for key in private]}
    tmp = directory / "signing-keys.json.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        json.dump({"keys": private}, fh)
    tmp.replace(directory / "signing-keys.json")
    (directory / "jwks.json.tmp").write_text(json.dumps(public, indent=1))
    (directory / "jwks.json.tmp").replace(directory / "jwks.json")


def _private(directory: Path) -> list[dict]:
    path = directory / "signing-keys.json"
    return json.loads(path.read_text())["keys"] if path.exists() else []


def init_keys(directory: Path) -> Path:
    """Creates the key set if there is none; returns the public JWKS path."""
    if not _private(directory):
        _write(directory, [_new_key()])
    return directory / "jwks.json"


def rotate_keys(directory: Path) -> str:
    """A new key signs from now on; the old ones stay in the JWKS until retired."""
    key = _new_key()
    _write(directory, [key, *_private(directory)])
    return key["kid"]


def retire_key(directory: Path, kid: str) -> None:
    keys = _private(directory)
    remaining = [k for k in keys if k["kid"] != kid]
    if len(remaining) == len(keys):
        raise KeyError(f"no key {kid} in {directory}")
    if not remaining:
        raise ValueError("refusing to retire the only key; rotate first")
    _write(directory, remaining)


def mint(directory: Path, *, subject: str, user_id: str | None = None, company_id: str | None = None,
         scopes: list[str] = (), audience: list[str] | str = ALL_AUDIENCES, ttl_s: int = 3600,
         kid: str | None = None, now: float | None = None, extra: dict | None = None) -> str:
    keys = _private(directory)
    if not keys:
        raise FileNotFoundError(f"no signing keys in {directory}; run `maillink keys init`")
    key = next(k for k in keys if k["kid"] == kid) if kid else keys[0]
    issued = int(now if now is not None else time.time())
    claims = {"sub": subject, "aud": audience, "iat": issued, "exp": issued + ttl_s, "scope": " ".join(scopes),
              "jti": secrets.token_hex(8), **(extra or {})}
    if user_id:
        claims["user_id"] = user_id
    if company_id:
        claims["company_id"] = company_id
    private_key = OKPAlgorithm.from_jwk(json.dumps(key))
    return jwt.encode(claims, private_key, algorithm="EdDSA", headers={"kid": key["kid"]})
