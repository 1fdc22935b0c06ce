"""Blob keys, MAILLINK_BLOB_URL parsing, the plain-HTTP rule and If-None-Match: pure functions."""
import hashlib

import pytest

from maillink_runtime.blobs.location import (BlobLocation, blob_key, default_blob_url, parse_blob_url,
                                                    s3_http_allowed)
from maillink_runtime.blobs.download import not_modified
from maillink_runtime.blobs.settings import BlobSettings

SHA = hashlib.sha256(b"x").hexdigest()


def test_keys_fan_out_by_the_first_byte_under_the_owner():
    assert blob_key("ingest", SHA) == f"ingest/{SHA[:2]}/{SHA}"


@pytest.mark.parametrize("bad", ["", SHA[:-1], SHA.upper(), f"../{SHA[3:]}", SHA + "0", "g" * 64])
def test_only_lowercase_sha256_hex_is_a_key(bad):
    with pytest.raises(ValueError):
        blob_key("ingest", bad)


@pytest.mark.parametrize("url, expected", [
    ("file:///var/lib/maillink/blobs", BlobLocation("file", "/var/lib/maillink/blobs")),
    ("file://localhost/srv/b%20x/", BlobLocation("file", "/srv/b x")),
    ("s3://mail-bucket", BlobLocation("s3", "mail-bucket", "")),
    ("s3://mail-bucket/prod/raw/", BlobLocation("s3", "mail-bucket", "prod/raw")),
    ("s3a://mail-bucket/p", BlobLocation("s3", "mail-bucket", "p")),
])
def test_blob_urls(url, expected):
    assert parse_blob_url(url) == expected


@pytest.mark.parametrize("url", ["file://relative/dir", "file://otherhost/dir", "s3:///prefix-only",
                                 "gs://bucket/x", "/plain/path", "https://s3.example.com/bucket"])
def test_unsupported_blob_urls_are_refused_with_the_variable_named(url):
    with pytest.raises(ValueError, match="MAILLINK_BLOB_URL"):
        parse_blob_url(url)


def test_the_default_store_is_blobs_in_the_run_dir(tmp_path, monkeypatch):
    assert parse_blob_url(default_blob_url(tmp_path)) == BlobLocation("file", str(tmp_path / "blobs"))
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MAILLINK_BLOB_URL", raising=False)
    monkeypatch.setenv("MAILLINK_RUN_DIR", "rel/run")  # relative: to the working directory
    assert parse_blob_url(BlobSettings().blob_store_url()).root == str(tmp_path / "rel/run/blobs")
    monkeypatch.setenv("MAILLINK_BLOB_URL", "s3://b/p")
    assert BlobSettings().blob_store_url() == "s3://b/p"


def test_plain_http_to_s3_only_towards_loopback():
    assert s3_http_allowed("http://127.0.0.1:10900", True)
    assert s3_http_allowed("http://localhost:9000", True)
    assert not s3_http_allowed("https://s3.eu-west-1.amazonaws.com", False)
    with pytest.raises(ValueError, match="loopback"):
        s3_http_allowed("http://s3.internal.example:9000", True)
    with pytest.raises(ValueError, match="loopback"):
        s3_http_allowed(None, True)


@pytest.mark.parametrize("header, expected", [
    (None, False), ("", False), (f'"{SHA}"', True), (f'W/"{SHA}"', True), ("*", True),
    (f'"abc", "{SHA}"', True), (f'"{SHA[:-1]}"', False), (SHA, False),
])
def test_if_none_match(header, expected):
    assert not_modified(header, SHA) is expected
