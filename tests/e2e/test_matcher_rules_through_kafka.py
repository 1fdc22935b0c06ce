"""The matcher's rules, one test per rule, driven through Kafka and the HTTP API against a real
matcher process, the real broker and the real store. Each test uses its own users, mailboxes
and addresses, so they share one matcher process without seeing each other's data.

A crash between two writes of a CRM update is proven against the real store in
tests/integration/test_matcher_store.py (it needs a fault injected between two writes).
"""
import asyncio
import json
import time
import uuid

import httpx
import pytest

from maillink_devtools.kafka_tools import produce, read_topic, wait_group_caught_up
from maillink_devtools.processes import ServiceSet
from maillink_schemas import crm
from maillink_schemas.accounts import AccountConfigured
from maillink_schemas.mail import MessageExpunged
from maillink_schemas.base import utcnow
from tests.conftest import KAFKA, MONGODB_URL, RUN_DIR, bearer, drop_namespace
from tests.unit.matcher_fakes import received

pytestmark = pytest.mark.e2e
SCOPES = ("mail:read", "mail:write", "settings:read", "settings:write")


@pytest.fixture(scope="module")
def matcher(auth_env):
    namespace = f"t{uuid.uuid4().hex[:10]}."
    env = {**auth_env, "MAILLINK_NAMESPACE": namespace, "KAFKA_BOOTSTRAP_SERVERS": KAFKA, "MONGODB_URL": MONGODB_URL,
           "MAILLINK_HANDLER_RETRIES": "2", "MATCHER_BLOB_URLS": json.dumps({"ingest": "http://127.0.0.1:1"})}
    procs = ServiceSet()
    procs.start("matcher", 18900 + uuid.uuid4().int % 90, env, RUN_DIR / "e2e-logs" / namespace)
    try:
        procs.wait_healthy()
        yield procs.running["matcher"].url, namespace
    finally:
        procs.stop()
        asyncio.run(drop_namespace(namespace))  # the matcher's topics, 6 partitions each, and its database


class World:
    """One test's users, mailboxes and CRM, with unique ids, talking to the matcher over Kafka and HTTP."""

    def __init__(self, url: str, namespace: str, token) -> None:
        self.url, self.ns, self._token = url, namespace, token
        self.tag = uuid.uuid4().hex[:8]
        self.company = f"c-{self.tag}"
        self._crm_topics: set[str] = set()

    def id(self, name: str) -> str:
        return f"{name}-{self.tag}"

    def addr(self, local: str, domain: str = "acme.example") -> str:
        return f"{local}@{self.tag}.{domain}" if not domain.startswith("@") else f"{local}{domain}"

    def headers(self, user: str, *scopes: str, company: str | None = None) -> dict:
        return bearer(self._token(self.id(user), *(scopes or SCOPES), company=company or self.company))

    async def crm(self, topic: str, *records) -> None:
        self._crm_topics.add(f"{self.ns}{topic}")
        await produce(KAFKA, f"{self.ns}{topic}", [(r.model_dump(mode="json").get(_key(topic), "k").encode(),
                                                    r.model_dump_json().encode()) for r in records])

    async def settled(self, timeout: float = 60) -> None:
        """Deals are not retroactive, so a test must know the matcher has stored the CRM records it
        published before it sends mail: wait until the matcher's group has committed every CRM record."""
        for topic in sorted(self._crm_topics):
            await wait_group_caught_up(KAFKA, f"{self.ns}maillink-matcher", topic, timeout=timeout)

    async def person(self, name: str, *emails: str, **kw) -> str:
        await self.crm("crm.persons.v1", crm.PersonUpserted(person_id=self.id(name), name=name, emails=list(emails), **kw))
        return self.id(name)

    async def deal(self, name: str, *persons: str, **kw) -> str:
        await self.crm("crm.deals.v1", crm.DealUpserted(deal_id=self.id(name), title=name, person_ids=list(persons), **kw))
        return self.id(name)

    async def user(self, name: str, company: str | None = None, **kw) -> None:
        await self.crm("crm.users.v1", crm.UserUpserted(user_id=self.id(name), company_id=company or self.company, **kw))

    async def mail(self, key: str, user: str = "alice", account: str = "acc", **kw) -> str:
        kw.setdefault("to", [self.addr("alice", "me.example")])
        event = received(self.id(key), f"{self.id(key)}@mail", user=self.id(user), account=self.id(account), **kw)
        doc = json.loads(event.model_dump_json())
        doc["account_addresses"] = [self.addr(user, "me.example")]
        await produce(KAFKA, f"{self.ns}mail.message.received.v1", [(self.id(account).encode(), json.dumps(doc).encode())])
        return self.id(key)

    def get(self, path: str, user: str = "alice", **params) -> dict:
        response = httpx.get(f"{self.url}{path}", headers=self.headers(user), params=params, timeout=10)
        assert response.status_code == 200, response.text
        return response.json()

    def settings(self, user: str = "alice", **change) -> dict:
        response = httpx.put(f"{self.url}/settings", headers=self.headers(user), json=change, timeout=15)
        assert response.status_code == 200, response.text
        return response.json()


def _key(topic: str) -> str:
    return {"crm.persons.v1": "person_id", "crm.deals.v1": "deal_id", "crm.users.v1": "user_id",
            "crm.leads.v1": "lead_id", "crm.projects.v1": "project_id"}.get(topic, "id")


@pytest.fixture
def world(matcher, token) -> World:
    return World(*matcher, token)


async def eventually(read, check, timeout: float = 30):
    deadline = time.monotonic() + timeout
    while True:
        value = read()
        if check(value) or time.monotonic() > deadline:
            return value
        await asyncio.sleep(0.3)


def messages(view: dict) -> dict[str, dict]:
    return {m["message_key"]: m for t in view["threads"] for m in t["messages"]}


def texts(message: dict) -> list[str]:
    return [r["text"] for r in message["reasons"]]


async def test_sole_sender_blocking_with_a_blocked_cc(world):
    world.settings(blocklist=["@spam.example"])
    blocked = await world.mail("m1", sender="x@spam.example", cc=["y@spam.example"])
    kept = await world.mail("m2", sender="x@spam.example", cc=[world.addr("friend")])
    ignored = await eventually(lambda: messages(world.get("/mail", filter="ignored")), lambda m: blocked in m)
    tab = await eventually(lambda: messages(world.get("/mail")), lambda m: kept in m)
    assert blocked in ignored and blocked not in tab and kept in tab
    assert texts(ignored[blocked]) == ["blocked: the only sender, @spam.example, is on your blocklist"]
    events = [json.loads(r.value) for r in await read_topic(KAFKA, f"{world.ns}mail.message.ignored.v1", expect=1)]
    assert any(e["message_key"] == blocked and e["reasons"][0]["code"] == "blocked.sole_sender" for e in events)


async def test_domain_and_subdomain_blocking(world):
    world.settings(blocklist=["@block.example"])
    sub = await world.mail("m1", sender="x@eu.block.example")
    other = await world.mail("m2", sender="x@notblock.example")
    tab = await eventually(lambda: messages(world.get("/mail")), lambda m: other in m)
    assert other in tab and sub not in tab
    assert sub in messages(world.get("/mail", filter="ignored"))


async def test_company_blocklist_applies_to_every_user_of_the_company(world):
    admin = bearer(world._token(world.id("admin"), "settings:admin", company=world.company))
    assert httpx.put(f"{world.url}/company/blocklist", headers=admin, json={"blocklist": ["@corp-spam.example"]},
                     timeout=15).status_code == 200
    await world.user("alice")
    await world.settled()
    blocked = await world.mail("m1", sender="x@corp-spam.example")
    ignored = await eventually(lambda: messages(world.get("/mail", filter="ignored")), lambda m: blocked in m)
    assert "the company's blocklist" in texts(ignored[blocked])[0]


async def test_own_addresses_of_two_accounts_of_one_user_are_never_participants(world):
    home = world.addr("alice", "home.example")
    for account, email in (("acc", world.addr("alice", "me.example")), ("acc2", home)):
        config = AccountConfigured(event_id=world.id(account), occurred_at=utcnow(), account_id=world.id(account),
                                   user_id=world.id("alice"), company_id=world.company, email=email,
                                   imap={"host": "127.0.0.1", "port": 1}, username=email, secret_ciphertext="x")
        await produce(KAFKA, f"{world.ns}mail.account.v1", [(world.id(account).encode(), config.model_dump_json().encode())])
    me_as_person = await world.person("alice-home", home)
    jan = await world.person("jan", world.addr("jan"))
    key = await world.mail("m1", sender=world.addr("jan"), cc=[home])
    view = await eventually(lambda: messages(world.get(f"/persons/{jan}/conversations")), lambda m: key in m)
    assert view[key]["person_ids"] == [jan]
    assert messages(world.get(f"/persons/{me_as_person}/conversations")) == {}


async def test_one_open_deal_links_and_two_leave_the_choice_with_suggestions(world):
    jan = await world.person("Jan Novák", world.addr("jan"))
    priya = await world.person("Priya Raman", world.addr("priya"))
    deal = await world.deal("ACME renewal", jan)
    await world.deal("Pilot A", priya)
    await world.deal("Pilot B", priya)
    await world.settled()
    one = await world.mail("m1", sender=world.addr("jan"))
    two = await world.mail("m2", sender=world.addr("priya"))
    view = await eventually(lambda: messages(world.get("/mail")), lambda m: {one, two} <= m.keys())
    assert view[one]["deal_id"] == deal and view[two]["deal_id"] is None
    assert f"linked to deal ACME renewal because it is Jan Novák's only open deal" in texts(view[one])
    assert any("Priya Raman has 2 open deals" in t for t in texts(view[two]))
    detail = world.get(f"/threads/{view[two]['thread_id']}")
    assert {s["title"] for s in detail["suggestions"]} == {"Pilot A", "Pilot B"}


async def test_leads_and_projects_follow_the_one_open_item_rule(world):
    jan = await world.person("jan", world.addr("jan"))
    await world.crm("crm.leads.v1", crm.LeadUpserted(lead_id=world.id("lead"), title="Lead", person_ids=[jan]))
    await world.crm("crm.projects.v1", crm.ProjectUpserted(project_id=world.id("proj"), title="Onboarding",
                                                          person_ids=[jan]))
    await world.settled()
    key = await world.mail("m1", sender=world.addr("jan"))
    view = await eventually(lambda: messages(world.get(f"/leads/{world.id('lead')}/conversations")), lambda m: key in m)
    assert view[key]["lead_id"] == world.id("lead") and view[key]["project_id"] == world.id("proj")
    assert key in messages(world.get(f"/projects/{world.id('proj')}/conversations"))


async def test_manual_mode_links_only_persons(world):
    world.settings(linking_mode="manual")
    jan = await world.person("jan", world.addr("jan"))
    await world.deal("Only deal", jan)
    await world.settled()
    key = await world.mail("m1", sender=world.addr("jan"))
    view = await eventually(lambda: messages(world.get(f"/persons/{jan}/conversations")), lambda m: key in m)
    assert view[key]["deal_id"] is None and "not linked to a deal: linking is manual" in texts(view[key])
    assert world.get(f"/threads/{view[key]['thread_id']}")["suggestions"][0]["title"] == "Only deal"


async def test_thread_continuity_after_the_deal_is_won(world):
    jan = await world.person("jan", world.addr("jan"))
    deal = await world.deal("Renewal", jan)
    await world.settled()
    first = await world.mail("m1", sender=world.addr("jan"))
    await eventually(lambda: messages(world.get(f"/deals/{deal}/conversations")), lambda m: first in m)
    await world.deal("Renewal", jan, version=2, status="won")
    await world.settled()
    reply = await world.mail("m2", sender=world.addr("jan"), refs=[f"{first}@mail"])
    view = await eventually(lambda: messages(world.get(f"/persons/{jan}/conversations")), lambda m: reply in m)
    assert view[first]["deal_id"] == deal and view[reply]["deal_id"] is None
    assert view[first]["thread_id"] == view[reply]["thread_id"]
    assert "not linked to deal Renewal: it is won and receives no new messages" in texts(view[reply])
    assert set(messages(world.get(f"/deals/{deal}/conversations"))) == {first}


async def test_bulk_mail_is_never_auto_linked_to_a_deal(world):
    news = await world.person("news", world.addr("news"))
    await world.deal("Deal", news)
    await world.settled()
    key = await world.mail("m1", sender=world.addr("news"), bulk={"list_unsubscribe": True})
    view = await eventually(lambda: messages(world.get(f"/persons/{news}/conversations")), lambda m: key in m)
    assert view[key]["deal_id"] is None and "not linked to a deal: bulk mail (List-Unsubscribe)" in texts(view[key])


async def test_private_against_shared_across_three_users_with_different_permissions(world):
    await world.user("alice")
    await world.user("bob", groups=["sales"])                 # sees the deal's group
    await world.user("carol")                                  # same company, not in the group
    await world.user("dave", company="c-other", groups=["sales"])
    jan = await world.person("jan", world.addr("jan"))
    deal = await world.deal("Grouped", jan, visibility_group="sales")
    eva = await world.person("eva", world.addr("eva"))
    await world.settled()
    shared = await world.mail("m1", sender=world.addr("jan"))
    plain = await world.mail("m2", sender=world.addr("eva"))
    await eventually(lambda: messages(world.get("/mail")), lambda m: {shared, plain} <= m.keys())
    world.settings(sharing_default="private")
    await asyncio.sleep(0.5)
    private = await world.mail("m3", sender=world.addr("jan"), refs=[])
    await eventually(lambda: messages(world.get("/mail")), lambda m: private in m)

    def seen(user: str, path: str) -> set[str]:
        response = httpx.get(f"{world.url}{path}", headers=world.headers(user, company="c-other" if user == "dave"
                                                                         else None), timeout=10)
        return set(messages(response.json()))

    assert seen("bob", f"/deals/{deal}/conversations") == {shared}
    assert seen("carol", f"/deals/{deal}/conversations") == set()
    assert seen("carol", f"/persons/{eva}/conversations") == {plain}
    assert seen("dave", f"/persons/{jan}/conversations") == set()
    assert seen("alice", f"/persons/{jan}/conversations") == {shared, private}
    assert private not in seen("bob", f"/persons/{jan}/conversations")


async def test_a_changed_default_does_not_touch_old_mail(world):
    jan = await world.person("jan", world.addr("jan"))
    await world.user("alice")
    await world.user("bob")
    await world.settled()
    old = await world.mail("m1", sender=world.addr("jan"))
    await eventually(lambda: messages(world.get("/mail")), lambda m: old in m)
    world.settings(sharing_default="private")
    new = await world.mail("m2", sender=world.addr("jan"))
    view = await eventually(lambda: messages(world.get("/mail")), lambda m: new in m)
    assert view[old]["visibility"] == "shared" and view[new]["visibility"] == "private"
    assert set(messages(world.get(f"/persons/{jan}/conversations", user="bob"))) == {old}


async def test_a_person_created_after_their_mail_picks_it_up(world):
    key = await world.mail("m1", sender=world.addr("late"))
    await eventually(lambda: messages(world.get("/mail")), lambda m: key in m)
    late = await world.person("Late Person", world.addr("late"))
    view = await eventually(lambda: messages(world.get(f"/persons/{late}/conversations")), lambda m: key in m)
    assert view[key]["revision"] == 2 and view[key]["person_ids"] == [late]
    assert f"linked to person Late Person because {world.addr('late')} is their address" in texts(view[key])


async def test_a_deal_set_on_a_thread_shows_its_earlier_messages(world):
    priya = await world.person("priya", world.addr("priya"))
    await world.deal("A", priya)
    chosen = await world.deal("B", priya)
    await world.settled()
    first = await world.mail("m1", sender=world.addr("priya"))
    second = await world.mail("m2", sender=world.addr("priya"), refs=[f"{first}@mail"])
    view = await eventually(lambda: messages(world.get("/mail")), lambda m: {first, second} <= m.keys())
    response = httpx.post(f"{world.url}/threads/{view[first]['thread_id']}/links", headers=world.headers("alice"),
                          json={"kind": "deal", "record_id": chosen}, timeout=15)
    assert response.status_code == 202 and response.json()["applied"]
    assert set(messages(world.get(f"/deals/{chosen}/conversations"))) == {first, second}
    stranger = httpx.post(f"{world.url}/threads/{view[first]['thread_id']}/links", headers=world.headers("bob"),
                          json={"kind": "deal", "record_id": chosen}, timeout=15)
    assert stranger.status_code == 404


async def test_a_three_message_chain_arriving_newest_first_with_in_reply_to_only_is_one_thread(world):
    c = await world.mail("c", sender=world.addr("jan"), irt=f"{world.id('b')}@mail")
    b = await world.mail("b", sender=world.addr("jan"), irt=f"{world.id('a')}@mail")
    a = await world.mail("a", sender=world.addr("jan"))
    view = await eventually(lambda: messages(world.get("/mail")), lambda m: {a, b, c} <= m.keys())
    assert len({view[k]["thread_id"] for k in (a, b, c)}) == 1
    assert {m["message_key"] for m in world.get(f"/threads/{view[a]['thread_id']}")["messages"]} == {a, b, c}


async def test_a_duplicate_across_folders_is_one_message(world):
    key = await world.mail("m1", sender=world.addr("jan"), folder="INBOX", uid=1)
    await world.mail("m1", sender=world.addr("jan"), folder="Archive", uid=5)
    view = await eventually(lambda: messages(world.get("/mail")), lambda m: m.get(key, {}).get("folders") == ["Archive", "INBOX"])
    assert view[key]["folders"] == ["Archive", "INBOX"] and len(view) == 1
    assert key in messages(world.get("/mail", folder="Archive"))


async def test_deletion_in_the_mailbox_and_in_the_mail_tab(world):
    gone = await world.mail("m1", sender=world.addr("jan"), folder="INBOX", uid=1)
    deleted = await world.mail("m2", sender=world.addr("jan"), folder="INBOX", uid=2)
    await eventually(lambda: messages(world.get("/mail")), lambda m: {gone, deleted} <= m.keys())
    expunged = MessageExpunged(event_id=world.id("x"), occurred_at=utcnow(), message_key=gone,
                               account_id=world.id("acc"), location={"folder": "INBOX", "uidvalidity": 1, "uid": 1})
    await produce(KAFKA, f"{world.ns}mail.message.expunged.v1", [(world.id("acc").encode(), expunged.model_dump_json().encode())])
    response = httpx.delete(f"{world.url}/messages/{deleted}", headers=world.headers("alice"), timeout=15)
    assert response.status_code == 202 and response.json()["applied"]   # gone at once
    view = await eventually(lambda: messages(world.get("/mail")), lambda m: gone not in m)
    assert gone not in view and deleted not in view
    unlinked = [json.loads(r.value) for r in await read_topic(KAFKA, f"{world.ns}mail.message.unlinked.v1", expect=2)]
    reasons = {e["message_key"]: e["reason"] for e in unlinked}
    assert reasons[gone] == "expunged" and reasons[deleted] == "deleted"


async def test_a_sensitive_message_stays_private_under_a_shared_default(world):
    jan = await world.person("jan", world.addr("jan"))
    await world.user("alice")
    await world.user("bob")
    await world.settled()
    key = await world.mail("m1", sender=world.addr("jan"), subject="Your verification code is 482913")
    normal = await world.mail("m2", sender=world.addr("jan"), subject="Lunch?")
    view = await eventually(lambda: messages(world.get("/mail")), lambda m: {key, normal} <= m.keys())
    assert view[key]["visibility"] == "private" and view[normal]["visibility"] == "shared"
    assert "private: sensitive mail (sign in code)" in texts(view[key])
    assert set(messages(world.get(f"/persons/{jan}/conversations", user="bob"))) == {normal}
