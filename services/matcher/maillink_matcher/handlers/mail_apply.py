"""How a mail batch ends: the outbox, the writes (messages, then threads, then refs), the check
that no fact moved meanwhile, the publish, and the outbox cleared."""
import time

from prometheus_client import Counter

from ..domain.facts import Status
from .documents import events_for
from .mail_decide import Deciding
from .resolving import Resolver

LINKED = Counter("maillink_matcher_messages_linked_total", "Messages stored and published as linked for the first time",
                 ["with_person", "with_deal"])


class Applying(Deciding):
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
        started = time.perf_counter()
        docs = await self._stage()
        await self._flush(docs)
        self.timings["write"] = time.perf_counter() - started
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
        checked = time.perf_counter()
        self.timings["recheck"] = checked - started - self.timings["write"]
        keys = {k for ks in self.pending.values() for k in ks}
        outgoing = [(self.deps.topics[name], d["account_id"], event)
                    for d in docs if d["_id"] in keys for name, event in events_for(d)]
        await self.deps.publish([*outgoing, *self.commands])
        for d in docs:
            if d["_id"] in keys and self.first_revision.get(d["_id"]) == 0 and d["status"] == Status.ACTIVE:
                LINKED.labels(str(bool(d["person_ids"])).lower(), str(bool(d.get("deal_id"))).lower()).inc()
        if self.pending:
            await self.deps.store.clear_pending(sorted(self.pending))
        self.timings["publish"] = time.perf_counter() - checked


