"""The tracker's own copy of what outbound registered (mail.tracking.registered.v1): collection
`registrations`, one document per tracked message, keyed by the id its tokens carry: the
registration's `tracking_id` (outbound's, derived from the Message-ID) or, without one, the message
key itself. The document also holds the message key, which events and stats use. The click path
reads it through a small cache;
a registration never changes a link once set, so a cached entry cannot go stale in a way that
matters (a re-registration only adds)."""
from collections import OrderedDict
from dataclasses import dataclass
from datetime import datetime

import structlog
from pymongo.asynchronous.database import AsyncDatabase

from maillink_schemas.tracking import TrackingRegistered

from ..domain.redirects import safe_target

log = structlog.get_logger()


@dataclass(frozen=True)
class Registration:
    message_key: str
    account_id: str
    user_id: str
    links: dict[int, str]
    sent_at: datetime | None
    registered_at: datetime

    @property
    def delivered_at(self) -> datetime:
        return self.sent_at or self.registered_at


class RegistrationStore:
    def __init__(self, db: AsyncDatabase, cache_size: int = 50_000) -> None:
        self._col = db["registrations"]
        self._cache: OrderedDict[str, Registration] = OrderedDict()
        self._cache_size = cache_size

    async def upsert(self, event: TrackingRegistered) -> int:
        """Stores the registration (idempotent); returns how many links were refused as unsafe."""
        links = {str(link.index): link.url for link in event.links if safe_target(link.url)}
        refused = len(event.links) - len(links)
        if refused:
            log.warning("unsafe_links_refused", message_key=event.message_key, refused=refused)
        fields = {"message_key": event.message_key, "account_id": event.account_id, "user_id": event.user_id,
                  "registered_at": event.occurred_at, **{f"links.{k}": v for k, v in links.items()}}
        if event.sent_at is not None:
            fields["sent_at"] = event.sent_at
        token_id = event.tracking_id or event.message_key
        await self._col.update_one({"_id": token_id}, {"$set": fields}, upsert=True)
        self._cache.pop(token_id, None)
        return refused

    async def ensure_indexes(self) -> None:
        await self._col.create_index("message_key")

    async def get(self, token_id: str) -> Registration | None:
        """By the id a token carries (a tracking id, or a message key)."""
        found = self._cache.get(token_id)
        if found is not None:
            self._cache.move_to_end(token_id)
            return found
        doc = await self._col.find_one({"_id": token_id})
        if doc is None:
            return None  # not cached: the registration may still be on its way
        found = _registration(doc)
        self._cache[token_id] = found
        if len(self._cache) > self._cache_size:
            self._cache.popitem(last=False)
        return found

    def cached(self, token_id: str) -> Registration | None:
        """The registration if it is in the cache, without asking the store (the pixel's fast path;
        on None it calls `get`)."""
        found = self._cache.get(token_id)
        if found is not None:
            self._cache.move_to_end(token_id)
        return found

    async def by_message_key(self, message_key: str) -> Registration | None:
        """For the stats API, which names messages by their key."""
        doc = await self._col.find_one({"message_key": message_key}) or await self._col.find_one({"_id": message_key})
        return _registration(doc) if doc is not None else None


def _registration(doc: dict) -> Registration:
    # Documents written before registrations held their message key are keyed by it.
    return Registration(doc.get("message_key") or doc["_id"], doc["account_id"], doc["user_id"],
                        {int(k): v for k, v in (doc.get("links") or {}).items()},
                        doc.get("sent_at"), doc["registered_at"])
