"""Turns fetched messages into stored blobs and published events, in that order.

The claim-check blob is durable before the event that references it is published, and the folder
state is saved only after the broker acknowledged the events. Handlers are idempotent, so being
killed between any two of these steps is harmless: the batch is fetched and delivered again, the
blobs are already there, and the repeated events carry the same ids and message keys.
"""
from collections.abc import Awaitable, Callable

from prometheus_client import Counter

from maillink_schemas.accounts import AccountConfigured
from maillink_schemas.mail import MessageReceived

from maillink_runtime.blobs.store import BlobStore
from ..adapters.locations import LocationStore
from ..domain.envelope import parse
from ..domain.identity import blob_id
from ..domain.received import received_event
from ..imap.fetch import Fetched

Publish = Callable[[list[tuple[str, MessageReceived]]], Awaitable[None]]

MESSAGES = Counter("maillink_ingest_messages_total", "Messages fetched and published", ["direction"])
BYTES = Counter("maillink_ingest_bytes_total", "Raw MIME bytes fetched")


class Delivery:
    def __init__(self, blobs: BlobStore, publish: Publish, locations: LocationStore | None = None) -> None:
        self._blobs = blobs
        self._publish = publish
        self._locations = locations  # message key -> (folder, uidvalidity, uid), for sync-back commands

    async def deliver(self, account: AccountConfigured, folder: str, uidvalidity: int, in_sent_folder: bool,
                      fetched: list[Fetched], annotate: Callable[[MessageReceived], MessageReceived] | None = None
                      ) -> int:
        events, blobs = [], {}
        for item in fetched:
            blob = blob_id(item.raw)
            blobs[blob] = item.raw
            event = received_event(account, folder, uidvalidity, item.uid, item.flags, item.internal_date,
                                   in_sent_folder, item.raw, blob, parse(item.raw))
            events.append(annotate(event) if annotate else event)  # Gmail labels (sync/gmail.py)
        await self._blobs.put_many(blobs)
        if self._locations:
            await self._locations.record_many(account.account_id, [(folder, uidvalidity, e.location.uid, e.message_key)
                                                                   for e in events])
        await self._publish([(account.account_id, e) for e in events])
        for e in events:
            MESSAGES.labels(e.direction.value).inc()
        BYTES.inc(sum(len(r) for r in blobs.values()))
        return len(events)
