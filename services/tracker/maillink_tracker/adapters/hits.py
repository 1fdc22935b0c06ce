"""What the tracker recorded per message (collection `hits`): opens and clicks (written by the
aggregator from the events, keyed by event id, so a redelivery changes nothing) and HEAD requests
(written by the edge: they are scanner signals, not events). Each holds a time, a /24 or /48
network, the user-agent family and the signals; never an address or a full user agent.

`milestones` remembers which milestone events were published, so each is published once."""
from datetime import datetime, timedelta
from typing import Literal

from pymongo import ASCENDING
from pymongo.asynchronous.database import AsyncDatabase

from maillink_schemas.tracking import TrackingClicked, TrackingOpened

from ..domain.classify import Past
from ..domain.stats import Recorded


class HitStore:
    def __init__(self, db: AsyncDatabase) -> None:
        self._hits, self._milestones = db["hits"], db["milestones"]

    async def ensure_indexes(self) -> None:
        await self._hits.create_index([("message_key", ASCENDING), ("at", ASCENDING)])
        await self._hits.create_index([("at", ASCENDING)])

    async def record_event(self, event: TrackingOpened | TrackingClicked, message_key: str) -> None:
        """`message_key`: the registered message's (the event's may be a token id, see the contract)."""
        kind = "click" if isinstance(event, TrackingClicked) else "open"
        doc = {"message_key": message_key, "kind": kind, "at": event.occurred_at,
               "link_index": getattr(event, "link_index", 0), "network": event.network,
               "ua_family": event.user_agent_family, "classification": event.classification,
               "signals": list(event.signals)}
        await self._hits.update_one({"_id": event.event_id}, {"$setOnInsert": doc}, upsert=True)

    async def record_head(self, head_id: str, message_key: str, kind: Literal["open", "click"], link_index: int,
                          network: str, ua_family: str, at: datetime) -> None:
        await self._hits.insert_one({"_id": head_id, "message_key": message_key, "kind": "head", "target": kind,
                                     "at": at, "link_index": link_index, "network": network,
                                     "ua_family": ua_family, "signals": ["head_request"]})

    async def recorded(self, message_key: str) -> list[Recorded]:
        docs = await self._hits.find({"message_key": message_key}).to_list(None)
        return [Recorded(d["kind"], d["at"], tuple(d.get("signals") or ()), d.get("link_index", 0),
                         d.get("network", "")) for d in docs]

    async def history(self, message_key: str) -> tuple[Past, ...]:
        return tuple(Past(r.kind, r.at, r.link_index, r.network) for r in await self.recorded(message_key))

    async def milestone_published(self, message_key: str, milestone: str) -> bool:
        return await self._milestones.find_one({"_id": f"{message_key}:{milestone}"}) is not None

    async def mark_milestone(self, message_key: str, milestone: str) -> None:
        # Marked after the publish: a crash in between publishes it again with the same event id,
        # which consumers deduplicate; the other order could lose it.
        await self._milestones.update_one({"_id": f"{message_key}:{milestone}"}, {"$set": {"done": True}},
                                          upsert=True)

    async def purge(self, now: datetime, retention: timedelta) -> int:
        result = await self._hits.delete_many({"at": {"$lt": now - retention}})
        return result.deleted_count
