"""The record views (adapters/record_views.py) against the real store: the conversation list is
rendered from the buckets alone, so no stale entry may survive a crash between the bucket writes
and the message write, even when the redelivery resolves the message differently."""
from datetime import datetime, timezone

import pytest

from maillink_matcher.adapters.projections import CrmProjections
from maillink_matcher.adapters.queries import QueryStore
from maillink_matcher.adapters import record_views
from maillink_matcher.adapters.record_views import RecordViews
from maillink_matcher.domain.visibility import Viewer
from maillink_runtime import mongo
from tests.conftest import MONGODB_URL

pytestmark = pytest.mark.integration
T0 = datetime(2026, 11, 3, 10, 0, tzinfo=timezone.utc)


def message(key: str, person: str, *, visibility: str = "shared", subject: str = "Hello") -> dict:
    return {"_id": key, "account_id": "acc", "user_id": "owner", "company_id": "c", "thread_id": f"t-{key}",
            "sort_date": T0, "date": T0, "subject": subject, "direction": "incoming", "status": "active",
            "visibility": visibility, "person_ids": [person], "linked": True, "from": [{"email": "a@x.example"}],
            "to": [], "cc": [], "snippet": "hi", "reasons": [], "locations": [], "source": "imap", "revision": 1}


@pytest.fixture
async def db(namespace):
    client = mongo.connect(MONGODB_URL)
    database = client[f"{namespace.strip('.')}_matcher"]
    # Persons visible to everyone (no visibility group), so a colleague sees shared mail linked to them.
    await CrmProjections(database).by_kind["person"].collection.insert_many([{"_id": f"p{i}"} for i in range(10)])
    yield database
    await client.drop_database(database.name)
    await client.close()


async def keys_of(db, ref: str, viewer: str = "owner") -> list[str]:
    found, _ = await QueryStore(db, CrmProjections(db)).record_page(Viewer(viewer, "c"), [ref], 50)
    return [d["_id"] for d in found]


async def test_the_page_is_rendered_from_the_entries(db):
    doc = message("k1", "p1", subject="Quarterly numbers")
    await RecordViews(db).write([doc])
    found, _ = await QueryStore(db, CrmProjections(db)).record_page(Viewer("owner", "c"), ["person:p1"], 50)
    assert [(d["_id"], d["subject"], d["thread_id"], d["sort_date"]) for d in found] == [
        ("k1", "Quarterly numbers", "t-k1", T0)]   # no message document was stored at all


async def test_a_crashed_attempt_that_linked_elsewhere_leaves_no_entry(db):
    stored = message("k1", "p1")
    await RecordViews(db).write([stored])
    await db["messages"].insert_one(stored)       # the message as last fully written: linked to p1
    crashed = {**message("k1", "p2"), "view": stored["view"]}
    await RecordViews(db).write([crashed])        # buckets moved to p2, then a crash: message not written
    assert await keys_of(db, "person:p2") == ["k1"] and await keys_of(db, "person:p1") == []
    # The redelivery (a new process) reads the stored message and now resolves it to p3.
    redelivered = {**message("k1", "p3"), "view": stored["view"]}
    await RecordViews(db).write([redelivered])
    assert await keys_of(db, "person:p3") == ["k1"]
    assert await keys_of(db, "person:p2") == [] and await keys_of(db, "person:p1") == []


async def test_a_claim_of_a_message_never_stored_is_pulled_by_the_next_write_of_its_mailbox(db):
    await RecordViews(db).write([message("lost", "p1", visibility="shared")])   # crash: never stored
    assert await keys_of(db, "person:p1", viewer="colleague") == ["lost"]
    # After a restart, the mailbox's next batch does not hold that message.
    await RecordViews(db).write([message("other", "p9")])
    assert await keys_of(db, "person:p1", viewer="colleague") == []
    assert await keys_of(db, "person:p9") == ["other"]


async def test_a_visibility_change_replaces_the_entry(db):
    views = RecordViews(db)
    doc = message("k1", "p1", visibility="shared")
    await views.write([doc])
    await db["messages"].insert_one(doc)
    assert await keys_of(db, "person:p1", viewer="colleague") == ["k1"]
    doc["visibility"] = "private"
    await views.write([doc])
    assert await keys_of(db, "person:p1", viewer="colleague") == []
    assert await keys_of(db, "person:p1") == ["k1"]


async def test_two_writers_that_each_believe_a_bucket_new_lose_no_entry(db):
    first, second = RecordViews(db), RecordViews(db)
    await second.write([message("k0", "p5")])          # `second` knows the buckets of now
    await first.write([message("k1", "p1")])           # p1's bucket and day list appear
    await second.write([{**message("k2", "p1"), "account_id": "acc2"}])   # believes them new: inserts meet them
    assert sorted(await keys_of(db, "person:p1")) == ["k1", "k2"]
    assert (await db["record_view_days"].find_one({"_id": "person:p1"}))["months"] == ["2026-11"]
    assert (await db["record_view_days"].find_one({"_id": "person:p1#2026-11"}))["days"] == ["2026-11-03T10"]


async def test_a_redelivery_that_resolves_as_before_the_crash_shows_the_stored_state_again(db):
    stored = message("k1", "p1")
    await RecordViews(db).write([stored])
    await db["messages"].insert_one(stored)
    await RecordViews(db).write([{**message("k1", "p2"), "view": stored["view"]}])   # crash: not stored
    await RecordViews(db).write([{**message("k1", "p1"), "view": stored["view"]}])   # the redelivery: as before
    assert await keys_of(db, "person:p1") == ["k1"] and await keys_of(db, "person:p2") == []


async def test_a_message_a_crashed_attempt_moved_and_the_next_batch_does_not_hold_is_shown_as_stored(db):
    stored = message("k1", "p1", subject="As stored")
    await RecordViews(db).write([stored])
    await db["messages"].insert_one(stored)
    await RecordViews(db).write([{**message("k1", "p2"), "view": stored["view"]}])   # crash: not stored
    await RecordViews(db).write([message("other", "p9")])                           # after a restart
    found, _ = await QueryStore(db, CrmProjections(db)).record_page(Viewer("owner", "c"), ["person:p1"], 50)
    assert [(d["_id"], d["subject"]) for d in found] == [("k1", "As stored")]
    assert await keys_of(db, "person:p2") == []


async def test_a_full_hour_goes_on_in_segments_and_pages_and_moves_read_them_all(db, monkeypatch):
    # SEGMENT entries per bucket (an update costs about the document's size on the embedded store):
    # an hour with more is split into segments; pages read an hour's segments together, newest first.
    from datetime import timedelta
    from maillink_matcher.adapters import record_views
    monkeypatch.setattr(record_views, "SEGMENT", 2)
    views = RecordViews(db)
    docs = [{**message(f"k{i}", "p1"), "sort_date": T0 + timedelta(minutes=i)} for i in range(7)]
    for doc in docs[:3] + docs[5:] + docs[3:5]:   # the newest entries not in the last segment
        await views.write([doc])
        await db["messages"].insert_one(doc)
    days = (await db["record_view_days"].find_one({"_id": "person:p1#2026-11"}))["days"]
    assert sorted(days) == ["2026-11-03T10", "2026-11-03T10~1", "2026-11-03T10~2", "2026-11-03T10~3"]
    # Three later hours: the first read (4 hours) must not take segment ~3 (k4) for all of 10:00.
    later = [{**message(f"h{i}", "p1"), "sort_date": T0 + timedelta(hours=i)} for i in (1, 2, 3)]
    await views.write(later)
    await db["messages"].insert_many(later)
    store, pages, cursor = QueryStore(db, CrmProjections(db)), [], None
    while True:
        found, cursor = await store.record_page(Viewer("owner", "c"), ["person:p1"], 4, cursor)
        pages.append([d["_id"] for d in found])
        if cursor is None:
            break
    assert pages == [["h3", "h2", "h1", "k6"], ["k5", "k4", "k3", "k2"], ["k1", "k0"]]
    await db["messages"].delete_many({"_id": {"$in": ["h1", "h2", "h3"]}})
    for doc in later:
        await views.write([{**doc, "status": "deleted"}])
    # A message that leaves the person is swept from the segment it is in, wherever that is.
    moved = {**docs[1], "person_ids": ["p2"]}
    await views.write([moved])
    await db["messages"].replace_one({"_id": "k1"}, moved)
    assert await keys_of(db, "person:p1") == ["k6", "k5", "k4", "k3", "k2", "k0"]
    assert await keys_of(db, "person:p2") == ["k1"]
    # A new process (counts unknown) adds to the last segment, and the entries stay listed once.
    await RecordViews(db).write([{**message("k7", "p1"), "sort_date": T0 + timedelta(minutes=7)}])
    assert (await keys_of(db, "person:p1"))[0] == "k7"
    assert len(await RecordViews(db).keys_of("person:p1")) == 7


async def test_a_retry_that_puts_the_entry_in_another_segment_leaves_no_copy_behind(db, monkeypatch):
    # The failed attempt filled the segment it used, so the retry (same process, claims read again,
    # as app.py does after a failure) puts the same entry in the next segment: the first copy must go,
    # or it would outlive a later move of the message.
    from maillink_matcher.adapters import record_views
    monkeypatch.setattr(record_views, "SEGMENT", 1)
    views = RecordViews(db)
    k0 = message("k0", "p1")
    await views.write([k0])
    await db["messages"].insert_one(k0)
    await views.write([message("k1", "p1")])          # a crash: k1 is never stored
    views.forget()
    retried = message("k1", "p1")
    await views.write([retried])                       # the retry, another segment
    await db["messages"].insert_one(retried)
    moved = {**retried, "person_ids": ["p2"]}
    await views.write([moved])
    await db["messages"].replace_one({"_id": "k1"}, moved)
    assert await keys_of(db, "person:p1") == ["k0"] and await keys_of(db, "person:p2") == ["k1"]


async def test_what_the_writer_remembers_is_bounded_and_forgetting_loses_no_entry(db, monkeypatch):
    # A long-lived writer learns which buckets and hours exist and how full it filled each bucket;
    # it keeps the most recently used (adapters/recent.py). What it forgot is written as after a restart.
    from datetime import timedelta
    from maillink_matcher.adapters import record_views
    monkeypatch.setattr(record_views, "SEGMENT", 2)
    views = RecordViews(db, max_snapshot=6, remember=3)
    hours = [{**message(f"k{i}", "p1"), "sort_date": T0 + timedelta(hours=i)} for i in range(30)]
    for doc in hours:
        await views.write([doc])
        await db["messages"].insert_one(doc)
    assert len(views._fill) <= 6 and len(views._known_days) <= 6 and len(views._known_buckets) <= 6
    assert len(await RecordViews(db).keys_of("person:p1")) == 30
    # The first hour again, long forgotten: its bucket (one entry) takes it; the hour is listed once.
    again = {**message("x0", "p1"), "sort_date": T0 + timedelta(minutes=5)}
    await views.write([again])
    await db["messages"].insert_one(again)
    assert {k for _, k in await RecordViews(db).keys_of("person:p1")} == {d["_id"] for d in hours} | {"x0"}
    days = (await db["record_view_days"].find_one({"_id": "person:p1#2026-11"}))["days"]
    assert sorted(days) == sorted({"2026-11-03T10", *[(T0 + timedelta(hours=i)).strftime("%Y-%m-%dT%H")
                                                      for i in range(30)]})
    assert await db["record_views"].find_one({"_id": "person:p1#2026-11-03T10"}) is not None


async def test_the_hours_are_listed_per_month_and_pages_walk_the_months_newest_first(db):
    # A record's hours list grew for its whole life (one item per hour with mail, rewritten whole
    # by each addition and read whole by each page); now one list per month, read as a page reaches it.
    from datetime import timedelta
    views = RecordViews(db)
    docs = [{**message(f"k{i:02d}", "p1"), "sort_date": T0 + timedelta(days=10 * i)} for i in range(12)]
    await views.write(docs[:6])
    await views.write(docs[6:])
    months = (await db["record_view_days"].find_one({"_id": "person:p1"}))["months"]
    assert months == sorted({(T0 + timedelta(days=10 * i)).strftime("%Y-%m") for i in range(12)})
    for month in months:
        hours = (await db["record_view_days"].find_one({"_id": f"person:p1#{month}"}))["days"]
        assert hours and all(h.startswith(month) for h in hours)
    # A record listed the old way (one `days` list) is still read, beside its months.
    await db["record_view_days"].update_one({"_id": "person:p1"}, {"$set": {"days": ["2026-10-01T08"]}})
    await db["record_views"].insert_one({"_id": "person:p1#2026-10-01T08", "e": [
        record_views.entry_of({**message("old", "p1"), "sort_date": datetime(2026, 10, 1, 8, tzinfo=timezone.utc)})]})
    store, pages, cursor = QueryStore(db, CrmProjections(db)), [], None
    while True:
        found, cursor = await store.record_page(Viewer("owner", "c"), ["person:p1"], 5, cursor)
        pages.append([d["_id"] for d in found])
        if cursor is None:
            break
    assert [k for page in pages for k in page] == [f"k{i:02d}" for i in reversed(range(12))] + ["old"]
    assert [len(page) for page in pages] == [5, 5, 3]
    assert len(await views.keys_of("person:p1")) == 13
