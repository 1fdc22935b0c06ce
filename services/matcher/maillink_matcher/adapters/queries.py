"""The query API's reads, built from `domain.visibility.can_see`: the store narrows the candidates
with a filter that can only be wider than can_see (own mail, or shared mail of the viewer's
company that is linked), and can_see decides each one. Newest first, paginated with a cursor on
(sort_date, key), so a page never repeats or skips a message when new mail arrives."""
import base64
import json
from collections.abc import Callable
from datetime import datetime, timezone

from pymongo import DESCENDING
from pymongo.asynchronous.database import AsyncDatabase

from ..domain.facts import KINDS, Record
from ..domain.resolve import record_from
from ..domain.visibility import Shown, Viewer, can_see
from .messages import by_ids
from .projections import CrmProjections
from .record_views import BUCKET_FORMAT, RecordViews, _utc, hour_of, read_entry

_VISIBLE_STATUSES = ("active", "ignored")


def encode_cursor(doc: dict) -> str:
    return base64.urlsafe_b64encode(json.dumps([doc["sort_date"].isoformat(), doc["_id"]]).encode()).decode()


def decode_cursor(cursor: str) -> tuple[datetime, str]:
    """The cursor comes from a caller: anything that is not one of ours is a ValueError (a 422),
    never an exception that becomes a 500 (non-UTF-8 bytes, JSON of the wrong shape: schemathesis)."""
    try:
        date, key = json.loads(base64.urlsafe_b64decode(cursor.encode()))
        if not isinstance(key, str):
            raise TypeError("cursor key is not a string")
        return datetime.fromisoformat(date), key
    except (ValueError, TypeError) as exc:
        raise ValueError("invalid cursor") from exc


def linked_refs(doc: dict) -> tuple[tuple[str, str], ...]:
    refs = [("person", p) for p in doc.get("person_ids", [])]
    refs += [(kind.value, doc[f"{kind.value}_id"]) for kind in KINDS if doc.get(f"{kind.value}_id")]
    return tuple(refs)


def shown(doc: dict) -> Shown:
    return Shown(doc["user_id"], doc.get("company_id"), doc.get("status") or "active", doc.get("visibility", "private"),
                 linked_refs(doc))


def candidate_filter(viewer: Viewer) -> dict:
    """Every message can_see could allow, and as few others as possible."""
    others = {"status": "active", "visibility": "shared", "linked": True, "company_id": viewer.company_id}
    return {"$or": [{"user_id": viewer.user_id, "status": {"$in": list(_VISIBLE_STATUSES)}}, others]
            if viewer.company_id else [{"user_id": viewer.user_id, "status": {"$in": list(_VISIBLE_STATUSES)}}]}


class QueryStore:
    def __init__(self, db: AsyncDatabase, crm: CrmProjections) -> None:
        self.messages = db["messages"]
        self.threads = db["threads"]
        self.views = RecordViews(db)
        self._crm = crm

    async def viewer(self, user_id: str, token_company: str | None) -> Viewer:
        user = (await self._crm.records("user", [user_id])).get(user_id) or {}
        if user.get("deleted"):
            user = {}
        return Viewer(user_id, user.get("company_id") or token_company, frozenset(user.get("groups", [])),
                      frozenset(user.get("visible_record_ids", [])), bool(user.get("is_admin")))

    async def _records(self, refs: set[tuple[str, str]], cache: dict[tuple[str, str], Record | None]) -> None:
        by_kind: dict[str, list[str]] = {}
        for kind, record_id in refs - cache.keys():
            by_kind.setdefault(kind, []).append(record_id)
        for kind, ids in by_kind.items():
            found = await self._crm.records(kind, ids)
            for record_id in ids:   # a record not in the CRM is remembered as None (not asked again)
                cache[(kind, record_id)] = record_from(kind, found[record_id]) if record_id in found else None

    async def page(self, viewer: Viewer, criteria: dict, limit: int, cursor: str | None = None,
                   statuses: tuple[str, ...] = ("active",)) -> tuple[list[dict], str | None]:
        """Up to `limit` messages matching `criteria` that `viewer` can see, newest first."""
        query = {"$and": [criteria, candidate_filter(viewer), {"status": {"$in": list(statuses)}}]}
        if cursor:
            date, key = decode_cursor(cursor)
            query["$and"].append({"$or": [{"sort_date": {"$lt": date}}, {"sort_date": date, "_id": {"$lt": key}}]})
        docs = self.messages.find(query, {"addresses": 0, "state": 0}).sort([("sort_date", DESCENDING), ("_id", DESCENDING)])
        return await self._visible_page(viewer, docs, limit)

    async def _visible_page(self, viewer: Viewer, docs, limit: int) -> tuple[list[dict], str | None]:
        """The first `limit` of `docs` (newest first, sync or async iterable) that `viewer` can see, and
        the cursor after them when there are more."""
        found: list[dict] = []
        records: dict[tuple[str, str], Record] = {}
        async for doc in _aiter(docs):
            await self._records(set(linked_refs(doc)), records)
            if can_see(viewer, shown(doc), records):
                found.append(doc)
                if len(found) > limit:
                    break
        return found[:limit], (encode_cursor(found[limit - 1]) if len(found) > limit else None)

    async def mail_tab(self, viewer: Viewer, linked: bool | None, folder: str | None, statuses: tuple[str, ...],
                       limit: int, cursor: str | None = None) -> tuple[list[dict], str | None]:
        """The viewer's Mail tab, as `page` answers {"user_id": viewer, "linked": ..., folder}, from
        their `user:<id>` record view (`_id` reads)."""
        def keep(entry: dict) -> bool:
            return ((entry.get("status") or "active") in statuses
                    and (linked is None or bool(entry.get("linked")) == linked)
                    and (folder is None or any(loc.get("folder") == folder for loc in entry.get("locations", []))))
        return await self.record_page(viewer, [f"user:{viewer.user_id}"], limit, cursor, keep)

    async def record_page(self, viewer: Viewer, refs: list[str], limit: int, cursor: str | None = None,
                          keep: Callable[[dict], bool] | None = None) -> tuple[list[dict], str | None]:
        """The same answer as `page` for the messages linked to any of `refs` ("person:<id>", ...),
        from the record views (adapters/record_views.py): a few `_id` reads (the record's hours, then
        the newest hours' buckets), no read of the messages."""
        after = decode_cursor(cursor) if cursor else None
        if after:
            after = (_utc(after[0]), after[1])
        last_hour = after[0].strftime(BUCKET_FORMAT) if after else None
        likely = (after[0] if after else datetime.now(timezone.utc)).strftime("%Y-%m")
        listed, read_ahead = await self.views.months(refs, likely)
        hours: dict[str, list[str]] = {}    # hour -> its buckets (every ref's, every segment)
        for ref, (_, old_list) in listed.items():
            for item in old_list:
                hours.setdefault(hour_of(item), []).append(f"{ref}#{item}")
        # Months newest first, each month's hours read when the walk reaches it.
        months = sorted({m for ms, _ in listed.values() for m in ms if not last_hour or m <= last_hour[:7]},
                        reverse=True)

        async def read_month(month: str) -> None:
            wanted = [(ref, month) for ref, (ms, _) in listed.items() if month in ms]
            ahead = {key: read_ahead[key] for key in wanted if key in read_ahead}
            unread = [key for key in wanted if key not in ahead]
            for (ref, _), items in [*ahead.items(), *(await self.views.hours_of_months(unread)).items()]:
                for item in items:
                    hours.setdefault(hour_of(item), []).append(f"{ref}#{item}")

        found: list[dict] = []
        records: dict[tuple[str, str], Record | None] = {}
        # Hours newest first, read a few at once (4, 8, 16, ... buckets: one round trip for a busy
        # record, few for a quiet one); all of an hour's entries are sorted together, so the walk
        # stops after the read that filled the page.
        step, done = 4, set()
        while len(found) <= limit:
            # Enough months read to know the next `step` hours (a month not read yet holds only older ones).
            while months:
                walk = [h for h in sorted(hours, reverse=True) if h not in done and (not last_hour or h <= last_hour)]
                if len(walk) >= step and walk[step - 1][:7] > months[0]:
                    break
                await read_month(months.pop(0))
            chosen = [h for h in sorted(hours, reverse=True) if h not in done and (not last_hour or h <= last_hour)][:step]
            if not chosen:
                break
            done.update(chosen)
            step = min(step * 2, 64)
            buckets = await by_ids(self.views.buckets, [b for h in chosen for b in hours[h]])
            entries = {}
            for bucket in buckets.values():
                for raw in bucket.get("e", []):
                    entry = read_entry(raw)
                    entries[entry["_id"]] = entry
            for entry in sorted(entries.values(), key=lambda e: (e["sort_date"], e["_id"]), reverse=True):
                if after and (entry["sort_date"], entry["_id"]) >= after or keep is not None and not keep(entry):
                    continue
                shown_ = Shown(entry["user_id"], entry.get("company_id"), entry.get("status") or "active",
                               entry["visibility"], tuple(tuple(r.split(":", 1)) for r in entry["refs"]))
                if shown_.owner != viewer.user_id:   # the owner sees their own mail without them
                    await self._records(set(shown_.linked), records)
                if can_see(viewer, shown_, records):
                    found.append(entry)
        # The page is rendered from the entries: the buckets hold no stale entry (adapters/record_views.py).
        return found[:limit], (encode_cursor(found[limit - 1]) if len(found) > limit else None)

    async def thread_page(self, viewer: Viewer, thread: dict, limit: int,
                          cursor: str | None = None) -> tuple[list[dict], str | None]:
        """One thread's messages, as `page` answers `{"thread_id": ...}`, read by `_id`: the thread
        document lists its messages (`members`). A thread stored before that field existed is
        answered by `page` (a scan on the embedded store)."""
        if "members" not in thread:
            return await self.page(viewer, {"thread_id": thread["_id"]}, limit, cursor, _VISIBLE_STATUSES)
        after = decode_cursor(cursor) if cursor else None
        if after:
            after = (_utc(after[0]), after[1])
        docs = [d for d in (await by_ids(self.messages, thread["members"], {"addresses": 0, "state": 0})).values()
                if d.get("thread_id") == thread["_id"] and (d.get("status") or "active") in _VISIBLE_STATUSES]
        docs.sort(key=lambda d: (_utc(d["sort_date"]), d["_id"]), reverse=True)
        if after:
            docs = [d for d in docs if (_utc(d["sort_date"]), d["_id"]) < after]
        return await self._visible_page(viewer, docs, limit)

    async def thread_doc(self, thread_id: str) -> dict | None:
        doc, hops = await self.threads.find_one({"_id": thread_id}), 0
        while doc and doc.get("merged_into") and hops < 20:
            doc, hops = await self.threads.find_one({"_id": doc["merged_into"]}), hops + 1
        return doc

    async def message(self, message_key: str) -> dict | None:
        return await self.messages.find_one({"_id": message_key})

    async def titles(self, kind: str, ids: list[str]) -> dict[str, str]:
        found = await self._crm.records(kind, ids)
        return {i: (d.get("title") or d.get("name") or i) for i, d in found.items()}

    async def persons_of_organization(self, organization_id: str) -> list[str]:
        return await self._crm.persons_of_organization(organization_id)


async def _aiter(docs):
    if hasattr(docs, "__aiter__"):
        async for doc in docs:
            yield doc
    else:
        for doc in docs:
            yield doc
