"""Public keys by `kid`, from a JWKS file or URL. Rotation: a new key is added to the set, tokens
signed with the old one keep verifying until that key is removed from the set.

Only asymmetric keys are accepted (EdDSA on Ed25519, ES256 on P-256): a service that verifies can
never mint, and an HMAC key or `alg: none` can never be smuggled in through the key set.
"""
import asyncio
import json
import os
import time

import httpx
import jwt
import structlog

ALGORITHMS = ("EdDSA", "ES256")
_ALLOWED = {("OKP", "Ed25519"): "EdDSA", ("EC", "P-256"): "ES256"}
log = structlog.get_logger()


def parse_jwks(data: dict) -> dict[str, jwt.PyJWK]:
    keys = {}
    for entry in data.get("keys", []):
        alg = _ALLOWED.get((entry.get("kty"), entry.get("crv")))
        if alg is None or not entry.get("kid") or entry.get("use", "sig") != "sig" or "d" in entry:
            # Wrong type, no kid, an encryption key, or a private key published by mistake: never used.
            log.warning("jwks_key_ignored", kid=entry.get("kid"), kty=entry.get("kty"), crv=entry.get("crv"))
            continue
        keys[entry["kid"]] = jwt.PyJWK({**entry, "alg": alg})
    return keys


class FileKeySet:
    """A JWKS file, re-read whenever it changes on disk (rotation without a restart)."""

    def __init__(self, path: str) -> None:
        self._path = path
        self._stamp: tuple[int, int] | None = None
        self._keys: dict[str, jwt.PyJWK] = {}

    async def key(self, kid: str) -> jwt.PyJWK | None:
        stat = os.stat(self._path)
        stamp = (stat.st_mtime_ns, stat.st_size)
        if stamp != self._stamp:
            with open(self._path, encoding="utf-8") as fh:
                self._keys = parse_jwks(json.load(fh))
            self._stamp = stamp
        return self._keys.get(kid)


class UrlKeySet:
    """The identity provider's JWKS endpoint: cached; an unknown kid triggers a re-fetch, at most
    once per `min_refresh_s`, so forged kids cannot turn every request into a fetch."""

    def __init__(self, url: str, ttl_s: float = 300, min_refresh_s: float = 30) -> None:
        self._url, self._ttl, self._min_refresh = url, ttl_s, min_refresh_s
        self._keys: dict[str, jwt.PyJWK] = {}
        self._fetched_at = float("-inf")
        self._lock = asyncio.Lock()

    async def key(self, kid: str) -> jwt.PyJWK | None:
        age = time.monotonic() - self._fetched_at
        if age > self._ttl or (kid not in self._keys and age > self._min_refresh):
            async with self._lock:
                # Another request may have refreshed while this one waited for the lock.
                if time.monotonic() - self._fetched_at > self._min_refresh:
                    await self._refresh()
        return self._keys.get(kid)

    async def _refresh(self) -> None:
        self._fetched_at = time.monotonic()  # also after a failure: the provider is not hammered
        try:
            async with httpx.AsyncClient(timeout=5) as client:  # TLS verified by default
                response = await client.get(self._url)
                response.raise_for_status()
            self._keys = parse_jwks(response.json())
        except (httpx.HTTPError, ValueError) as exc:
            # The keys already known keep working; tokens signed with a new key wait for the next try.
            log.warning("jwks_fetch_failed", url=self._url, error=type(exc).__name__)


def key_set(jwks_file: str | None, jwks_url: str | None):
    return FileKeySet(jwks_file) if jwks_file else UrlKeySet(jwks_url)
