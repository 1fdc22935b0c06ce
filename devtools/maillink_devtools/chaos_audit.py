"""`make chaos`'s verdict: every message in the mailboxes linked exactly once. Pure: no I/O.

Inputs, all read by the chaos run after the pipeline settled, none from the services' own accounts:
- `mailbox`: what the IMAP server holds, read over IMAP: token -> (account id, the CRM person the
  message must link to). Every generated message carries a unique token `[chaos <a>-<i>]` in its
  Subject, so a linked record is tied to its mailbox message without trusting the pipeline's key.
- `linked` / `unlinked`: every record of mail.message.linked.v1 / mail.message.unlinked.v1, from the
  beginning, read by an independent consumer (no group).
- `stored`: every document of the matcher's `messages` collection (its `_id` is the message key).

Definitions (per mailbox message, i.e. per token):
- latest revision of a key: the linked records of that key with the highest `revision`; the key is
  *live* when no unlinked record of it carries a revision >= that one.
- a key is *conflicting* when its latest-revision records disagree (thread id, persons, deal):
  the same revision published twice with two different answers.
- linked: at least one live key of the message's account carries its token and its person.
- lost: not linked, or the matcher's store has no document for it.
- duplicated: more than one live key for the token (the same message linked as two records), or a
  conflicting key among its keys, or more than one store document for the token.
- unexpected: live keys whose token is in no mailbox (a message linked that does not exist); they
  count as duplicated too (a copy of nothing is still one record too many).
"""
import re
from collections import defaultdict
from dataclasses import dataclass, field

TOKEN = re.compile(r"\[chaos (\d+-\d+)\]")


def token_of(subject: str | None) -> str | None:
    match = TOKEN.search(subject or "")
    return match.group(1) if match else None


@dataclass(frozen=True)
class Expected:
    account_id: str
    person_id: str


@dataclass
class Verdict:
    inbound: int
    linked: int
    lost: list[str] = field(default_factory=list)
    duplicated: list[str] = field(default_factory=list)
    conflicting_keys: list[str] = field(default_factory=list)
    unexpected_keys: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.lost and not self.duplicated

    def line(self) -> str:
        return (f"chaos: in={self.inbound} linked={self.linked} lost={len(self.lost)} "
                f"duplicated={len(self.duplicated)}")


def _signature(record: dict) -> tuple:
    return record.get("thread_id"), tuple(sorted(record.get("person_ids") or [])), record.get("deal_id")


def live_keys(linked: list[dict], unlinked: list[dict]) -> tuple[dict[str, list[dict]], set[str]]:
    """key -> its latest-revision records (live keys only), and the keys whose latest revision conflicts."""
    latest: dict[str, list[dict]] = {}
    for record in linked:
        key, revision = record["message_key"], record.get("revision", 1)
        have = latest.get(key)
        if have is None or revision > have[0].get("revision", 1):
            latest[key] = [record]
        elif revision == have[0].get("revision", 1):
            have.append(record)
    dropped: dict[str, int] = {}
    for record in unlinked:
        key = record["message_key"]
        dropped[key] = max(dropped.get(key, 0), record.get("revision", 1))
    live = {k: recs for k, recs in latest.items() if dropped.get(k, 0) < recs[0].get("revision", 1)}
    conflicting = {k for k, recs in live.items() if len({_signature(r) for r in recs}) > 1}
    return live, conflicting


def audit(mailbox: dict[str, Expected], linked: list[dict], unlinked: list[dict], stored: list[dict]) -> Verdict:
    live, conflicting = live_keys(linked, unlinked)
    keys_of: dict[str, set[str]] = defaultdict(set)
    unexpected: list[str] = []
    for key, records in live.items():
        record = records[0]
        token = token_of(record.get("subject"))
        if token in mailbox and mailbox[token].account_id == record.get("account_id"):
            keys_of[token].add(key)
        else:
            unexpected.append(key)
    store_docs: dict[str, int] = defaultdict(int)
    for doc in stored:
        token = token_of(doc.get("subject"))
        if token is not None:
            store_docs[token] += 1

    verdict = Verdict(inbound=len(mailbox), linked=0)
    for token, expected in sorted(mailbox.items()):
        keys = keys_of.get(token, set())
        with_person = [k for k in keys if any(expected.person_id in (r.get("person_ids") or []) for r in live[k])]
        if with_person:
            verdict.linked += 1
        if not with_person or store_docs.get(token, 0) == 0:
            verdict.lost.append(token)
        if len(keys) > 1 or keys & conflicting or store_docs.get(token, 0) > 1:
            verdict.duplicated.append(token)
    verdict.conflicting_keys = sorted(conflicting)
    verdict.unexpected_keys = sorted(unexpected)
    verdict.duplicated.extend(f"unexpected key {k}" for k in verdict.unexpected_keys)
    return verdict
