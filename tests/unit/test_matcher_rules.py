"""The matcher's pure rules, table-driven: blocklist, linking, visibility, sensitive mail, threads."""
from datetime import datetime, timedelta, timezone

import pytest

from maillink_matcher.domain.blocklist import blocked_by, matching_entry
from maillink_matcher.domain.facts import CrmView, MessageFacts, Record, Settings, ThreadFacts
from maillink_matcher.domain.resolve import resolve
from maillink_matcher.domain.sensitive import classify
from maillink_matcher.domain.settings_history import settings_at
from maillink_matcher.domain.threads import ancestors, place, root_thread_id
from maillink_matcher.domain.visibility import Shown, Viewer, can_see
from maillink_schemas.mail import Envelope, Visibility
from maillink_schemas.matcher import LinkingMode, RecordKind

NOW = datetime(2026, 11, 27, tzinfo=timezone.utc)
DEAL, LEAD, PROJECT = RecordKind.DEAL, RecordKind.LEAD, RecordKind.PROJECT


@pytest.mark.parametrize("address, entries, expected", [
    ("x@acme.com", {"@acme.com"}, "@acme.com"),
    ("x@eu.acme.com", {"@acme.com"}, "@acme.com"),         # subdomains are blocked by their domain
    ("x@notacme.com", {"@acme.com"}, None),
    ("x@acme.com.evil.org", {"@acme.com"}, None),
    ("Spam@Ads.Example", {"spam@ads.example"}, "spam@ads.example"),
    ("x@com", {"@com"}, None),                               # never a bare TLD
])
def test_blocklist_domain_and_subdomain_entries(address, entries, expected):
    assert matching_entry(address, frozenset(entries)) == expected


@pytest.mark.parametrize("senders, others, blocked", [
    (["spam@x.org"], [], True),                              # sole sender blocked
    (["spam@x.org"], ["friend@y.org"], False),               # an un-blocked participant in To/Cc
    (["spam@x.org"], ["other@x.org"], True),                 # a blocked Cc does not un-block it
    (["ok@y.org"], ["spam@x.org"], False),                   # only a participant blocked: not the sender
    ([], ["spam@x.org"], False),                             # sent by the user (own address excluded)
])
def test_blocklist_sole_sender_rule(senders, others, blocked):
    assert (blocked_by(senders, others, frozenset({"@x.org"})) is not None) == blocked


def message(**kw) -> MessageFacts:
    base = dict(message_key="k", account_id="a", user_id="u", senders=("jan@acme.cz",), recipients=("me@me.org",),
                arrived_at=NOW, account_addresses=("me@me.org",))
    return MessageFacts(**{**base, **kw})


def crm(open_items=None, persons=None, records=(), own=()) -> CrmView:
    persons = persons or {"jan@acme.cz": ("p-jan",), "priya@x.in": ("p-priya",)}
    recs = {("person", "p-jan"): Record("person", "p-jan", "Jan Novák"),
            ("person", "p-priya"): Record("person", "p-priya", "Priya Raman")}
    recs.update({(r.kind, r.record_id): r for r in records})
    return CrmView(frozenset(own), persons, open_items or {}, recs)


THREAD = ThreadFacts("t")


@pytest.mark.parametrize("case, kw, expected_deal, code", [
    ("one open deal", dict(open_items={DEAL: {"p-jan": ("d1",)}}), "d1", "deal.only_open"),
    ("two open deals", dict(open_items={DEAL: {"p-jan": ("d1", "d2")}}), None, "deal.several_open"),
    ("open deals of two persons", dict(open_items={DEAL: {"p-jan": ("d1",), "p-priya": ("d2",)}},
                                       msg=dict(recipients=("priya@x.in",))), None, "deal.several_open"),
    ("the same deal of two persons", dict(open_items={DEAL: {"p-jan": ("d1",), "p-priya": ("d1",)}},
                                          msg=dict(recipients=("priya@x.in",))), "d1", "deal.only_open"),
    ("manual mode", dict(open_items={DEAL: {"p-jan": ("d1",)}}, settings=Settings(linking_mode=LinkingMode.MANUAL)),
     None, "deal.manual"),
    ("bulk mail", dict(open_items={DEAL: {"p-jan": ("d1",)}}, msg=dict(bulk_reason="List-Unsubscribe")),
     None, "deal.bulk"),
    ("thread keeps its deal", dict(open_items={DEAL: {"p-jan": ("d2",)}}, thread=ThreadFacts("t", {DEAL: "d1"}),
                                   records=[Record("deal", "d1", "D1")]), "d1", "deal.thread"),
    ("won deal gets no new links", dict(thread=ThreadFacts("t", {DEAL: "d1"}),
                                        records=[Record("deal", "d1", "D1", open=False, closed_as="won")]),
     None, "deal.closed"),
    ("won deal keeps the links it has", dict(thread=ThreadFacts("t", {DEAL: "d1"}), previous={DEAL: "d1"},
                                             records=[Record("deal", "d1", "D1", open=False, closed_as="won")]),
     "d1", "deal.thread"),
    ("owner removed the deal", dict(open_items={DEAL: {"p-jan": ("d1",)}},
                                    thread=ThreadFacts("t", {DEAL: None}, frozenset({DEAL}))), None,
     "deal.unlinked_by_user"),
])
def test_deal_linking_rules_and_their_reasons(case, kw, expected_deal, code):
    view = crm(kw.get("open_items"), records=kw.get("records", ()))
    result = resolve(message(**kw.get("msg", {})), view, kw.get("thread", THREAD), kw.get("settings", Settings()),
                     kw.get("previous"))
    assert result.links[DEAL] == expected_deal, case
    assert code in [r.code for r in result.reasons], [r.text for r in result.reasons]


def test_reasons_name_the_person_and_the_count():
    one = resolve(message(), crm({DEAL: {"p-jan": ("d1",)}}, records=[Record("deal", "d1", "ACME renewal")]),
                  THREAD, Settings())
    assert "linked to deal ACME renewal because it is Jan Novák's only open deal" in [r.text for r in one.reasons]
    two = resolve(message(senders=("priya@x.in",)), crm({DEAL: {"p-priya": ("d1", "d2")}}), THREAD, Settings())
    assert any("Priya Raman has 2 open deals" in r.text for r in two.reasons)


@pytest.mark.parametrize("kind", [LEAD, PROJECT])
def test_leads_and_projects_follow_the_same_rule(kind):
    one = resolve(message(), crm({kind: {"p-jan": ("x1",)}}), THREAD, Settings())
    two = resolve(message(), crm({kind: {"p-jan": ("x1", "x2")}}), THREAD, Settings())
    assert one.links[kind] == "x1" and one.thread_links == {kind: "x1"}
    assert two.links[kind] is None and set(two.suggestions[kind]) == {"x1", "x2"}


def test_own_addresses_of_every_account_are_never_participants():
    view = crm(persons={"me@work.org": ("p-me",), "me@home.org": ("p-me2",), "jan@acme.cz": ("p-jan",)},
               own=["me@home.org"])
    result = resolve(message(recipients=("me@work.org", "me@home.org"), account_addresses=("me@work.org",)),
                     view, THREAD, Settings())
    assert result.person_ids == ("p-jan",)


def test_blocked_mail_is_ignored_with_its_reason():
    result = resolve(message(senders=("x@spam.example",)), crm(), THREAD,
                     Settings(blocklist=frozenset({"@spam.example"})))
    assert result.status == "ignored" and not result.person_ids
    assert result.reasons[0].text == "blocked: the only sender, @spam.example, is on your blocklist"
    company = resolve(message(senders=("x@spam.example",)), crm(), THREAD,
                      Settings(company_blocklist=frozenset({"@spam.example"})))
    assert "the company's blocklist" in company.reasons[0].text


@pytest.mark.parametrize("subject, snippet, expected", [
    ("Reset your password", "", "password_reset"),
    ("Obnovení hesla k účtu", "", "password_reset"),
    ("Passwort zurücksetzen", "", "password_reset"),
    ("Réinitialisation de votre mot de passe", "", "password_reset"),
    ("Your verification code", "", "sign_in_code"),
    ("483920 is your Instagram code", "", "sign_in_code"),
    ("Váš ověřovací kód", "", "sign_in_code"),
    ("Tu código de verificación", "", "sign_in_code"),
    ("Monthly account statement", "", "statement"),
    ("Výpis z účtu za listopad", "", "statement"),
    ("Ihre Gehaltsabrechnung November", "", "statement"),
    ("Re: Pricing for 50 seats", "Could you send the code of conduct?", None),
    ("Meeting on Tuesday", "", None),
])
def test_sensitive_mail_classifier(subject, snippet, expected):
    assert classify(subject, snippet) == expected


def test_sensitive_mail_stays_private_under_a_shared_default_unless_the_owner_shares_it():
    msg = message(subject="Your sign-in code")
    assert resolve(msg, crm(), THREAD, Settings()).visibility == Visibility.PRIVATE
    shared = ThreadFacts("t", visibility=Visibility.SHARED)
    assert resolve(msg, crm(), shared, Settings()).visibility == Visibility.SHARED


def test_a_changed_default_applies_to_mail_received_after_it_only():
    history = [{"version": 1, "effective_at": NOW, "sharing_default": "private"}]
    assert settings_at(history, [], NOW - timedelta(seconds=1)).sharing_default == Visibility.SHARED
    assert settings_at(history, [], NOW + timedelta(seconds=1)).sharing_default == Visibility.PRIVATE


def test_threads_from_references_never_from_the_subject():
    root = Envelope(message_id="r@x", subject="Invoice")
    reply = Envelope(message_id="a@x", in_reply_to=["r@x"], references=["r@x"], subject="Re: Invoice")
    other = Envelope(message_id="o@y", subject="Invoice")
    t = [root_thread_id("acc", e, None, "k") for e in (root, reply, other)]
    assert t[0] == t[1] != t[2]
    assert ancestors(Envelope(in_reply_to=["b"], references=["a", "b"])) == ["b", "a"]
    assert place("new", set()).thread_id == "new"
    merged = place("new", {"t2", "t1"})
    assert merged.thread_id == "t1" and merged.merged == {"t2"}


VIEWERS = {"owner": Viewer("u1", "c1"), "colleague": Viewer("u2", "c1"), "grouped": Viewer("u3", "c1", frozenset({"g"})),
           "stranger": Viewer("u4", "c2", frozenset({"g"})), "admin": Viewer("u5", "c1", is_admin=True)}
RECORDS = {("person", "p1"): Record("person", "p1"), ("deal", "d1"): Record("deal", "d1", group="g")}


@pytest.mark.parametrize("visibility, linked, who_sees", [
    ("private", (("person", "p1"),), {"owner"}),
    ("shared", (("person", "p1"),), {"owner", "colleague", "grouped", "admin"}),
    ("shared", (("person", "p1"), ("deal", "d1")), {"owner", "grouped", "admin"}),
    ("shared", (), {"owner"}),
    ("shared", (("person", "p-gone"),), {"owner"}),
])
def test_can_see_private_and_shared_across_users(visibility, linked, who_sees):
    shown = Shown("u1", "c1", "active", visibility, linked)
    assert {name for name, v in VIEWERS.items() if can_see(v, shown, RECORDS)} == who_sees
