"""In-memory implementations of the matcher's ports (services/matcher/maillink_matcher/ports.py),
for unit tests of the handlers. `fail_at` makes a fake fail at a chosen step, to prove that a
redelivery repairs a crash between two writes."""
import copy
from datetime import datetime, timezone
import json
from pathlib import Path

from maillink_schemas.mail import MessageReceived

SAMPLE = json.loads((Path(__file__).resolve().parents[2] / "schemas/samples/MessageReceived.json").read_text())


class Crash(Exception):
    pass


class FakeMessages:
    def __init__(self):
        self.messages, self.threads, self.refs = {}, {}, {}
        self.fail_at: str | None = None
        self.outbox = {}

    async def pending(self, account_ids):
        return {a: list(self.outbox[a]) for a in account_ids if self.outbox.get(a)}

    async def set_pending(self, keys):
        if self.fail_at == "outbox":
            raise Crash("outbox")
        self.outbox.update({a: sorted(set(k)) for a, k in keys.items()})

    async def clear_pending(self, account_ids):
        for a in account_ids:
            self.outbox[a] = []

    async def messages_by_key(self, keys):
        return {k: copy.deepcopy(self.messages[k]) for k in keys if k in self.messages}

    async def refs_by_key(self, keys):
        return {k: self.refs[k]["thread_id"] for k in keys if k in self.refs}

    async def threads_by_id(self, ids):
        out = {}
        for i in ids:
            doc = self.threads.get(i)
            while doc and doc.get("merged_into"):
                doc = self.threads.get(doc["merged_into"], {"_id": doc["merged_into"]})
            out[i] = copy.deepcopy(doc) if doc else {"_id": i}
        return out

    async def keys_in_threads(self, thread_ids):
        return [k for k, d in self.messages.items() if d.get("thread_id") in thread_ids]

    async def flush(self, messages, threads, refs):
        for name, target, docs in (("messages", self.messages, messages), ("threads", self.threads, threads),
                                   ("refs", self.refs, refs)):
            if self.fail_at == name:
                raise Crash(name)
            for d in docs:
                target[d["_id"]] = copy.deepcopy(d)


class FakeCrm:
    def __init__(self):
        self.by_kind = {k: {} for k in ("person", "organization", "deal", "lead", "project", "user")}

    def add(self, kind, record_id, **fields):
        self.by_kind[kind][record_id] = {"_id": record_id, **fields}

    async def persons_by_address(self, addresses):
        out = {}
        for p in self.by_kind["person"].values():
            for e in p.get("emails", []):
                if e in addresses and not p.get("deleted"):
                    out.setdefault(e, set()).add(p["_id"])
        return {k: tuple(sorted(v)) for k, v in out.items()}

    async def open_items_of(self, kind, person_ids):
        out = {}
        for item in self.by_kind[kind].values():
            is_open = item.get("status", "open") == "open" and item.get("open", True) and not item.get("deleted")
            for p in item.get("person_ids", []):
                if p in person_ids and is_open:
                    out.setdefault(p, set()).add(item["_id"])
        return {k: tuple(sorted(v)) for k, v in out.items()}

    async def records(self, kind, ids):
        return {i: self.by_kind[kind][i] for i in ids if i in self.by_kind[kind]}


class FakeSettings:
    def __init__(self):
        self.history, self.accounts = {}, {}

    async def histories(self, keys):
        return {k: self.history[k] for k in keys if k in self.history}

    async def user_accounts(self, user_ids):
        return {u: self.accounts[u] for u in user_ids if u in self.accounts}

    async def current(self, scope, owner_id):
        entries = self.history.get(f"{scope}:{owner_id}")
        return max(entries, key=lambda e: e["version"]) if entries else None


class FakeBus:
    def __init__(self):
        self.sent = []
        self.fail = False

    async def __call__(self, events):
        if self.fail:
            raise Crash("publish")
        self.sent.extend(events)

    def of(self, kind):
        return [e for topic, _, e in self.sent if topic == kind]


def received(key, message_id=None, *, sender="jan@acme.cz", to=("me@example.com",), cc=(), refs=(), irt=None,
             folder="INBOX", uid=1, user="u1", account="acc-1", subject="Pricing", at=None, date=None, **extra):
    doc = copy.deepcopy(SAMPLE)
    doc.update(message_key=key, event_id=f"ev-{key}-{folder}-{uid}", user_id=user, account_id=account,
               account_addresses=["me@example.com"], **extra)
    doc["occurred_at"] = at or datetime.now(timezone.utc).isoformat()
    doc["location"] = {"folder": folder, "uidvalidity": 1, "uid": uid}
    doc["envelope"].update(message_id=message_id or f"{key}@x", references=list(refs),
                           in_reply_to=[irt] if irt else list(refs[-1:]), subject=subject,
                           to=[{"email": t} for t in to], cc=[{"email": c} for c in cc])
    doc["envelope"]["from"] = [{"email": sender}]
    if date is not None:
        doc["envelope"]["date"] = date
    doc["bulk"] = extra.get("bulk", {})
    return MessageReceived.model_validate(doc)
