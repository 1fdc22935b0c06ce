"""The malformed corpus (tests/corpus) through the parser and ingest's event builder, in-process:
the fast half of tests/e2e/test_corpus.py, which sends the same cases through Dovecot and the services."""
import pytest

from maillink_schemas.bounds import MAX_EVENT_BYTES
from maillink_ingest.domain.envelope import parse
from maillink_ingest.domain.identity import blob_id
from maillink_ingest.domain.received import received_event
from maillink_schemas.mail import MessageReceived
from tests.corpus.generated import corpus
from tests.unit.test_envelope_robust import ACCOUNT, ARRIVED

CASES = list(corpus())
# What a reader of each kind of breakage must be told on the event.
EXPECTED_WARNINGS = {
    "13-message-id-missing": "no Message-ID", "21-date-unparsable": "unreadable Date header",
    "22-date-missing": "no Date header", "19-date-year-9999": "unreadable Date header",
    "10-headers-8bit-utf8": "unencoded 8-bit bytes", "11-headers-8bit-latin1": "unencoded 8-bit bytes",
    "25-nul-bytes": "control characters removed", "06-charset-unknown-header": "undecodable encoded word",
}


@pytest.mark.parametrize("name,raw", CASES, ids=[name for name, _ in CASES])
def test_every_corpus_case_gives_a_bounded_valid_event(name, raw):
    event = received_event(ACCOUNT, "INBOX", 1, 7, (), ARRIVED, False, raw, blob_id(raw), parse(raw))
    wire = event.model_dump_json()
    assert len(wire) <= MAX_EVENT_BYTES and MessageReceived.model_validate_json(wire) == event
    assert event.envelope.date is not None  # the header's, else INTERNALDATE
    if name in EXPECTED_WARNINGS:
        assert any(EXPECTED_WARNINGS[name] in w for w in event.parse_warnings), event.parse_warnings


def test_the_big_cases_are_capped_with_counts():
    by_name = dict(CASES)
    raw = by_name["recipients-40000"]
    event = received_event(ACCOUNT, "INBOX", 1, 7, (), ARRIVED, False, raw, blob_id(raw), parse(raw))
    assert event.truncated["to"] == 40_000 - 100 and len(event.envelope.to) == 100
    raw = by_name["subject-1mb"]
    event = received_event(ACCOUNT, "INBOX", 1, 7, (), ARRIVED, False, raw, blob_id(raw), parse(raw))
    assert len(event.envelope.subject) == 1000
