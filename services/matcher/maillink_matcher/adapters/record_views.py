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
- An hour's bucket holds at most about SEGMENT entries: when this process finds it full, later
  entries of that hour go to a new segment, `<kind>:<id>#<hour>~<n>`, listed in the hours list as
  `<hour>~<n>` (the query reads an hour's segments together). Why: FerretDB v1 on SQLite rewrites
  a whole document for an `$addToSet`, so an update costs about its size; measured at full scale
  (200,000 events, 50 mailboxes), unbounded Mail-tab hour buckets grew to ~40 KB and the record
  view writes of a 1,000-message batch from 1.9 s to 5.2 s. The message's `view` keeps the bucket
  each of its entries went to (`b`, one per ref), so the sweep finds it.
- The same buckets, with the ref `user:<id>`, hold a user's Mail tab (their active and blocked mail).
- `record_view_days`, the hours that have a bucket, one list per month: `_id` "<kind>:<id>":
  `months` ("YYYY-MM"); `_id` "<kind>:<id>#<YYYY-MM>": `days`, that month's hours (the field keeps
  its first name). A record's hours once were one list (`days` on "<kind>:<id>", still read):
  it grew by an item per hour with mail for the record's whole life (about 8,800 a year for a
  busy Mail tab), rewritten whole by every `$addToSet` and read whole by every page. A month's list
  holds at most 744 hours (and their segments); a page reads the months it reaches, newest first.
- `record_view_claims`, `_id` "<account id>": the entries the last write of that mailbox added
  (see below).

The mail writer keeps them (MessageStore.flush): before the messages are written, each changed
message's previous entry is pulled from the buckets of what it was linked to (`view` on the
message says what was last indexed: a digest of the entry and the records; the old entry is found
in those buckets by key) and its new entry added to the buckets of what it is linked to now.
Before that, the mailbox's claims document lists, per message, the buckets it adds to and those
it cleans, so a crash anywhere is repaired by the next write of that mailbox (the redelivery, or
whatever comes next after a restart): it reads the claims and leaves each of those messages only
the entry its message shows (the new resolution, or the stored message as stored), added again.
So no stale entry survives a repair and the query can trust the buckets: between a crash and its
repair a list can show a change that was not stored yet, or miss a message, never an older state. Buckets are shared by mailboxes; FerretDB v1 does not make
`$addToSet` on one document atomic across connections, so with several matcher processes an entry
can be lost in a race (one process, the default, has one mail writer and no race; MongoDB is
atomic here).
"""
import hashlib
import json
import time
from datetime import datetime, timezone

from pymongo import ReplaceOne, UpdateOne
from pymongo.asynchronous.database import AsyncDatabase

from maillink_runtime.mongo import bulk_write_chunked

from .reads import by_ids
from .recent import LIMIT, RecentCounts, RecentSet
from .string_sets import add_strings, snapshot_ids

VIEW_KINDS = ("person", "deal", "lead", "project")
SEGMENT = 16   # entries per bucket segment (see above)
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
           "user_id", "account_id", "company_id", "source", "revision", "raw", "linked", "arrived_at")


def _json(value):
    if isinstance(value, datetime):
        return _utc(value).isoformat()
    raise TypeError(f"not JSON: {type(value).__name__}")


def placed_in(doc: dict) -> list[str]:
    """Where the message's entry goes: its linked records' views, and its owner's Mail tab
    (`user:<id>`, active and blocked mail)."""
    mail_tab = [f"user:{doc['user_id']}"] if doc.get("status") in ("active", "ignored") else []
    return refs_of(doc) + mail_tab


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


def month_list(ref: str, hour: str) -> str:
    """The `_id` of the list of a record's hours in the month of `hour` ("YYYY-MM-DDTHH[~n]")."""
    return f"{ref}#{hour[:7]}"


def hour_of(listed: str) -> str:
    """The hour of an hours-list item ("<hour>" or "<hour>~<n>", a segment of it)."""
    return listed.split("~", 1)[0]


def buckets_of(view: dict, sort_date: datetime) -> list[str]:
    """Where a message's entries are (its `view`: refs, and `b`, the bucket of each; a view written
    before segments has no `b`: the hour's first bucket)."""
    refs = view.get("refs", [])
    listed = view.get("b")
    return list(listed) if listed and len(listed) == len(refs) else [bucket_id(ref, sort_date) for ref in refs]


def digest(text: str) -> str:
    return hashlib.blake2b(text.encode(), digest_size=8).hexdigest()


def _digest_of(view: dict) -> str | None:
    """A message's `view`: {"d": digest of its entry, "refs"}; a view written before digests holds the entry."""
    return view.get("d") or (digest(view["entry"]) if view.get("entry") else None)


class RecordViews:
    def __init__(self, db: AsyncDatabase, max_snapshot: int = 2_000_000, remember: int = LIMIT) -> None:
        """`remember`: what this process keeps of the buckets it filled and the hours it listed,
        most recently used first (adapters/recent.py; the `_id` snapshots keep max_snapshot)."""
        self.buckets = db["record_views"]
        self.days = db["record_view_days"]
        self.claims = db["record_view_claims"]
        self.messages = db["messages"]
        self._known_days = RecentSet(limit=remember)        # (ref, day) already listed; days are never removed
        self._claims: dict[str, dict] = {}    # accounts whose claims this process wrote (and cleaned)
        # `_id`s of the buckets and day lists that exist (never deleted, so never wrong; None: too many to keep).
        self._known_buckets: RecentSet | None | object = _UNREAD
        self._known_refs: RecentSet | None = None
        self._max_snapshot = max_snapshot
        self.timings: dict[str, float] = {}   # the last write's steps (logged with the batch)
        self._fill = RecentCounts(limit=remember)   # entries this process added to a bucket (its own count)

    def forget(self) -> None:
        """After a rebalance or a failed write: claims are read from the store again."""
        self._claims = {}

    def _segment(self, ref: str, sort_date: datetime) -> str:
        """The hour's bucket that takes new entries: its last known segment, or the next one once
        this process has put SEGMENT entries in it. A bucket it did not fill itself (written before
        a restart, or by another process) counts as empty, so it grows by at most SEGMENT entries per
        process; with too many buckets to keep their ids (`_known_buckets` None), one per hour."""
        base = bucket_id(ref, sort_date)
        known = self._known_buckets
        if not isinstance(known, RecentSet):
            return base
        last, n = base, 1
        while f"{base}~{n}" in known or f"{base}~{n}" in self._fill:
            last, n = f"{base}~{n}", n + 1
        return last if self._fill.get(last, 0) < SEGMENT else f"{base}~{n}"

    async def _stored_claims(self, accounts: set[str], present: dict[str, dict]) -> tuple[dict[str, dict], dict[str, dict]]:
        """(account -> its claims read from the store, key -> stored message) for the accounts whose
        claims this process has not written itself; messages only for keys not in `present`."""
        unknown = sorted(a for a in accounts if a not in self._claims)
        found = await by_ids(self.claims, unknown) if unknown else {}
        stored = {a: (found.get(a) or {}).get("views", {}) for a in unknown}
        keys = [k for views in stored.values() for k in views if k not in present]
        return stored, (await by_ids(self.messages, keys) if keys else {})

    async def write(self, docs: list[dict]) -> None:
        """Moves each changed message's entry to the buckets of its current links, before the
        message is stored; sets `view` on the docs.

        The message keeps only a digest of its entry (`view`: {"d", "refs"}); its old entry is
        found in its old buckets by key (a read per bucket, only when it changes)."""
        started = time.perf_counter()
        if self._known_buckets is _UNREAD:
            self._known_buckets = await snapshot_ids(self.buckets, self._max_snapshot)
            self._known_refs = await snapshot_ids(self.days, self._max_snapshot)
        adds: dict[str, set[str]] = {}
        changed: dict[str, dict[str, dict]] = {}       # account -> key -> claim {"d", "b", "o"}
        # key -> (buckets to look in, digest of the entry that stays, the buckets it stays in)
        sweep: dict[str, tuple[set[str], str | None, set[str]]] = {}
        current: dict[str, tuple[str, str, list[str]]] = {}   # key -> (entry, digest, buckets) after this write
        for doc in docs:
            old, entry, refs = doc.get("view") or {}, entry_of(doc), placed_in(doc)
            d = digest(entry)
            old_buckets = buckets_of(old, doc["sort_date"])
            if _digest_of(old) == d and old.get("refs") == refs:
                current[doc["_id"]] = (entry, d, old_buckets)
                continue
            # A ref it was already under keeps its bucket (the entry is replaced there); others get
            # the hour's open segment.
            kept = dict(zip(old.get("refs", []), old_buckets))
            buckets = [kept.get(ref) or self._segment(ref, doc["sort_date"]) for ref in refs]
            current[doc["_id"]] = (entry, d, buckets)
            changed.setdefault(doc["account_id"], {})[doc["_id"]] = {"d": d, "b": buckets, "o": old_buckets}
            for bucket in buckets:
                if entry not in adds.setdefault(bucket, set()):
                    adds[bucket].add(entry)
                    self._fill[bucket] = self._fill.get(bucket, 0) + 1
            if old_buckets:
                sweep[doc["_id"]] = (set(old_buckets), d, set(buckets))
            doc["view"] = {"d": d, "refs": refs, "b": buckets}
        # Claims of an attempt that may not have finished (read from the store after a start, a
        # rebalance or a failure): those keys keep only the entry their message shows, added again.
        stored, messages = await self._stored_claims({doc["account_id"] for doc in docs}, current)
        for account, views in stored.items():
            for key, claim in views.items():
                listed = {*claim.get("b", []), *claim.get("o", [])}
                if key in current:
                    entry, d, buckets = current[key]
                elif key in messages:   # not in this batch: the stored message, as stored
                    message = messages[key]
                    entry = entry_of(message)
                    view = message.get("view") or {}
                    d = digest(entry)
                    buckets = buckets_of(view, message["sort_date"]) if view.get("refs") == placed_in(message) \
                        else [bucket_id(r, message["sort_date"]) for r in placed_in(message)]
                else:                   # never stored: nothing stays
                    entry, d, buckets = "", None, []
                # With segments the same entry may sit in another bucket of the hour (an attempt
                # that chose another segment): only the buckets it stays in keep it.
                sweep[key] = (sweep.get(key, (set(), d, set()))[0] | listed, d, set(buckets))
                for bucket in buckets:
                    adds.setdefault(bucket, set()).add(entry)
                mine = changed.setdefault(account, {}).setdefault(key, {"d": d, "b": buckets, "o": []})
                mine["o"] = sorted({*mine["o"], *listed})   # listed until this write has cleaned them
        # The claims before the buckets: a crash in what follows is cleaned by the next write.
        await bulk_write_chunked(self.claims, [ReplaceOne({"_id": a}, {"_id": a, "views": v}, upsert=True)
                                               for a, v in changed.items()])
        claimed = time.perf_counter()
        await self._sweep(sweep)
        swept = time.perf_counter()
        new_days: dict[str, set[str]] = {}     # "<ref>#<month>" -> hours
        new_months: dict[str, set[str]] = {}   # ref -> months
        for bucket in adds:
            ref, day = bucket.rsplit("#", 1)
            if (ref, day) not in self._known_days:
                new_days.setdefault(month_list(ref, day), set()).add(day)
                if (ref, day[:7]) not in self._known_days:
                    new_months.setdefault(ref, set()).add(day[:7])
        # New buckets and new records' day lists are inserted (adapters/string_sets.py).
        known = self._known_buckets
        updated = len(adds) if known is None else sum(1 for b in adds if b in known)
        await add_strings(self.buckets, "e", adds, self._known_buckets)
        added = time.perf_counter()
        # The month before its hours: a listed month's hours are read, an unlisted month's are not.
        await add_strings(self.days, "months", new_months, self._known_refs)
        await add_strings(self.days, "days", new_days, self._known_refs)
        self.timings = {"v_claims": round(claimed - started, 3), "v_sweep": round(swept - claimed, 3),
                        "v_buckets": round(added - swept, 3), "n_buckets_updated": updated,
                        "n_buckets_inserted": len(adds) - updated,
                        "v_days": round(time.perf_counter() - added, 3), "n_days": len(new_days)}
        self._known_days.update((listed.rsplit("#", 1)[0], d) for listed, ds in new_days.items() for d in ds)
        self._known_days.update((r, m) for r, ms in new_months.items() for m in ms)
        self._claims.update({a: {} for a in {*changed, *stored}})

    async def _sweep(self, sweep: dict[str, tuple[set[str], str | None, set[str]]]) -> None:
        """Pulls, from the listed buckets, every entry of each key but the one that stays."""
        pulls: dict[str, set[str]] = {}
        buckets = {b for listed, _, _ in sweep.values() for b in listed}
        for bucket_doc in (await by_ids(self.buckets, sorted(buckets))).values() if buckets else ():
            for raw in bucket_doc.get("e", []):
                key = json.loads(raw)["_id"]
                if key not in sweep:
                    continue
                listed, stays, kept_in = sweep[key]
                if bucket_doc["_id"] in listed and (digest(raw) != stays or bucket_doc["_id"] not in kept_in):
                    pulls.setdefault(bucket_doc["_id"], set()).add(raw)
        await bulk_write_chunked(self.buckets, [UpdateOne({"_id": b}, {"$pullAll": {"e": sorted(e)}})
                                                for b, e in pulls.items()])

    async def months(self, refs: list[str], likely: str | None = None
                     ) -> tuple[dict[str, tuple[list[str], list[str]]], dict[tuple[str, str], list[str]]]:
        """(ref -> (its months, the hours of the list kept before months), refs without either left
        out; (ref, month) -> hours of the month `likely` ("YYYY-MM"), read in the same round trip:
        a page's newest hours are most often in the current month, or in its cursor's)."""
        guessed = {month_list(ref, likely): (ref, likely) for ref in refs} if likely else {}
        found = await by_ids(self.days, [*refs, *guessed])
        out = {}
        for ref in refs:
            doc = found.get(ref) or {}
            if doc.get("months") or doc.get("days"):
                out[ref] = (sorted(doc.get("months", [])), list(doc.get("days", [])))
        return out, {key: list(found[i].get("days", [])) for i, key in guessed.items() if i in found}

    async def hours_of_months(self, wanted: list[tuple[str, str]]) -> dict[tuple[str, str], list[str]]:
        """(ref, month) -> that month's listed hours."""
        ids = {month_list(ref, month): (ref, month) for ref, month in wanted}
        found = await by_ids(self.days, sorted(ids)) if ids else {}
        return {ids[i]: list(doc.get("days", [])) for i, doc in found.items()}

    async def keys_of(self, ref: str, arrived_since: datetime | None = None) -> list[tuple[str, str]]:
        """(account id, message key) of every entry of a record ("person:<id>", "user:<id>"),
        optionally only of mail that arrived at or after `arrived_since`, by `_id` reads."""
        months, days = (await self.months([ref]))[0].get(ref, ([], []))
        days = {*days, *(d for hours in (await self.hours_of_months([(ref, m) for m in months])).values() for d in hours)}
        found: set[tuple[str, str]] = set()
        for doc in (await by_ids(self.buckets, [f"{ref}#{day}" for day in sorted(days)])).values():
            for raw in doc.get("e", []):
                entry = json.loads(raw)
                if arrived_since is not None and entry.get("arrived_at") \
                        and datetime.fromisoformat(entry["arrived_at"]) < _utc(arrived_since):
                    continue
                found.add((entry.get("account_id", ""), entry["_id"]))
        return sorted(found)
