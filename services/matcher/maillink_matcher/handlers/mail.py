"""The mailbox's single writer: received and expunged messages, thread commands and re-checks,
one batch at a time. load -> decide (pure: domain/threads.place, domain/resolve.resolve) -> apply.

It is the only writer of messages, threads and thread_refs; every topic it reads is keyed by
account id, so each mailbox has exactly one writer at a time (see entrypoints/consumers.py).

Handlers are idempotent, so it's okay to be killed between the end of the handler and the commit,
or between any two writes: the outbox (one document per mailbox) lists every message whose new
revision is written but not yet published, and the next batch of that mailbox publishes them
again. Event ids derive from (message key, revision), so a repeated publish is recognisable
downstream.
"""
from dataclasses import dataclass, field

import structlog
from prometheus_client import Counter

from maillink_schemas.base import deterministic_id, utcnow
from maillink_schemas.mail import MessageExpunged, MessageReceived, Visibility
from maillink_schemas.matcher import MailboxAction, MailboxCommand, RecheckRequested, ThreadAction, ThreadCommand

from ..domain.facts import Status
from ..domain.threads import mentioned_ids, place, root_thread_id
from ..ports import CrmPort, FactsSync, MessageStorePort, Outgoing, Publish, SettingsPort
from .documents import events_for, facts_of, merge_sighting, new_document
from .resolving import Resolver

RESOLVED = Counter("maillink_matcher_resolutions_total", "Messages resolved, by outcome", ["status", "linked"])
LINKED = Counter("maillink_matcher_messages_linked_total", "Messages stored and published as linked for the first time",
                 ["with_person", "with_deal"])
MERGES = Counter("maillink_matcher_thread_merges_total", "Threads merged into another")
log = structlog.get_logger()
_MAX_PASSES = 4


@dataclass(frozen=True)
class MailDeps:
    store: MessageStorePort
    crm: CrmPort
    settings: SettingsPort
    publish: Publish
    topics: dict[str, str]                      # linked, unlinked, ignored, mailbox -> full topic names
    default_visibility: Visibility = Visibility.SHARED
    clock: FactsSync | None = None              # None: always re-read the facts after writing


@dataclass
class MailBatch:
    deps: MailDeps
    docs: dict[str, dict] = field(default_factory=dict)
    threads: dict[str, dict] = field(default_factory=dict)      # live thread id -> document
    alias: dict[str, str] = field(default_factory=dict)         # any thread id seen -> live id
    refs: dict[str, str] = field(default_factory=dict)          # ref key -> thread id
    dirty: dict[str, None] = field(default_factory=dict)        # messages to resolve
    touched: dict[str, None] = field(default_factory=dict)      # messages to write
    threads_touched: set[str] = field(default_factory=set)
    refs_touched: set[str] = field(default_factory=set)
    commands: list[Outgoing] = field(default_factory=list)
    pending: dict[str, list[str]] = field(default_factory=dict)   # account -> keys not yet published
    to_publish: dict[str, dict[str, None]] = field(default_factory=dict)   # account -> keys of new revisions
    first_revision: dict[str, int] = field(default_factory=dict)  # key -> revision published before this batch
    resolver: Resolver | None = None

    # --- load ------------------------------------------------------------------------------
    async def preload(self, items: list) -> None:
        keys = [k for item in items for k in _keys(item)]
        # Revisions written by an earlier attempt that crashed before they were published.
        self.pending = await self.deps.store.pending({i.account_id for i in items})
        unpublished = [k for ks in self.pending.values() for k in ks]
        self.docs.update(await self.deps.store.messages_by_key([*keys, *unpublished]))
        for key in unpublished:
            if key in self.docs:
                self.touched[key] = None
        ref_keys = [_ref(i.account_id, m) for i in items if isinstance(i, MessageReceived) for m in mentioned_ids(i.envelope)]
        self.refs.update(await self.deps.store.refs_by_key(ref_keys))
        candidates = [root_thread_id(i.account_id, i.envelope, i.provider_thread_id, i.message_key)
                      for i in items if isinstance(i, MessageReceived)]
        await self._load_threads([*self.refs.values(), *candidates,
                                  *(d["thread_id"] for d in self.docs.values() if d.get("thread_id"))])

    async def _load_threads(self, ids) -> None:
        missing = [i for i in dict.fromkeys(ids) if i not in self.alias]
        for asked, doc in (await self.deps.store.threads_by_id(missing)).items() if missing else ():
            self.alias[asked] = doc["_id"]
            self.threads.setdefault(doc["_id"], doc)

    async def thread(self, thread_id: str) -> dict:
        await self._load_threads([thread_id])
        return self.threads[self.alias[thread_id]]

    async def _load_members(self, thread_ids: list[str]) -> list[str]:
        # A thread lists its messages (`members`), so finding them is an `_id` read; only a thread
        # stored before that field existed needs the (scanning, on SQLite) query.
        keys: set[str] = set()
        unlisted = []
        for thread_id in thread_ids:
            doc = self.threads.get(self.alias.get(thread_id, thread_id)) or {}
            if "members" in doc:
                keys.update(doc["members"])
            elif len(doc) > 1:
                unlisted.append(thread_id)
        if unlisted:
            keys.update(await self.deps.store.keys_in_threads(unlisted))
        keys |= {k for k, d in self.docs.items() if d.get("thread_id") in thread_ids}
        missing = [k for k in keys if k not in self.docs]
        self.docs.update(await self.deps.store.messages_by_key(missing))
        return sorted(k for k in keys if k in self.docs)

    def _touch(self, key: str) -> None:
        self.dirty[key] = None
        self.touched[key] = None

    # --- the facts each record brings ------------------------------------------------------
    async def receive(self, event: MessageReceived) -> None:
        doc = self.docs.get(event.message_key)
        if doc is None:
            doc = self.docs[event.message_key] = new_document(event)
        else:
            merge_sighting(doc, event)
        if event.location and event.location.model_dump() not in doc["locations"]:
            doc["locations"].append(event.location.model_dump())
        await self._place(doc, event)
        self._touch(doc["_id"])

    async def _place(self, doc: dict, event: MessageReceived) -> None:
        ids = mentioned_ids(event.envelope)
        candidate = root_thread_id(event.account_id, event.envelope, event.provider_thread_id, event.message_key)
        known = {self.refs[_ref(event.account_id, m)] for m in ids if _ref(event.account_id, m) in self.refs}
        if doc.get("thread_id"):
            known.add(doc["thread_id"])
        if event.provider_thread_id:
            known.add(candidate)
        await self._load_threads([*known, candidate])
        placement = place(self.alias[candidate], {self.alias[t] for t in known})
        winner = await self.thread(placement.thread_id)
        winner.setdefault("account_id", doc["account_id"])
        winner.setdefault("user_id", doc["user_id"])
        if doc["_id"] not in winner.setdefault("members", []):
            winner["members"].append(doc["_id"])
        self.threads_touched.add(winner["_id"])
        for loser in sorted(placement.merged):
            await self._merge(loser, winner)
        doc["thread_id"] = winner["_id"]
        for message_id in ids:
            self.refs[_ref(event.account_id, message_id)] = winner["_id"]
            self.refs_touched.add(_ref(event.account_id, message_id))

    async def _merge(self, loser_id: str, winner: dict) -> None:
        loser = await self.thread(loser_id)
        for kind, record_id in (loser.get("links") or {}).items():
            winner.setdefault("links", {})
            if record_id and not winner["links"].get(kind):
                winner["links"][kind] = record_id
                winner.setdefault("link_reasons", {})[kind] = (loser.get("link_reasons") or {}).get(kind)
        winner["user_decided"] = sorted({*winner.get("user_decided", []), *loser.get("user_decided", [])})
        if winner.get("visibility") is None and loser.get("visibility"):
            winner["visibility"] = loser["visibility"]
        # Both sides are re-resolved: the merged thread may carry a deal, lead, project or
        # visibility that one side did not have.
        members = await self._load_members([loser_id, winner["_id"]])
        winner["members"] = sorted({*winner.get("members", []), *members})
        self.threads[loser_id] = {"_id": loser_id, "merged_into": winner["_id"]}
        self.alias[loser_id] = winner["_id"]
        self.threads_touched.add(loser_id)
        MERGES.inc()
        for key in members:
            self.docs[key]["thread_id"] = winner["_id"]
            self._touch(key)

    def expunge(self, event: MessageExpunged) -> None:
        doc = self.docs.get(event.message_key)
        location = event.location.model_dump()
        if doc is None or location not in doc["locations"]:
            return  # never seen there (or already removed: a redelivery)
        doc["locations"].remove(location)
        doc["expunge_seen"] = doc["expunge_seen"] or not doc["locations"]
        self._touch(doc["_id"])

    async def command(self, cmd: ThreadCommand) -> None:
        thread = await self.thread(cmd.thread_id)
        if thread.get("user_id") not in (None, cmd.user_id) or thread.get("account_id") not in (None, cmd.account_id):
            log.warning("thread_command_refused", thread_id=cmd.thread_id, reason="not the thread's owner")
            return
        if cmd.action == ThreadAction.DELETE_MESSAGE:
            await self._delete(cmd)
            return
        if cmd.action in (ThreadAction.LINK, ThreadAction.UNLINK) and cmd.kind:
            kind = cmd.kind.value
            thread.setdefault("links", {})[kind] = cmd.record_id if cmd.action == ThreadAction.LINK else None
            thread.setdefault("link_reasons", {})[kind] = {
                "code": f"{kind}.by_owner", "text": f"linked to {kind} {cmd.record_id} by the owner"} \
                if cmd.action == ThreadAction.LINK else None
            thread["user_decided"] = sorted({*thread.get("user_decided", []), cmd.kind.value})
        elif cmd.action == ThreadAction.SET_VISIBILITY and cmd.visibility:
            thread["visibility"] = cmd.visibility.value
        self.threads_touched.add(thread["_id"])
        for key in await self._load_members([thread["_id"]]):
            self._touch(key)

    async def _delete(self, cmd: ThreadCommand) -> None:
        doc = self.docs.get(cmd.message_key or "") or (await self.deps.store.messages_by_key([cmd.message_key or ""])).get(cmd.message_key)
        if doc is None or doc["user_id"] != cmd.user_id:
            return
        self.docs[doc["_id"]] = doc
        doc["deleted"] = True
        self._touch(doc["_id"])
        current = await self.deps.settings.current("user", cmd.user_id)
        if current and current.get("sync_back") and doc.get("locations"):
            self.commands.append((self.deps.topics["mailbox"], doc["account_id"], MailboxCommand(
                event_id=deterministic_id("mailbox-delete", doc["_id"]), occurred_at=utcnow(),
                action=MailboxAction.DELETE, account_id=doc["account_id"], message_key=doc["_id"],
                locations=doc["locations"], requested_at=cmd.occurred_at)))

    async def recheck(self, event: RecheckRequested) -> None:
        missing = [k for k in event.message_keys if k not in self.docs]
        self.docs.update(await self.deps.store.messages_by_key(missing))
        for key in event.message_keys:
            if key in self.docs:
                self._touch(key)

    # --- decide ------------------------------------------------------------------------------
    async def settle(self) -> None:
        resolver = self.resolver = Resolver(self.deps.crm, self.deps.settings, self.deps.default_visibility)
        for _ in range(_MAX_PASSES):
            if not self.dirty:
                return
            keys, self.dirty = list(self.dirty), {}
            await resolver.load([self.docs[k] for k in keys], [await self.thread(self.docs[k]["thread_id"]) for k in keys])
            for key in keys:
                doc = self.docs[key]
                thread = await self.thread(doc["thread_id"])
                decided = resolver.apply(doc, thread)
                RESOLVED.labels(doc["status"], str(bool(doc.get("person_ids"))).lower()).inc()
                if decided:  # the thread got its deal/lead/project here: its earlier messages follow
                    self.threads_touched.add(thread["_id"])
                    for member in await self._load_members([thread["_id"]]):
                        if member != key:
                            self._touch(member)

    # --- apply -------------------------------------------------------------------------------
    async def _flush(self, docs: list[dict]) -> None:
        await self.deps.store.flush(docs, [self.threads[t] for t in self.threads_touched],
                                    [{"_id": r, "thread_id": self.alias.get(self.refs[r], self.refs[r])}
                                     for r in self.refs_touched])

    async def _facts_moved(self, docs: list[dict]) -> bool:
        if self.resolver is None or not docs:
            return False
        fresh = Resolver(self.deps.crm, self.deps.settings, self.deps.default_visibility)
        await fresh.load_retroactive(docs)
        return fresh.retroactive_facts(docs) != self.resolver.retroactive_facts(docs)

    async def _stage(self) -> list[dict]:
        """Marks what this batch publishes and notes it in the outbox, before anything is written:
        if we are killed after the writes, the next batch of these mailboxes publishes what was
        written but not published (the outbox lists it), whatever that batch holds."""
        docs = [self.docs[k] for k in self.touched]
        for d in docs:
            if d["revision"] > d.get("published_revision", 0):
                self.first_revision.setdefault(d["_id"], d.get("published_revision", 0))
                d["published_revision"] = d["revision"]
                self.to_publish.setdefault(d["account_id"], {})[d["_id"]] = None
        if any(set(keys) - set(self.pending.get(a, [])) for a, keys in self.to_publish.items()):
            self.pending = {**self.pending, **{a: sorted({*self.pending.get(a, []), *keys})
                                               for a, keys in self.to_publish.items()}}
            await self.deps.store.set_pending(self.pending)
        return docs

    async def commit(self, token: str | None = None) -> None:
        docs = await self._stage()
        await self._flush(docs)
        # Close the race with the facts consumer: it changes a fact, then looks for the stored
        # messages it affects. A message resolved with the old fact but stored after that look-up
        # would be missed; so, once stored, check that no fact moved (the facts clock, one read),
        # or else read the facts again and re-resolve if they moved.
        for _ in range(2):
            if self.deps.clock is not None:
                now = await self.deps.clock.sync()
                if now == token:
                    break
                token = now
            if not await self._facts_moved(docs):
                break
            self.dirty.update(dict.fromkeys(self.touched))
            await self.settle()
            docs = await self._stage()
            await self._flush(docs)
        keys = {k for ks in self.pending.values() for k in ks}
        outgoing = [(self.deps.topics[name], d["account_id"], event)
                    for d in docs if d["_id"] in keys for name, event in events_for(d)]
        await self.deps.publish([*outgoing, *self.commands])
        for d in docs:
            if d["_id"] in keys and self.first_revision.get(d["_id"]) == 0 and d["status"] == Status.ACTIVE:
                LINKED.labels(str(bool(d["person_ids"])).lower(), str(bool(d.get("deal_id"))).lower()).inc()
        if self.pending:
            await self.deps.store.clear_pending(sorted(self.pending))


def _ref(account_id: str, message_id: str) -> str:
    return deterministic_id(account_id, message_id)


def _keys(item) -> list[str]:
    if isinstance(item, (MessageReceived, MessageExpunged)):
        return [item.message_key]
    if isinstance(item, RecheckRequested):
        return list(item.message_keys)
    if isinstance(item, ThreadCommand) and item.message_key:
        return [item.message_key]
    return []


async def handle_mail(items: list, deps: MailDeps) -> None:
    # The facts clock before any fact is read: the same token after writing means none moved.
    token = await deps.clock.sync() if deps.clock is not None else None
    batch = MailBatch(deps)
    await batch.preload(items)
    for item in items:
        with structlog.contextvars.bound_contextvars(account_id=getattr(item, "account_id", None),
                                                     message_key=getattr(item, "message_key", None)):
            if isinstance(item, MessageReceived):
                await batch.receive(item)
            elif isinstance(item, MessageExpunged):
                batch.expunge(item)
            elif isinstance(item, ThreadCommand):
                await batch.command(item)
            elif isinstance(item, RecheckRequested):
                await batch.recheck(item)
    await batch.settle()
    await batch.commit(token)
