"""Conversation indexes per CRM record, read by `_id` only: the query API answers "the conversations
of person P" (or a deal, lead, project) without filtering the messages collection, which the
embedded store scans whole (FerretDB v1 on SQLite pushes only `_id` equality down).

- `record_views`, `_id` "<kind>:<id>#<YYYY-MM-DD>" (the message's sort date): `e`, one compact entry
  per message linked to the record that day. An entry is one JSON string (date, key, thread,
  owner, company, status, visibility, linked records): the store decodes a document field by
  field, so a day of a busy person stays one cheap read.
- `record_view_days`, `_id` "<kind>:<id>": the days that have a bucket.

The mail writer keeps them (handlers call MessageStore.flush): before the messages are written,
each message's entry is pulled from the buckets of what it was linked to (`view` on the message
says what was last indexed) and added to the buckets of what it is linked to now. Written before
the message, so a crash in between is repaired by the redelivery (the same pull and add again,
both idempotent). A bucket may keep a stale entry when a redelivery resolves differently from the
crashed attempt: the query reads the page's messages anyway and drops entries that no longer
match their message. Buckets are shared by mailboxes; FerretDB v1 does not make `$addToSet` on
one document atomic across connections, so with several matcher processes an entry can be lost
in a race (one process, the default, has one mail writer and no race; MongoDB is atomic here).
"""
import json
from datetime import datetime, timezone

from pymongo import UpdateOne
from pymongo.asynchronous.database import AsyncDatabase

from maillink_runtime.mongo import bulk_write_chunked

VIEW_KINDS = ("person", "deal", "lead", "project")


def _utc(value: datetime) -> datetime:
    return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value.astimezone(timezone.utc)


def refs_of(doc: dict) -> list[str]:
    """The records whose conversations show this message (only active mail is shown there)."""
    if doc.get("status") != "active":
        return []
    refs = [f"person:{p}" for p in doc.get("person_ids", [])]
    return refs + [f"{kind}:{doc[f'{kind}_id']}" for kind in VIEW_KINDS[1:] if doc.get(f"{kind}_id")]


def entry_of(doc: dict) -> str:
    return json.dumps([_utc(doc["sort_date"]).isoformat(), doc["_id"], doc["thread_id"], doc["user_id"],
                       doc.get("company_id"), doc.get("status"), doc.get("visibility", "private"), refs_of(doc)])


def bucket_id(ref: str, sort_date: datetime) -> str:
    return f"{ref}#{_utc(sort_date).strftime('%Y-%m-%d')}"


class RecordViews:
    def __init__(self, db: AsyncDatabase) -> None:
        self.buckets = db["record_views"]
        self.days = db["record_view_days"]
        self._known_days: set[tuple[str, str]] = set()   # (ref, day) already listed; days are never removed

    async def write(self, docs: list[dict]) -> None:
        """Moves each message's entry to the buckets of its current links; sets `view` on the docs."""
        pulls: dict[str, set[str]] = {}
        adds: dict[str, set[str]] = {}
        for doc in docs:
            old, entry, refs = doc.get("view") or {}, entry_of(doc), refs_of(doc)
            if old.get("entry") == entry and old.get("refs") == refs:
                continue
            for ref in old.get("refs", []):
                pulls.setdefault(bucket_id(ref, doc["sort_date"]), set()).add(old["entry"])
            for ref in refs:
                adds.setdefault(bucket_id(ref, doc["sort_date"]), set()).add(entry)
            doc["view"] = {"entry": entry, "refs": refs}
        new_days: dict[str, set[str]] = {}
        for bucket in adds:
            ref, day = bucket.rsplit("#", 1)
            if (ref, day) not in self._known_days:
                new_days.setdefault(ref, set()).add(day)
        await bulk_write_chunked(self.buckets, [UpdateOne({"_id": b}, {"$pullAll": {"e": sorted(e)}}) for b, e in pulls.items()])
        await bulk_write_chunked(self.buckets, [UpdateOne({"_id": b}, {"$addToSet": {"e": {"$each": sorted(e)}}}, upsert=True)
                                   for b, e in adds.items()])
        await bulk_write_chunked(self.days, [UpdateOne({"_id": r}, {"$addToSet": {"days": {"$each": sorted(d)}}}, upsert=True)
                                for r, d in new_days.items()])
        self._known_days.update((r, d) for r, ds in new_days.items() for d in ds)

