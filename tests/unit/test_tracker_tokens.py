"""Tracking tokens: short, URL-safe, signed; rotation with a grace period; every tampering refused."""
import base64
from datetime import datetime, timedelta, timezone

import pytest

from maillink_schemas.tracking_token import parse_keys, read

from maillink_schemas import tracking_token as tt

NOW = datetime(2026, 11, 27, 9, 0, tzinfo=timezone.utc)
KEY = "6495eefcada4258efd5dc52ae000a870"
MAX_AGE = timedelta(days=400)
RING = parse_keys("2:2026-11-01:second-secret-0123456789,1:2025-01-01:first-secret-0123456789", timedelta(days=30))


def test_round_trip_carries_message_key_kind_and_link_index():
    for kind, index in (("open", 0), ("click", 0), ("click", 7), ("click", 65535)):
        claims = read(RING, tt.mint(RING, KEY, kind, index, now=NOW), max_age=MAX_AGE, now=NOW)
        assert (claims.message_key, claims.kind, claims.link_index, claims.sender_view, claims.kid) == \
            (KEY, kind, index, False, 2)


def test_a_tracked_url_stays_far_under_200_characters():
    token = tt.mint(RING, KEY, "click", 12, now=NOW)
    assert token.isascii() and all(c.isalnum() or c in "-_" for c in token)
    assert len(f"https://t.mail.example-company.com/c/{token}") < 100
    # Any message key outbound may use (up to 64 bytes) still fits.
    long_token = tt.mint(RING, "k" * 64, "click", 3, now=NOW)
    assert len(f"https://t.mail.example-company.com/c/{long_token}") < 200
    assert read(RING, long_token, max_age=MAX_AGE, now=NOW).message_key == "k" * 64


def test_the_sender_view_flag_is_signed_and_read_back():
    claims = read(RING, tt.mint(RING, KEY, "open", sender_view=True, now=NOW), max_age=MAX_AGE, now=NOW)
    assert claims.sender_view


def test_every_single_byte_change_is_refused():
    token = tt.mint(RING, KEY, "click", 1, now=NOW)
    raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
    for i in range(len(raw)):
        for bit in (0x01, 0x80):
            changed = bytearray(raw)
            changed[i] ^= bit
            forged = base64.urlsafe_b64encode(bytes(changed)).rstrip(b"=").decode()
            assert read(RING, forged, max_age=MAX_AGE, now=NOW) is None, (i, bit)


def test_a_swapped_link_index_is_refused():
    token = tt.mint(RING, KEY, "click", 1, now=NOW)
    raw = bytearray(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
    raw[5:7] = (2).to_bytes(2, "big")
    assert read(RING, base64.urlsafe_b64encode(bytes(raw)).rstrip(b"=").decode(), max_age=MAX_AGE, now=NOW) is None


def test_a_token_signed_with_another_secret_is_refused():
    other = parse_keys("2:2026-11-01:attacker-secret-0123456789", timedelta(days=30))
    assert read(RING, tt.mint(other, KEY, "click", 0, now=NOW), max_age=MAX_AGE, now=NOW) is None


def test_expired_tokens_are_refused():
    old = tt.mint(RING, KEY, "open", now=NOW - timedelta(days=401))
    assert read(RING, old, max_age=timedelta(days=1000), now=NOW) is not None
    assert read(RING, old, max_age=MAX_AGE, now=NOW) is None


def test_rotation_old_key_verifies_during_the_grace_period_only():
    before = datetime(2026, 10, 15, tzinfo=timezone.utc)
    old_token = tt.mint(RING, KEY, "open", now=before)
    assert read(RING, old_token, max_age=MAX_AGE, now=before).kid == 1  # key 1 signed before key 2 started
    assert read(RING, old_token, max_age=MAX_AGE, now=datetime(2026, 11, 30, tzinfo=timezone.utc)) is not None
    assert read(RING, old_token, max_age=MAX_AGE, now=datetime(2026, 12, 2, tzinfo=timezone.utc)) is None
    # New tokens are signed with key 2 from its start date on.
    assert read(RING, tt.mint(RING, KEY, "open", now=NOW), max_age=MAX_AGE, now=NOW).kid == 2


def test_a_key_that_is_not_active_yet_neither_signs_nor_verifies():
    ring = parse_keys("3:2027-01-01:future-secret-0123456789,1:2025-01-01:first-secret-0123456789", timedelta(days=30))
    assert ring.signing_key(NOW).kid == 1
    future_only = parse_keys("3:2027-01-01:future-secret-0123456789", timedelta(days=30))
    forged = tt.mint(future_only, KEY, "open", now=datetime(2027, 1, 2, tzinfo=timezone.utc))
    assert read(ring, forged, max_age=MAX_AGE, now=NOW) is None


@pytest.mark.parametrize("text", ["", "x", "%%%", "A" * 500, "//evil.example", "javascript:alert(1)",
                                  "abc\r\ndef" * 5, "é" * 30, "AQJBCdoAA2SV7vytpCWO_V3FKuAAqHAEe0G0O2gvoCfdits="])
def test_garbage_is_refused_without_raising(text):
    assert read(RING, text, max_age=MAX_AGE, now=NOW) is None


@pytest.mark.parametrize("spec,error", [("", "no tracking keys"), ("0:2026-01-01:" + "s" * 20, "1 to 255"),
                                        ("1:2026-01-01:short", "16 bytes"), ("1:yesterday:" + "s" * 20, "YYYY-MM-DD"),
                                        ("1:2026-01-01:" + "s" * 20 + ",1:2026-02-01:" + "t" * 20, "unique")])
def test_bad_key_specs_are_refused_in_words(spec, error):
    with pytest.raises(ValueError, match=error):
        parse_keys(spec, timedelta(days=1))
