from maillink_matcher.domain.linking import decide
from maillink_matcher.domain.participants import participants
from maillink_matcher.domain.threads import ancestors, root_thread_id
from maillink_schemas.mail import Address, Envelope


def env(**kw) -> Envelope:
    return Envelope(**kw)


def test_own_addresses_are_not_participants_and_order_is_kept():
    e = env(**{"from": [Address(email="alice@example.com")]}, to=[Address(email="jan@acme.cz")],
            cc=[Address(email="eva@acme.cz"), Address(email="jan@acme.cz")])
    assert participants(e, {"alice@example.com"}) == ["jan@acme.cz", "eva@acme.cz"]


def test_exactly_one_open_deal_is_linked_automatically():
    assert decide(["p1"], {"d1"}, None, False, False).deal_id == "d1"


def test_several_open_deals_leave_the_choice_to_the_user():
    assert decide(["p1"], {"d1", "d2"}, None, False, False).deal_id is None


def test_bulk_mail_and_manual_mode_link_only_persons():
    assert decide(["p1"], {"d1"}, None, False, True) .deal_id is None
    links = decide(["p1"], {"d1"}, None, False, False, automatic=False)
    assert links.deal_id is None and links.person_ids == ["p1"]


def test_a_thread_keeps_its_deal_but_closed_deals_get_no_new_links():
    assert decide(["p1"], {"d2"}, "d1", True, False).deal_id == "d1"
    assert decide(["p1"], {"d2"}, "d1", False, False).deal_id is None


def test_reply_and_root_share_a_thread_even_out_of_order_and_subject_never_merges():
    root = env(message_id="r@x", subject="Invoice")
    reply = env(message_id="a@x", in_reply_to=["r@x"], references=["r@x"], subject="Re: Invoice")
    other = env(message_id="o@y", subject="Invoice")
    t = [root_thread_id("acc", e, None, "k") for e in (root, reply, other)]
    assert t[0] == t[1] != t[2]
    assert ancestors(env(in_reply_to=["b"], references=["a", "b"])) == ["b", "a"]


def test_provider_thread_id_wins():
    a, b = env(message_id="1@x"), env(message_id="2@x")
    assert root_thread_id("acc", a, "123", "k1") == root_thread_id("acc", b, "123", "k2")
