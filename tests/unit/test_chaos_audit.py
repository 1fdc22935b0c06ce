"""The chaos verdict's definitions of linked, lost and duplicated (devtools/maillink_devtools/chaos_audit.py)."""
from maillink_devtools.chaos_audit import Expected, audit, live_keys, token_of


def rec(key, token, *, account="a1", person="p-1", thread="t1", revision=1, deal=None):
    return {"message_key": key, "account_id": account, "subject": f"Re: [chaos {token}] words", "thread_id": thread,
            "person_ids": [person] if person else [], "deal_id": deal, "revision": revision}


def doc(token):
    return {"_id": f"k-{token}", "subject": f"[chaos {token}] words"}


MAILBOX = {"0-1": Expected("a1", "p-1"), "0-2": Expected("a1", "p-2")}


def test_every_message_linked_once_is_a_clean_verdict():
    linked = [rec("k1", "0-1"), rec("k2", "0-2", person="p-2"), rec("k1", "0-1", revision=2)]
    verdict = audit(MAILBOX, linked, [], [doc("0-1"), doc("0-2")])
    assert verdict.ok and verdict.line() == "chaos: in=2 linked=2 lost=0 duplicated=0"


def test_a_message_without_a_record_or_without_its_person_or_unlinked_is_lost():
    assert audit(MAILBOX, [rec("k1", "0-1")], [], [doc("0-1"), doc("0-2")]).lost == ["0-2"]
    no_person = audit(MAILBOX, [rec("k1", "0-1"), rec("k2", "0-2", person=None)], [], [doc("0-1"), doc("0-2")])
    assert no_person.lost == ["0-2"] and no_person.linked == 1
    unlinked = audit(MAILBOX, [rec("k1", "0-1"), rec("k2", "0-2", person="p-2")],
                     [{"message_key": "k2", "revision": 1}], [doc("0-1"), doc("0-2")])
    assert unlinked.lost == ["0-2"]
    # ...but a later revision after the unlink makes it live again
    relinked = audit(MAILBOX, [rec("k1", "0-1"), rec("k2", "0-2", person="p-2"), rec("k2", "0-2", person="p-2", revision=2)],
                     [{"message_key": "k2", "revision": 1}], [doc("0-1"), doc("0-2")])
    assert relinked.ok


def test_missing_store_document_is_lost():
    verdict = audit(MAILBOX, [rec("k1", "0-1"), rec("k2", "0-2", person="p-2")], [], [doc("0-1")])
    assert verdict.lost == ["0-2"] and verdict.linked == 2


def test_two_keys_for_one_message_two_store_documents_or_a_conflicting_revision_are_duplicates():
    two_keys = audit(MAILBOX, [rec("k1", "0-1"), rec("k1b", "0-1"), rec("k2", "0-2", person="p-2")], [],
                     [doc("0-1"), doc("0-2")])
    assert two_keys.duplicated == ["0-1"] and not two_keys.lost
    two_docs = audit(MAILBOX, [rec("k1", "0-1"), rec("k2", "0-2", person="p-2")], [], [doc("0-1"), doc("0-1"), doc("0-2")])
    assert two_docs.duplicated == ["0-1"]
    conflict = audit(MAILBOX, [rec("k1", "0-1", revision=3), rec("k1", "0-1", revision=3, thread="t9"),
                               rec("k2", "0-2", person="p-2")], [], [doc("0-1"), doc("0-2")])
    assert conflict.duplicated == ["0-1"] and conflict.conflicting_keys == ["k1"]
    # an older revision with another thread is history, not a duplicate
    history = audit(MAILBOX, [rec("k1", "0-1", thread="t0"), rec("k1", "0-1", revision=2),
                              rec("k2", "0-2", person="p-2")], [], [doc("0-1"), doc("0-2")])
    assert history.ok


def test_a_linked_record_of_no_mailbox_message_counts_as_duplicated():
    verdict = audit(MAILBOX, [rec("k1", "0-1"), rec("k2", "0-2", person="p-2"), rec("k9", "0-9"),
                              rec("k3", "0-2", account="a2")], [], [doc("0-1"), doc("0-2")])
    assert verdict.unexpected_keys == ["k3", "k9"] and len(verdict.duplicated) == 2 and not verdict.ok


def test_helpers():
    assert token_of("Re: [chaos 3-1204] pricing") == "3-1204" and token_of("no token") is None and token_of(None) is None
    live, conflicting = live_keys([rec("k", "0-1"), rec("k", "0-1")], [])
    assert list(live) == ["k"] and len(live["k"]) == 2 and not conflicting
