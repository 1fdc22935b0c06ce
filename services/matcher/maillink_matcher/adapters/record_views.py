"""Conversation indexes per CRM record, read by `_id` only: the query API answers "the conversations
of person P" (or a deal, lead, project) without filtering the messages collection, which the
embedded store scans whole (FerretDB v1 on SQLite pushes only `_id` equality down).

- `record_views`, `_id` "<kind>:<id>#<YYYY-MM-DDTHH>" (the hour of the message's sort date, UTC):
  `e`, one compact entry per message linked to the record in that hour. An entry is one JSON
  string holding everything the conversation list shows of the message and what can_see needs
  (owner, company, status, visibility, linked records): the page is rendered from the buckets,
  with no read of the messages. One string each because the store decodes a document field by
  field; hours, not days, because a read costs about its size (a day of a person with 10,000
  messages a month was ~400 KB, 45 ms on a busy store; an hour is a few KB).
- `record_view_days`, `_id` "<kind>:<id>": `days`, the hours that have a bucket (the field keeps
  its first name).
- `record_view_claims`, `_id` "<account id>": the entries the last write of that mailbox added
  (see below).

The mail writer keeps them (handlers call MessageStore.flush): before the messages are written,
each message's entry is pulled from the buckets of what it was linked to (`view` on the message
says what was last indexed) and added to the buckets of what it is linked to now. Written before
the message, so a crash in between is repaired by the redelivery (the same pull and add again,
both idempotent). A redelivery may resolve differently from the crashed attempt (a fact changed
in between): the entries that attempt added are listed in the mailbox's claims document, written
before the buckets, so the next write of that mailbox pulls them too (and, the first time after a
start, pulls any claim its message's stored `view` does not confirm). No stale entry survives, so
the query can trust the buckets. Buckets are shared by mailboxes; FerretDB v1 does not make
`$addToSet` on one document atomic across connections, so with several matcher processes an entry
can be lost in a race (one process, the default, has one mail writer and no race; MongoDB is
atomic here).
"""
import hashlib
import json
from datetime import datetime, timezone

from pymongo import ReplaceOne, UpdateOne
from pymongo.asynchronous.database import AsyncDatabase

from maillink_runtime.mongo import bulk_write_chunked

from .reads import by_ids
from .string_sets import add_strings, snapshot_ids

VIEW_KINDS = ("person", "deal", "lead", "project")
_UNREAD = object()


def _utc(value: datetime) -> datetime:
    return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value.astimezone(timezone.utc)


def refs_of(doc: dict) -> list[str]:
    """The records whose conversations show this message (only active mail is shown there)."""
    if doc.get("status") != "active":
        return []
    refs = [f"person:{p}" for p in doc.get("person_ids", [])]
    return refs + [f"{kind}:{doc[f'{kind}_id']}" for kind in VIEW_KINDS[1:] if doc.get(f"{kind}_id")]


# What the conversation list (entrypoints/views.py) and can_see read of a message.
SUMMARY = ("thread_id", "subject", "date", "direction", "from", "to", "cc", "snippet", "has_attachments",
           "person_ids", "deal_id", "lead_id", "project_id", "visibility", "status", "reasons", "locations",
           "user_id", "account_id", "company_id", "source", "revision", "raw", "linked")


def _json(value):
    if isinstance(value, datetime):
        return _utc(value).isoformat()
    raise TypeError(f"not JSON: {type(value).__name__}")


def entry_of(doc: dict) -> str:
    summary = {"_id": doc["_id"], "sort_date": _utc(doc["sort_date"]),
               **{k: doc[k] for k in SUMMARY if doc.get(k) is not None}}
    summary.setdefault("visibility", "private")
    summary["refs"] = refs_of(doc)
    return json.dumps(summary, default=_json, separators=(",", ":"))


def read_entry(raw: str) -> dict:
    """The message as the conversation list shows it (a document like the stored one, in part)."""
    doc = json.loads(raw)
    doc["sort_date"] = datetime.fromisoformat(doc["sort_date"])
    if doc.get("date"):
        doc["date"] = datetime.fromisoformat(doc["date"])
    return doc


BUCKET_FORMAT = "%Y-%m-%dT%H"


def bucket_id(ref: str, sort_date: datetime) -> str:
    return f"{ref}#{_utc(sort_date).strftime(BUCKET_FORMAT)}"


def _claim(view: dict) -> dict:
    """What a claim keeps of a view: the buckets and a digest of the entry (claims stay small)."""
    if not view.get("entry"):
        return {}
    date = datetime.fromisoformat(json.loads(view["entry"])["sort_date"])
    return {"d": hashlib.blake2b(view["entry"].encode(), digest_size=8).hexdigest(),
            "b": [bucket_id(ref, date) for ref in view.get("refs", [])]}


class RecordViews:
    def __init__(self, db: AsyncDatabase, max_snapshot: int = 2_000_000) -> None:
        self.buckets = db["record_views"]
        self.days = db["record_view_days"]
        self.claims = db["record_view_claims"]
        self.messages = db["messages"]
        self._known_days: set[tuple[str, str]] = set()   # (ref, day) already listed; days are never removed
        self._claims: dict[str, dict[str, dict]] = {}    # account -> its stored claims (this process wrote them)
        # `_id`s of the buckets and day lists that exist (never deleted, so never wrong; None: too many to keep).
        self._known_buckets: set[str] | None | object = _UNREAD
        self._known_refs: set[str] | None = None
        self._max_snapshot = max_snapshot

    def forget(self) -> None:
        """After a rebalance or a failed write: claims are read from the store again."""
        self._claims = {}

    async def _stored_claims(self, accounts: set[str]) -> tuple[dict[str, dict[str, dict]], dict[str, dict]]:
        """(account -> claims, key -> the claim its stored message confirms ({}: none)) for the
        claims this process did not write itself."""
        unknown = sorted(a for a in accounts if a not in self._claims)
        found = await by_ids(self.claims, unknown) if unknown else {}
        stored = {a: (found.get(a) or {}).get("views", {}) for a in unknown}
        keys = [k for views in stored.values() for k in views]
        messages = await by_ids(self.messages, keys, {"view": 1}) if keys else {}
        self._claims.update(stored)
        return ({a: self._claims[a] for a in accounts},
                {k: _claim((messages.get(k) or {}).get("view") or {}) for k in keys})

    async def write(self, docs: list[dict]) -> None:
        """Moves each message's entry to the buckets of its current links; sets `view` on the docs."""
        pulls: dict[str, set[str]] = {}
        adds: dict[str, set[str]] = {}
        changed: dict[str, dict[str, dict]] = {}
        for doc in docs:
            old, entry, refs = doc.get("view") or {}, entry_of(doc), refs_of(doc)
            if old.get("entry") != entry or old.get("refs") != refs:
                changed.setdefault(doc["account_id"], {})[doc["_id"]] = {"entry": entry, "refs": refs}
        claims, confirmed = await self._stored_claims(set(changed))
        by_key = {doc["_id"]: doc for doc in docs}
        stale: dict[str, tuple[dict, str | None]] = {}   # key -> (claim, the entry that stays)
        for account, views in claims.items():
            for key, claim in views.items():
                doc = by_key.get(key)
                if doc is not None:   # stale unless it is what the message shows after this write
                    final = changed[account].get(key) or doc.get("view") or {}
                    if claim != _claim(final) and claim != _claim(doc.get("view") or {}):
                        stale[key] = (claim, final.get("entry"))
                elif key in confirmed and confirmed[key] != claim:   # a claim read from the store
                    stale[key] = (claim, None)
        await self._pull_stale(stale, pulls)
        for doc in docs:
            new = changed.get(doc["account_id"], {}).get(doc["_id"])
            if new is None:
                continue
            old = doc.get("view") or {}
            for ref in old.get("refs", []):
                pulls.setdefault(bucket_id(ref, doc["sort_date"]), set()).add(old["entry"])
            for ref in new["refs"]:
                adds.setdefault(bucket_id(ref, doc["sort_date"]), set()).add(new["entry"])
            doc["view"] = new
        # The claims before the buckets: what this write adds is findable if its messages are not stored.
        compact = {a: {k: _claim(v) for k, v in views.items()} for a, views in changed.items()}
        await bulk_write_chunked(self.claims, [ReplaceOne({"_id": a}, {"_id": a, "views": v}, upsert=True)
                                               for a, v in compact.items() if v != self._claims.get(a)])
        self._claims.update(compact)
        new_days: dict[str, set[str]] = {}
        for bucket in adds:
            ref, day = bucket.rsplit("#", 1)
            if (ref, day) not in self._known_days:
                new_days.setdefault(ref, set()).add(day)
        if self._known_buckets is _UNREAD:
            self._known_buckets = await snapshot_ids(self.buckets, self._max_snapshot)
            self._known_refs = await snapshot_ids(self.days, self._max_snapshot)
        await bulk_write_chunked(self.buckets, [UpdateOne({"_id": b}, {"$pullAll": {"e": sorted(e)}}) for b, e in pulls.items()])
        # New buckets and new records' day lists are inserted (adapters/string_sets.py).
        await add_strings(self.buckets, "e", adds, self._known_buckets)
        await add_strings(self.days, "days", new_days, self._known_refs)
        self._known_days.update((r, d) for r, ds in new_days.items() for d in ds)

    async def _pull_stale(self, stale: dict[str, tuple[dict, str | None]], pulls: dict[str, set[str]]) -> None:
        """Entries an attempt added without storing its message: found in the claimed buckets by
        key (a claim keeps only a digest of its entry), all but the one that stays."""
        buckets = {b for claim, _ in stale.values() for b in claim["b"]}
        for bucket_doc in (await by_ids(self.buckets, sorted(buckets))).values() if buckets else ():
            for raw in bucket_doc.get("e", []):
                key = json.loads(raw)["_id"]
                if key in stale and raw != stale[key][1] and bucket_doc["_id"] in stale[key][0]["b"]:
                    pulls.setdefault(bucket_doc["_id"], set()).add(raw)

    async def keys_of(self, ref: str) -> list[tuple[str, str]]:
        """(account id, message key) of every entry of a record ("person:<id>"), by `_id` reads."""
        days = (await by_ids(self.days, [ref])).get(ref, {}).get("days", [])
        found: set[tuple[str, str]] = set()
        for doc in (await by_ids(self.buckets, [f"{ref}#{day}" for day in days])).values():
            for raw in doc.get("e", []):
                entry = json.loads(raw)
                found.add((entry.get("account_id", ""), entry["_id"]))
        return sorted(found)
