"""Where raw MIME lives: `MAILLINK_BLOB_URL` parsed into an obstore store, and the key of each blob.

Keys are content addresses fanned out by their first byte, under the owning service's prefix:
`ingest/ab/abcd…` for sha256 `abcd…` (git's layout for its objects). One level, not two
(`ab/cd/…`, 65,536 leaf directories): on a young local store almost every blob of a two-level
layout lands in a directory of its own, so each put also creates a directory and each flush writes
out one directory block per blob. Measured with obstore's LocalStore (4,000 blobs of 3-18 KB,
groups of 200, three runs on a loaded 2-core machine): two levels 0.69-1.07k puts/s (1.0-1.4k/s even
with every directory made beforehand), one level 1.5-2.7k/s. 256 directories stay fast on ext4's
hashed directories well past 20 million blobs (~80k entries each). On S3 the layout costs nothing
either way: the keys' random hex already spreads its partitions.
"""
import re
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlsplit

from obstore.store import LocalStore, ObjectStore, S3Store

from ..net import is_loopback

BLOB_ID = re.compile(r"^[0-9a-f]{64}$")


@dataclass(frozen=True)
class BlobLocation:
    scheme: str         # "file" or "s3"
    root: str           # an absolute directory, or a bucket
    prefix: str = ""    # inside the bucket, without slashes at either end


def is_blob_id(value: str) -> bool:
    return bool(BLOB_ID.match(value))


def blob_key(owner: str, blob_id: str) -> str:
    if not is_blob_id(blob_id):
        raise ValueError(f"not a blob id (lowercase hex sha256): {blob_id!r}")
    return f"{owner}/{blob_id[:2]}/{blob_id}"


def default_blob_url(run_dir: str | Path) -> str:
    return f"{Path(run_dir).resolve().as_uri()}/blobs"


def parse_blob_url(url: str) -> BlobLocation:
    parts = urlsplit(url)
    if parts.scheme == "file":
        if parts.netloc not in ("", "localhost") or not parts.path.startswith("/"):
            raise ValueError(f"MAILLINK_BLOB_URL {url!r}: a file URL needs an absolute path (file:///dir)")
        return BlobLocation("file", str(Path(unquote(parts.path))))
    if parts.scheme in ("s3", "s3a"):
        if not parts.netloc:
            raise ValueError(f"MAILLINK_BLOB_URL {url!r}: an S3 URL needs a bucket (s3://bucket/prefix)")
        return BlobLocation("s3", parts.netloc, unquote(parts.path).strip("/"))
    raise ValueError(f"MAILLINK_BLOB_URL {url!r}: only file:///dir and s3://bucket/prefix are supported")


def s3_http_allowed(endpoint: str | None, allow_http: bool) -> bool:
    # Plain HTTP only towards a server on this machine (the test versitygw); credentials and mail
    # would otherwise cross the network in clear. Same rule as plain-text IMAP.
    if not allow_http:
        return False
    host = urlsplit(endpoint or "").hostname or ""
    if not is_loopback(host):
        raise ValueError(f"AWS_ALLOW_HTTP is only honoured for a loopback endpoint, not {endpoint!r}")
    return True


def open_store(location: BlobLocation, *, endpoint: str | None = None, region: str | None = None,
               allow_http: bool = False) -> ObjectStore:
    """Credentials are not passed here: obstore reads AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY and
    AWS_SESSION_TOKEN (or instance/web-identity credentials) from the environment itself."""
    if location.scheme == "file":
        return LocalStore(location.root, mkdir=True)
    config = {k: v for k, v in (("endpoint", endpoint), ("region", region)) if v}
    return S3Store(location.root, prefix=location.prefix or None, config=config,
                   client_options={"allow_http": s3_http_allowed(endpoint, allow_http)})
