"""The opened/clicked events as JSON bytes, written directly: on the pixel path, building the
pydantic model and dumping it cost more than classifying the request (docs/tracker.md, Benchmark).

The output is the contract's (maillink_schemas.tracking.TrackingOpened / TrackingClicked), field
for field and in the same order: tests/unit/test_tracker_event_bytes.py parses it back with the
contract's models and compares it with their own dump for every field shape.
"""
from datetime import datetime, timezone
from json.encoder import encode_basestring_ascii as _q  # C: quotes and escapes one string


def _time(at: datetime) -> str:
    # pydantic's form for an aware UTC datetime: seconds, microseconds only when non-zero, "Z".
    micro = at.microsecond
    return (f'"{at.year:04d}-{at.month:02d}-{at.day:02d}T{at.hour:02d}:{at.minute:02d}:{at.second:02d}'
            + (f'.{micro:06d}Z"' if micro else 'Z"'))


def _opt(value: str | None) -> str:
    return "null" if value is None else _q(value)


def _common(event_id: str, at: datetime, message_key: str, account_id: str | None, user_id: str | None,
            ua_family: str, network: str, classification: str, signals: tuple[str, ...], tracking_id: str | None) -> str:
    return (f'{{"event_id":{_q(event_id)},"occurred_at":{_time(at)},"message_key":{_q(message_key)},'
            f'"account_id":{_opt(account_id)},"user_id":{_opt(user_id)},"user_agent_family":{_q(ua_family)},'
            f'"network":{_q(network)},"classification":{_q(classification)},'
            f'"signals":[{",".join(_q(s) for s in signals)}],"tracking_id":{_opt(tracking_id)}')


def opened(event_id: str, at: datetime, message_key: str, account_id: str | None, user_id: str | None,
           ua_family: str, network: str, classification: str, signals: tuple[str, ...],
           tracking_id: str | None) -> bytes:
    """`at` must be UTC (the edge's clock is)."""
    return (_common(event_id, at, message_key, account_id, user_id, ua_family, network, classification, signals,
                    tracking_id) + "}").encode()


# The pixel's fast path (edge.py, Edge.open_now) assembles the same JSON from parts made once: the
# message's (key, account, sender, tracking id) per registration, the verdict's per client and user
# agent, and only the event id and the time per request.

def message_parts(message_key: str, account_id: str | None, user_id: str | None,
                  tracking_id: str | None) -> tuple[bytes, bytes]:
    """(what follows the time up to the verdict, what follows the verdict) of an opened event."""
    return ((f',"message_key":{_q(message_key)},"account_id":{_opt(account_id)},"user_id":{_opt(user_id)},')
            .encode(), f',"tracking_id":{_opt(tracking_id)}}}'.encode())


def verdict_part(ua_family: str, network: str, classification: str, signals: tuple[str, ...]) -> bytes:
    return (f'"user_agent_family":{_q(ua_family)},"network":{_q(network)},"classification":{_q(classification)},'
            f'"signals":[{",".join(_q(s) for s in signals)}]').encode()


def second_part(epoch_second: int) -> bytes:
    """The time up to its seconds, for `assemble` (the caller caches it per second)."""
    at = datetime.fromtimestamp(epoch_second, timezone.utc)
    return (f'"{at.year:04d}-{at.month:02d}-{at.day:02d}T{at.hour:02d}:{at.minute:02d}:{at.second:02d}'
            .encode())


def assemble(event_id: bytes, second: bytes, micro: int, message_head: bytes, verdict: bytes,
             message_tail: bytes) -> bytes:
    """An opened event from its parts; equal to `opened()` with the same fields (tested)."""
    return b"".join((b'{"event_id":"', event_id, b'","occurred_at":', second,
                     b'.%06dZ"' % micro if micro else b'Z"', message_head, verdict, message_tail))


def clicked(event_id: str, at: datetime, message_key: str, account_id: str | None, user_id: str | None,
            ua_family: str, network: str, classification: str, signals: tuple[str, ...], tracking_id: str | None,
            link_index: int, url: str) -> bytes:
    return (_common(event_id, at, message_key, account_id, user_id, ua_family, network, classification, signals,
                    tracking_id) + f',"link_index":{int(link_index)},"url":{_q(url)}}}').encode()
