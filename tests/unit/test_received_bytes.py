"""Ingest and the Smart Bcc gateway write the received event's JSON without building the model (their
domain/received.py `received_bytes`, both through maillink_schemas.received_json): the bytes must be
the contract's. Over generated envelopes (unicode, empty and
None fields, lists past every cap, dates in any offset) the fast path's bytes parse back with
`MessageReceived.model_validate_json` to the model built the plain way (`received_event`), and are
byte for byte that model's `model_dump_json()`."""
from datetime import datetime, timedelta, timezone

from hypothesis import given, settings
from hypothesis import strategies as st

from maillink_devtools.mailgen import Mail
from maillink_schemas.bounds import MAX_ADDRESSES, MAX_EVENT_BYTES
from maillink_ingest.domain.identity import blob_id
from maillink_bcc_gateway.domain import received as bcc_received
from maillink_ingest.domain.received import ReceivedBytes, received_bytes, received_event
from maillink_schemas.accounts import AccountConfigured, ImapEndpoint
from maillink_schemas.mail import Address, BulkSignals, Direction, Envelope, MessageReceived
from maillink_schemas.mime import ParsedMessage, parse

AT = datetime(2026, 11, 27, 9, 42, 8, 700972, tzinfo=timezone.utc)


def account(email: str = "Me@Example.com") -> AccountConfigured:
    return AccountConfigured(event_id="e", occurred_at=AT, account_id="acc-1", user_id="u-1", email=email,
                             imap=ImapEndpoint(host="imap.example.com", port=993), username="me",
                             secret_ciphertext="x")


def both(acc, parsed, raw=b"Subject: x\r\n\r\nbody\r\n", *, folder="INBOX", uidvalidity=1, uid=7, flags=(),
         internal_date=AT, in_sent=False, occurred_at=AT) -> tuple[ReceivedBytes, MessageReceived]:
    args = (acc, folder, uidvalidity, uid, flags, internal_date, in_sent, raw, blob_id(raw), parsed)
    return received_bytes(*args, occurred_at=occurred_at), received_event(*args, occurred_at=occurred_at)


def assert_same(fast: ReceivedBytes, slow: MessageReceived) -> None:
    assert MessageReceived.model_validate_json(fast.payload) == slow      # what the matcher reads back
    assert fast.payload == slow.model_dump_json().encode()                  # and the very bytes
    assert (fast.message_key, fast.message_id, fast.flags, fast.direction, fast.uid) == (
        slow.message_key, slow.envelope.message_id, tuple(slow.flags), slow.direction, slow.location.uid)
    assert ReceivedBytes.of(slow) == fast                                   # the Gmail path's record


text = st.text(max_size=40)  # any unicode but lone surrogates (neither path can encode those)
maybe_text = st.none() | text
offsets = st.integers(-14 * 60, 14 * 60).map(lambda m: timezone(timedelta(minutes=m)))
dates = st.none() | st.datetimes(min_value=datetime(1970, 1, 2), max_value=datetime(2100, 1, 1),
                                 timezones=st.just(timezone.utc) | offsets)
address = st.builds(Address, email=st.text(min_size=1, max_size=30).map(lambda s: s + "@x.test") | st.just("a" * 400),
                     name=st.none() | st.just("") | text | st.just("n" * 300))


def addresses(most: int = 4):
    # Mostly short lists; sometimes past MAX_ADDRESSES so `truncated` is exercised.
    return st.lists(address, max_size=most) | st.lists(address, min_size=MAX_ADDRESSES + 1,
                                                       max_size=MAX_ADDRESSES + 3)


ids = st.text(min_size=0, max_size=20) | st.just("i" * 1200)
envelopes = st.builds(
    Envelope,
    message_id=st.none() | st.just("") | ids,
    in_reply_to=st.lists(ids, max_size=14),
    references=st.lists(ids, max_size=3) | st.lists(ids, min_size=49, max_size=60),
    subject=text | st.just("") | st.just("Ř" * 1100),
    date=dates,
    **{"from": addresses()},
    sender=st.none() | address,
    to=addresses(), cc=addresses(2), bcc=addresses(2), reply_to=addresses(2),
)
parsed_messages = st.builds(
    ParsedMessage, envelope=envelopes, snippet=text, has_attachments=st.booleans(),
    bulk=st.builds(BulkSignals, list_id=maybe_text | st.just("l" * 1100), list_unsubscribe=st.booleans(),
                   precedence=maybe_text | st.just("bulk" * 20), auto_submitted=maybe_text),
    provider_thread_id=maybe_text, error=maybe_text | st.just("e" * 2100),
    warnings=st.lists(st.sampled_from(["Date unreadable", "charset x-unknown read as UTF-8", "Subject ünïcode"])
                      | text, max_size=3).map(tuple),
)


@settings(max_examples=200, deadline=None)
@given(parsed=parsed_messages, raw=st.binary(max_size=200), folder=st.text(min_size=1, max_size=20),
       uidvalidity=st.integers(1, 2**32 - 1), uid=st.integers(1, 2**32 - 1),
       flags=st.lists(st.text(max_size=300), max_size=3).map(tuple) | st.just(tuple(f"\\F{i}" for i in range(105))),
       internal_date=dates, in_sent=st.booleans(), occurred_at=dates.filter(lambda d: d is not None),
       email=st.sampled_from(["Me@Example.com", "me@example.com", "Ünï@Example.com"]))
def test_fast_bytes_are_the_models_json(parsed, raw, folder, uidvalidity, uid, flags, internal_date, in_sent,
                                        occurred_at, email):
    fast, slow = both(account(email), parsed, raw, folder=folder, uidvalidity=uidvalidity, uid=uid, flags=flags,
                      internal_date=internal_date, in_sent=in_sent, occurred_at=occurred_at)
    assert_same(fast, slow)


def test_a_parsed_message_with_every_cap_hit():
    many = [f"to{i}@example.com" for i in range(MAX_ADDRESSES + 40)]
    raw = Mail(sender="Jan Novák <ME@example.com>", to=many, subject="Cenová nabídka " + "x" * 1200,
               body="dobrý den\r\n", message_id="<m1@acme.cz>").to_bytes()
    fast, slow = both(account(), parse(raw), raw, flags=("\\Seen", "$Forwarded"))
    assert_same(fast, slow)
    event = MessageReceived.model_validate_json(fast.payload)
    assert event.truncated == {"to": 40} and event.direction is Direction.OUTGOING   # sent from the owner
    assert len(fast.payload) < MAX_EVENT_BYTES


def test_no_date_falls_back_to_internaldate_in_utc():
    raw = b"From: a@x.test\r\nSubject: s\r\n\r\nb\r\n"
    arrived = datetime(2026, 11, 20, 9, 30, tzinfo=timezone(timedelta(hours=1)))
    fast, slow = both(account(), parse(raw), raw, internal_date=arrived)
    assert_same(fast, slow)
    event = MessageReceived.model_validate_json(fast.payload)
    assert event.envelope.date == arrived and event.envelope.date.utcoffset() == timedelta(0)
    assert any("INTERNALDATE used" in w for w in event.parse_warnings)


def test_a_message_the_parser_cannot_read_still_gives_the_same_event():
    fast, slow = both(account(), parse(b"\xff\xfe\x00garbage"), b"\xff\xfe\x00garbage", internal_date=None)
    assert_same(fast, slow)


@settings(max_examples=300, deadline=None)
@given(env=envelopes)
def test_cap_envelope_returns_an_envelope_within_every_cap_as_it_is_and_caps_the_rest(env):
    # cap_envelope skips the rebuild when nothing would change: the answer must be the rebuild's.
    from maillink_schemas import bounds
    assert bounds.cap_envelope(env) == bounds._capped(env)


@settings(max_examples=200, deadline=None)
@given(parsed=parsed_messages, raw=st.binary(max_size=200), occurred_at=dates.filter(lambda d: d is not None),
       own=st.lists(st.sampled_from(["me@example.com", "alt@example.com", "ünï@example.com"]), min_size=1,
                    max_size=3, unique=True),
       deal=st.none() | st.text(min_size=1, max_size=12), company=st.none() | st.text(max_size=12))
def test_the_gateways_fast_bytes_are_its_models_json(parsed, raw, occurred_at, own, deal, company):
    filing = bcc_received.Filing("u-1", company, own[0], tuple(own), deal)
    fast = bcc_received.received_bytes(filing, raw, blob_id(raw), parsed, occurred_at)
    slow = bcc_received.received_event(filing, raw, blob_id(raw), parsed, occurred_at)
    assert fast.payload == slow.model_dump_json().encode()
    assert MessageReceived.model_validate_json(fast.payload) == slow
    assert (fast.message_key, fast.kafka_key) == (slow.message_key, slow.account_id.encode())


def test_the_gateways_event_for_a_copy_with_every_cap_hit():
    many = [f"to{i}@example.com" for i in range(MAX_ADDRESSES + 40)]
    raw = Mail(sender="Jan Novák <me@example.com>", to=many, subject="x" * 1200, body="b\r\n",
               message_id="<m1@acme.cz>").to_bytes()
    filing = bcc_received.Filing("u-1", "c-1", "me@example.com", ("me@example.com",), "deal-9")
    fast = bcc_received.received_bytes(filing, raw, blob_id(raw), parse(raw), AT)
    assert fast.payload == bcc_received.received_event(filing, raw, blob_id(raw), parse(raw), AT).model_dump_json().encode()
    event = MessageReceived.model_validate_json(fast.payload)
    assert event.truncated == {"to": 40} and event.deal_hint == "deal-9" and event.source.value == "bcc"
    assert event.direction is Direction.OUTGOING
