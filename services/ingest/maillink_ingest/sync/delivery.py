"""Turns fetched messages into stored blobs and published events, in that order; and publishes
what sync learns about delivered messages (flag changes, expunges, audits, dead letters).

The claim-check blob is durable before the event that references it is published, and the folder
state is saved only after the broker acknowledged the events. Handlers are idempotent, so being
killed between any two of these steps is harmless: the batch is fetched and delivered again, the
blobs are already there, and the repeated events carry the same ids and message keys.

A message whose event cannot be published (still over the size limit after capping) is a poison
message: its blob is stored, it goes to the dead-letter topic with the raw reference and the
reason, and the batch goes on without it.
"""
import hashlib
import json
from collections import Counter as Counter_
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import structlog
from prometheus_client import Counter
from pydantic import BaseModel

from maillink_schemas.accounts import AccountConfigured
from maillink_schemas.mail import BlobRef, MessageReceived
from maillink_schemas.topics import Topic

from maillink_runtime.blobs.store import BlobStore
from ..adapters.locations import Location, LocationStore
from maillink_schemas.bounds import MAX_EVENT_BYTES
from ..domain.envelope import parse
from ..domain.identity import blob_id
from ..domain.received import ReceivedBytes, received_bytes, received_event
from ..imap.fetch import Fetched


@dataclass(frozen=True, slots=True)
class Outgoing:
    """One received event on its way to Kafka: the key and the event's JSON, serialised once
    (Delivery needs the size for the broker's limit anyway; the publisher sends these bytes).
    The model is not built on the hot path (domain/received.py); `event` parses it back for readers
    that want one (tests, and publishers that take (key, event) pairs)."""
    key: str
    received: ReceivedBytes

    @property
    def payload(self) -> bytes:
        return self.received.payload

    @property
    def event(self) -> MessageReceived:
        return MessageReceived.model_validate_json(self.received.payload)


Publish = Callable[[list[Outgoing]], Awaitable[None]]
# Publishes other events of ingest: (topic, [(key, event)]).
Emit = Callable[[Topic, list[tuple[str, BaseModel]]], Awaitable[None]]
# (key, payload, reason, error, offset) -> the record is on mail.message.received.v1.dlq.
DeadLetter = Callable[[str, bytes, str, str, int], Awaitable[None]]

MESSAGES = Counter("maillink_ingest_messages_total", "Messages fetched and published", ["direction"])
BYTES = Counter("maillink_ingest_bytes_total", "Raw MIME bytes fetched")
POISON = Counter("maillink_ingest_poison_messages_total",
                 "Messages that could not be fetched or published, recorded and dead-lettered", ["reason"])
log = structlog.get_logger()


@dataclass
class Delivered:
    uids: list[int] = field(default_factory=list)
    poison: dict[int, str] = field(default_factory=dict)

    def __int__(self) -> int:
        return len(self.uids)


class Delivery:
    def __init__(self, blobs: BlobStore, publish: Publish, *, locations: LocationStore | None = None,
                 emit: Emit | None = None, dead_letter: DeadLetter | None = None) -> None:
        self._blobs = blobs
        self._publish = publish
        self.locations = locations
        self._emit = emit
        self._dead_letter = dead_letter

    async def deliver(self, account: AccountConfigured, folder: str, uidvalidity: int, in_sent_folder: bool,
                      fetched: list[Fetched], annotate: Callable[[MessageReceived], MessageReceived] | None = None,
                      turn: Callable[[], Awaitable[None]] | None = None,
                      published: Callable[[], None] | None = None) -> Delivered:
        """`turn`, when given, is awaited after the blobs are stored and before anything is published
        (sync/pipeline.py: the previous group publishes first); `published` is called once the broker
        acknowledged this group's events (the next group may publish while this one records locations)."""
        events, blobs, located, result = [], {}, [], Delivered()
        for item in fetched:
            blob = blob_id(item.raw)
            blobs[blob] = item.raw
            args = (account, folder, uidvalidity, item.uid, item.flags, item.internal_date, in_sent_folder, item.raw,
                    blob, parse(item.raw))
            if annotate:  # Gmail labels, X-GM-MSGID/THRID (sync/gmail.py) annotate the model
                received = ReceivedBytes.of(annotate(received_event(*args)))
            else:
                received = received_bytes(*args)
            if len(received.payload) > MAX_EVENT_BYTES:
                result.poison[item.uid] = f"event too large for the broker ({len(received.payload)} bytes after capping)"
                continue
            events.append(Outgoing(account.account_id, received))
            located.append(Location(folder, uidvalidity, item.uid, received.message_key, received.message_id,
                                    received.flags, blob))
        await self._blobs.put_many(blobs)
        if turn is not None:
            await turn()
        await self._publish(events)
        if published is not None:
            published()
        if self.locations:
            await self.locations.record(account.account_id, located)
        for direction, count in Counter_(o.received.direction.value for o in events).items():
            MESSAGES.labels(direction).inc(count)  # one label look-up per direction, not per message
        BYTES.inc(sum(len(r) for r in blobs.values()))
        result.uids = [o.received.uid for o in events]
        by_uid = {f.uid: f for f in fetched}
        for uid, reason in result.poison.items():
            raw = by_uid[uid].raw
            await self.poisoned(account, folder, uidvalidity, uid, reason,
                                BlobRef(blob_id=blob_id(raw), size=len(raw), owner="ingest"))
        return result

    async def poisoned(self, account: AccountConfigured, folder: str, uidvalidity: int, uid: int, reason: str,
                       raw: BlobRef | None = None) -> None:
        """Records a message that cannot be fetched or published: metric, log, dead-letter topic."""
        kind = "too_large" if "too large" in reason else "fetch_refused" if "refused" in reason else "no_content"
        POISON.labels(kind).inc()
        log.error("message_poisoned", folder=folder, uid=uid, reason=reason)
        if self._dead_letter is None:
            return
        payload = json.dumps({"account_id": account.account_id, "folder": folder, "uidvalidity": uidvalidity,
                              "uid": uid, "raw": raw.model_dump() if raw else None, "reason": reason}).encode()
        # The dead-letter record's id is derived from its offset: a stable number unique to this location.
        offset = int.from_bytes(hashlib.sha256(f"{account.account_id}\x1f{folder}\x1f{uidvalidity}\x1f{uid}".encode())
                                .digest()[:7], "big")
        await self._dead_letter(account.account_id, payload, kind, reason, offset)

    async def emit(self, topic: Topic, events: list[tuple[str, BaseModel]]) -> None:
        if not events:
            return
        if self._emit is None:
            raise RuntimeError(f"ingest is not wired to publish {topic}")
        await self._emit(topic, events)

    async def blob_exists(self, blob: str) -> bool:
        return await self._blobs.exists(blob)
