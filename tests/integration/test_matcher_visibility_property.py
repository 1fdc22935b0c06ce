"""Property (hypothesis), against the real store: over random users, permissions, visibility
settings and links, the query API's reads (adapters/queries.py: the filtered scan, and the record
views the conversations are read from) never return a private message to anyone but its owner,
nor a shared message to someone who cannot see every record it is linked to; and they return
exactly what the pure `can_see` allows, newest first, across pages."""
import asyncio
import uuid
from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from maillink_matcher.adapters.projections import CrmProjections
from maillink_matcher.adapters.queries import QueryStore, linked_refs
from maillink_matcher.adapters.record_views import RecordViews
from maillink_matcher.domain.resolve import record_from
from maillink_matcher.domain.visibility import can_see
from maillink_matcher.adapters.queries import shown
from maillink_runtime import mongo
from tests.conftest import MONGODB_URL

pytestmark = pytest.mark.integration
USERS = ["u1", "u2", "u3", "u4"]
PERSONS, DEALS, GROUPS = ["p1", "p2", "p3"], ["d1", "d2"], ["g1", "g2"]
T0 = datetime(2026, 1, 1, tzinfo=timezone.utc)

users = st.fixed_dictionaries({u: st.fixed_dictionaries({
    "company_id": st.sampled_from(["c1", "c1", "c2"]), "groups": st.lists(st.sampled_from(GROUPS), unique=True),
    "visible_record_ids": st.lists(st.sampled_from(PERSONS + DEALS), unique=True, max_size=2),
    "is_admin": st.booleans()}) for u in USERS})
records = st.fixed_dictionaries({r: st.one_of(st.none(), st.sampled_from(GROUPS)) for r in PERSONS + DEALS})
message = st.fixed_dictionaries({
    "user_id": st.sampled_from(USERS), "visibility": st.sampled_from(["private", "shared"]),
    "status": st.sampled_from(["active", "active", "active", "ignored", "deleted"]),
    "person_ids": st.lists(st.sampled_from(PERSONS + ["p-unknown"]), unique=True, max_size=2),
    "deal_id": st.one_of(st.none(), st.sampled_from(DEALS))})


@pytest.fixture(scope="module")
def loop():
    loop = asyncio.new_event_loop()
    yield loop
    loop.close()


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(users=users, groups=records, msgs=st.lists(message, min_size=1, max_size=8), page=st.integers(1, 3))
def test_queries_return_exactly_what_can_see_allows(loop, users, groups, msgs, page):
    loop.run_until_complete(_check(users, groups, msgs, page))


async def _check(users, groups, msgs, page):
    client = mongo.connect(MONGODB_URL)
    db = client[f"prop_{uuid.uuid4().hex[:10]}"]
    try:
        crm = CrmProjections(db)
        for u, doc in users.items():
            await crm.users.collection.insert_one({"_id": u, "user_id": u, **doc})
        for r, group in groups.items():
            kind = "person" if r.startswith("p") else "deal"
            await crm.by_kind[kind].collection.insert_one({"_id": r, "visibility_group": group, "status": "open"})
        docs = []
        for i, m in enumerate(msgs):
            doc = {"_id": f"k{i:02d}", **m, "company_id": users[m["user_id"]]["company_id"], "thread_id": f"t{i % 3}",
                   "sort_date": T0 + timedelta(minutes=(i % 5) * 37),  # over 3 hours: several buckets
                   "linked": bool(m["person_ids"] or m["deal_id"]),
                   "account_id": "a", "direction": "incoming"}
            docs.append(doc)
        await RecordViews(db).write(docs)   # as the mail writer does before storing the messages
        await db["messages"].insert_many(docs)
        threads = {f"t{j}": {"_id": f"t{j}", "members": [d["_id"] for d in docs if d["thread_id"] == f"t{j}"]}
                   for j in range(3)}   # a thread lists its messages: one thread is read by `_id`
        queries = QueryStore(db, crm)
        all_records = {(("person" if r.startswith("p") else "deal"), r): record_from(
            "person" if r.startswith("p") else "deal", {"_id": r, "visibility_group": g}) for r, g in groups.items()}
        for user in USERS:
            viewer = await queries.viewer(user, None)
            for criteria, match, refs in (({"person_ids": "p1"}, lambda d: "p1" in d["person_ids"], None),
                                          ({"deal_id": "d1"}, lambda d: d["deal_id"] == "d1", None),
                                          ({"user_id": user}, lambda d: d["user_id"] == user, None),
                                          ({}, lambda d: "p1" in d["person_ids"], ["person:p1"]),
                                          ({}, lambda d: d["deal_id"] == "d1", ["deal:d1"]),
                                          ({}, lambda d: bool({"p1", "p2"} & set(d["person_ids"])),
                                           ["person:p1", "person:p2"]),
                                          ({}, lambda d: d["thread_id"] == "t0", threads["t0"]),
                                          # the Mail tab, all and linked only (its own record view)
                                          ({}, lambda d: d["user_id"] == user, ("mail", None)),
                                          ({}, lambda d: d["user_id"] == user and d["linked"], ("mail", True))):
                got, cursor = [], None
                while True:
                    found, cursor = await (queries.mail_tab(viewer, refs[1], None, ("active",), page, cursor)
                                           if isinstance(refs, tuple)
                                           else queries.thread_page(viewer, refs, page, cursor) if isinstance(refs, dict)
                                           else queries.record_page(viewer, refs, page, cursor) if refs
                                           else queries.page(viewer, criteria, page, cursor))
                    got += [d["_id"] for d in found]
                    if cursor is None:
                        break
                statuses = ("active", "ignored") if isinstance(refs, dict) else ("active",)   # a thread shows blocked mail to its owner
                expected = [d for d in docs if match(d) and d["status"] in statuses
                            and can_see(viewer, shown(d), all_records)]
                expected.sort(key=lambda d: (d["sort_date"], d["_id"]), reverse=True)
                assert got == [d["_id"] for d in expected]
                for key in got:   # the two promises, spelled out
                    d = next(x for x in docs if x["_id"] == key)
                    if d["user_id"] != user:
                        assert d["visibility"] == "shared" and linked_refs(d)
                        assert all(r in all_records and (all_records[r].group is None
                                   or all_records[r].group in viewer.groups or r[1] in viewer.visible_record_ids
                                   or viewer.is_admin) for r in linked_refs(d))
    finally:
        await client.drop_database(db.name)
        await client.close()
