"""Telling an outage from a bad message.

A consumer must never dead-letter a healthy message because the store or the broker was away for
a while (ARCHITECTURE.md, "Rules of the bus"): an outage pauses the consumer, which keeps its
offset and retries until the dependency is back; only an error of the message itself uses up the
bounded retries and ends on the dead-letter topic.
"""
import asyncio

from aiokafka.errors import KafkaConnectionError, KafkaError, KafkaTimeoutError
from pymongo.errors import ConnectionFailure, WriteConcernError

# Errors that say "the other side is unreachable or busy", not "this input is wrong".
_OUTAGES = (ConnectionFailure,      # AutoReconnect, NetworkTimeout, ServerSelectionTimeoutError, ...
            WriteConcernError,      # the write could not be made durable right now
            KafkaConnectionError, KafkaTimeoutError,
            ConnectionError,        # refused / reset / aborted sockets (OSError subclasses)
            TimeoutError, asyncio.TimeoutError)


# The exception classes an HTTP route answers with a worded 503 (http.answer_outages_in_words):
# the driver's and the broker client's own, not the plain socket errors a route may meet elsewhere.
OUTAGE_TYPES = (ConnectionFailure, WriteConcernError, KafkaConnectionError, KafkaTimeoutError)


def is_outage(exc: BaseException) -> bool:
    """True when `exc`, or an error it was raised from, is a dependency being unavailable."""
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(exc, _OUTAGES) or (isinstance(exc, KafkaError) and exc.retriable):
            return True
        exc = exc.__cause__ or exc.__context__
    return False
