"""The tracker's own copy of what outbound registered (mail.tracking.registered.v1): collection
`registrations`, one document per message key. The click path reads it through a small cache;
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
        fields = {"account_id": event.account_id, "user_id": event.user_id,
                  "registered_at": event.occurred_at, **{f"links.{k}": v for k, v in links.items()}}
        if event.sent_at is not None:
            fields["sent_at"] = event.sent_at
        await self._col.update_one({"_id": event.message_key}, {"$set": fields}, upsert=True)
        self._cache.pop(event.message_key, None)
        return refused

    async def get(self, message_key: str) -> Registration | None:
        found = self._cache.get(message_key)
        if found is not None:
            self._cache.move_to_end(message_key)
            return found
        doc = await self._col.find_one({"_id": message_key})
        if doc is None:
            return None  # not cached: the registration may still be on its way
        found = Registration(message_key, doc["account_id"], doc["user_id"],
                             {int(k): v for k, v in (doc.get("links") or {}).items()},
                             doc.get("sent_at"), doc["registered_at"])
        self._cache[message_key] = found
        if len(self._cache) > self._cache_size:
            self._cache.popitem(last=False)
        return found
