"""What each record of a mail batch changes (received, expunged, a thread command, a re-check),
and the resolution of every message it touched: pure decisions (domain/threads.place,
domain/resolve.resolve through Resolver) over the loaded state, loading more only where a merge or
a thread's new deal reaches messages outside the batch."""
import structlog
from prometheus_client import Counter

from maillink_schemas.base import deterministic_id, utcnow
from maillink_schemas.mail import MessageExpunged, MessageReceived
from maillink_schemas.matcher import MailboxAction, MailboxCommand, RecheckRequested, ThreadAction, ThreadCommand

from ..domain.threads import mentioned_ids, place, root_thread_id
from .deal_hints import hint_of, judge_hints
from .documents import merge_sighting, new_document
from .mail_state import MailState, _ref
from .resolving import Resolver

RESOLVED = Counter("maillink_matcher_resolutions_total", "Messages resolved, by outcome", ["status", "linked"])
MERGES = Counter("maillink_matcher_thread_merges_total", "Threads merged into another")
log = structlog.get_logger()
_MAX_PASSES = 4


class Deciding(MailState):
    # --- the facts each record brings ------------------------------------------------------
    async def receive(self, event: MessageReceived) -> None:
        doc = self.docs.get(event.message_key)
        if doc is None:
            doc = self.docs[event.message_key] = new_document(event)
        else:
            merge_sighting(doc, event)
        if event.location and event.location.model_dump() not in doc["locations"]:
            doc["locations"].append(event.location.model_dump())
        if event.deal_hint and hint_of(doc) != event.deal_hint:
            doc["deal_hint"] = {"deal_id": event.deal_hint, "company_id": event.company_id}
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
            ref = _ref(event.account_id, message_id)
            if self.refs.get(ref) != winner["_id"]:   # a ref already on this thread is not written again
                self.refs[ref] = winner["_id"]
                self.refs_touched.add(ref)

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
    async def _deal_hints(self) -> None:
        """A Smart Bcc deal address (handlers/deal_hints.py): the thread takes the named deal, as an
        owner decision, once per hinted message."""
        waiting = [self.docs[k] for k in self.dirty if hint_of(self.docs[k])
                   and (await self.thread(self.docs[k]["thread_id"])).get("deal_hints", {}).get(k) != hint_of(self.docs[k])]
        for doc, verdict in await judge_hints(waiting, self.deps.crm):
            doc["deal_hint"]["refused"] = None if verdict.deal_id else verdict.reason.model_dump()
            if verdict.deal_id is None:
                continue
            thread = await self.thread(doc["thread_id"])
            thread.setdefault("links", {})["deal"] = verdict.deal_id
            thread.setdefault("link_reasons", {})["deal"] = verdict.reason.model_dump()
            thread["user_decided"] = sorted({*thread.get("user_decided", []), "deal"})
            thread.setdefault("deal_hints", {})[doc["_id"]] = verdict.deal_id
            self.threads_touched.add(thread["_id"])
            for key in await self._load_members([thread["_id"]]):
                self._touch(key)

    async def settle(self) -> None:
        await self._deal_hints()
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

