"""The edge writes its events' JSON itself (adapters/event_bytes.py): it must be the contract's,
byte for byte where pydantic's output is ASCII, and parse back to the same event in every case."""
from datetime import datetime, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from maillink_schemas.tracking import TrackingClicked, TrackingOpened
from maillink_tracker.adapters import event_bytes

AT = datetime(2026, 11, 27, 9, 42, 8, 700972, tzinfo=timezone.utc)


def opened_model(**fields) -> TrackingOpened:
    return TrackingOpened(**{"event_id": "e1", "occurred_at": AT, "message_key": "6495eefcada4258efd5dc52ae000a870",
                             "account_id": "acc-1", "user_id": "u-1", "user_agent_family": "AppleMail",
                             "network": "203.0.113.0/24", "classification": "human", "signals": [], **fields})


def opened_bytes(m: TrackingOpened) -> bytes:
    return event_bytes.opened(m.event_id, m.occurred_at, m.message_key, m.account_id, m.user_id, m.user_agent_family,
                              m.network, m.classification, tuple(m.signals), m.tracking_id)


@pytest.mark.parametrize("fields", [
    {},
    {"occurred_at": AT.replace(microsecond=0)},  # pydantic drops zero microseconds
    {"occurred_at": AT.replace(microsecond=5)},
    {"account_id": None, "user_id": None},  # the pixel when the registration is unknown
    {"signals": ["apple_mpp"], "classification": "machine", "network": "2001:db8:1::/48"},
    {"signals": ["google_image_proxy", "link_scanner_network:microsoft"]},
    {"message_key": 'm-"quoted"\\back'},
    {"tracking_id": "3f0c2b1e9d8a7f6e5d4c3b2a19087f6e"},
])
def test_opened_is_the_contracts_json(fields):
    model = opened_model(**fields)
    assert opened_bytes(model) == model.model_dump_json().encode()


@pytest.mark.parametrize("tracking_id", [None, "3f0c2b1e9d8a7f6e5d4c3b2a19087f6e"])
def test_clicked_is_the_contracts_json(tracking_id):
    model = TrackingClicked(**opened_model(signals=["click_without_open"], classification="machine",
                                           tracking_id=tracking_id).model_dump(),
                            link_index=3, url="https://acme.example/offer?id=7&x=%20#top")
    ours = event_bytes.clicked(model.event_id, model.occurred_at, model.message_key, model.account_id, model.user_id,
                               model.user_agent_family, model.network, model.classification, tuple(model.signals),
                               model.tracking_id, model.link_index, model.url)
    assert ours == model.model_dump_json().encode()


@settings(max_examples=300, deadline=None)
@given(key=st.text(min_size=1, max_size=64), account=st.none() | st.text(max_size=20),
       micro=st.integers(0, 999_999), signals=st.lists(st.text(max_size=30), max_size=4))
def test_any_text_parses_back_to_the_same_event(key, account, micro, signals):
    model = opened_model(message_key=key, account_id=account, occurred_at=AT.replace(microsecond=micro),
                         signals=signals)
    assert TrackingOpened.model_validate_json(opened_bytes(model)) == model


@settings(max_examples=300, deadline=None)
@given(key=st.text(min_size=1, max_size=64), account=st.none() | st.text(max_size=20),
       tracking=st.none() | st.text(max_size=40), micro=st.integers(0, 999_999),
       second=st.integers(0, 4_000_000_000), signals=st.lists(st.text(max_size=30), max_size=4))
def test_the_fast_paths_parts_assemble_to_the_same_bytes(key, account, tracking, micro, second, signals):
    at = datetime.fromtimestamp(second, timezone.utc).replace(microsecond=micro)
    model = opened_model(message_key=key, account_id=account, tracking_id=tracking, occurred_at=at,
                         signals=signals, event_id="0123456789abcdef0000000000000001")
    head, tail = event_bytes.message_parts(key, account, model.user_id, tracking)
    verdict = event_bytes.verdict_part(model.user_agent_family, model.network, model.classification, tuple(signals))
    assembled = event_bytes.assemble(model.event_id.encode(), event_bytes.second_part(second), micro, head, verdict,
                                     tail)
    assert assembled == opened_bytes(model)
    assert TrackingOpened.model_validate_json(assembled) == model
