"""The mail writer's own documents (messages, threads, Message-ID -> thread refs, the outbox),
kept in memory while this process owns their partitions.

Why it is correct: only the consumer that owns an account's partition writes these documents
(entrypoints/consumers.py), so what it read or wrote stays true until a rebalance, when the cache
is cleared (`clear`, called by the consumer's rebalance listener) and rebuilt: the first batch
after it scans the `_id`s of messages and the (small) thread and ref documents, so a key that is
not there is known to be new and is inserted (`insert_many`, about 6 times cheaper than replaces
on the embedded store) without having been read. A handler that fails may have changed cached
documents it never wrote: the caller clears the cache then (app.py), and the retry reads the store.

Memory: what exists is kept as `_id` sets (every message and thread) and the ref map (id -> thread
id); whole message and thread documents only for the most recently used `max_docs` of each (the
oldest are dropped and read again by `_id` when needed). Kept whole, the documents of the full
benchmark (200,000 messages) grew the process to 1.75 GB, and grow without bound with the mailboxes.
"""
from .messages import MessageStore, by_ids

_ABSENT = None


def _remember(cache: dict, docs: dict, limit: int) -> dict:
    """`cache` updated with `docs` as the most recent, keeping the newest `limit` (dicts keep insertion
    order; trimmed to half the limit at once, so eviction costs O(1) per entry)."""
    for key, doc in docs.items():
        cache.pop(key, None)
        cache[key] = doc
    if len(cache) > limit:
        cache = dict(list(cache.items())[-(limit // 2):])
    return cache


class CachedMessages:
    def __init__(self, store: MessageStore, max_docs: int = 50_000, max_snapshot: int = 2_000_000) -> None:
        self._store, self._max_docs, self._max_snapshot = store, max_docs, max_snapshot
        self.clear()

    @property
    def timings(self) -> dict[str, float]:
        return self._store.timings

    def clear(self) -> None:
        self._store.views.forget()
        self._store.addresses.forget()
        self._loaded = False
        self._existing: set[str] | None = None      # every stored message key (None: not known)
        self._messages: dict[str, dict | None] = {}    # recently used (or known absent), newest last
        self._thread_ids: set[str] | None = None       # every stored thread id (None: not known)
        self._threads: dict[str, dict] = {}            # recently used thread documents, newest last
        self._refs: dict[str, str | None] | None = None
        self._outbox: dict[str, list[str]] = {}

    async def _load(self) -> None:
        if self._loaded:
            return
        self._loaded = True
        store = self._store
        if await store.messages.estimated_document_count() <= self._max_snapshot:
            self._existing = {d["_id"] async for d in store.messages.find({}, {"_id": 1})}
        if await store.threads.estimated_document_count() <= self._max_snapshot:
            self._thread_ids = set()
            async for d in store.threads.find({}):
                self._thread_ids.add(d["_id"])
                self._threads = _remember(self._threads, {d["_id"]: d}, self._max_docs)
        if await store.refs.estimated_document_count() <= self._max_snapshot:
            self._refs = {d["_id"]: d["thread_id"] async for d in store.refs.find({})}

    # --- reads -----------------------------------------------------------------------------
    async def messages_by_key(self, keys: list[str]) -> dict[str, dict]:
        await self._load()
        unknown = [k for k in dict.fromkeys(keys) if k not in self._messages
                   and (self._existing is None or k in self._existing)]
        if unknown:
            found = await by_ids(self._store.messages, unknown)
            self._messages = _remember(self._messages, {k: found.get(k, _ABSENT) for k in unknown}, self._max_docs)
        return {k: d for k in keys if (d := self._messages.get(k)) is not None}

    async def refs_by_key(self, keys: list[str]) -> dict[str, str]:
        await self._load()
        if self._refs is None:
            return await self._store.refs_by_key(keys)
        return {k: t for k in keys if (t := self._refs.get(k)) is not None}

    async def threads_by_id(self, ids: list[str]) -> dict[str, dict]:
        await self._load()
        if self._thread_ids is None:
            return await self._store.threads_by_id(ids)
        live: dict[str, dict] = {}
        for thread_id in ids:
            doc, hops = await self._thread(thread_id), 0
            while doc and doc.get("merged_into") and hops < 20:
                doc, hops = await self._thread(doc["merged_into"]) or {"_id": doc["merged_into"]}, hops + 1
            live[thread_id] = doc or {"_id": thread_id}
        return live

    async def _thread(self, thread_id: str) -> dict | None:
        if thread_id not in self._thread_ids:
            return None
        if thread_id not in self._threads:   # stored, but dropped from memory: read it again
            found = await by_ids(self._store.threads, [thread_id])
            if thread_id not in found:
                return None
            self._threads = _remember(self._threads, found, self._max_docs)
        return self._threads[thread_id]

    async def keys_in_threads(self, thread_ids: list[str]) -> list[str]:
        return await self._store.keys_in_threads(thread_ids)

    # --- writes ----------------------------------------------------------------------------
    def _is_new(self, collection: str, doc_id: str) -> bool:
        if collection == "messages":
            return self._messages.get(doc_id, 0) is _ABSENT or (
                self._existing is not None and doc_id not in self._existing and doc_id not in self._messages)
        known = self._thread_ids if collection == "threads" else self._refs
        return known is not None and doc_id not in known

    async def flush(self, messages: list[dict], threads: list[dict], refs: list[dict]) -> None:
        await self._load()
        created = {name: {d["_id"] for d in docs if self._is_new(name, d["_id"])}
                   for name, docs in (("messages", messages), ("threads", threads), ("refs", refs))}
        await self._store.flush(messages, threads, refs, created)
        # Documents dropped from memory are read again when needed; `_existing` keeps what exists.
        self._messages = _remember(self._messages, {d["_id"]: d for d in messages}, self._max_docs)
        if self._existing is not None:
            self._existing.update(d["_id"] for d in messages)
        if self._thread_ids is not None:
            self._thread_ids.update(d["_id"] for d in threads)
            self._threads = _remember(self._threads, {d["_id"]: d for d in threads}, self._max_docs)
        if self._refs is not None:
            self._refs.update({d["_id"]: d["thread_id"] for d in refs})

    # --- the outbox ------------------------------------------------------------------------
    async def pending(self, account_ids: set[str]) -> dict[str, list[str]]:
        unknown = {a for a in account_ids if a not in self._outbox}
        if unknown:
            found = await self._store.pending(unknown)
            self._outbox.update({a: found.get(a, []) for a in unknown})
        return {a: list(self._outbox[a]) for a in account_ids if self._outbox.get(a)}

    async def set_pending(self, keys: dict[str, list[str]]) -> None:
        await self._store.set_pending(keys)
        self._outbox.update({a: sorted(set(k)) for a, k in keys.items()})

    async def clear_pending(self, account_ids: list[str]) -> None:
        await self._store.clear_pending(account_ids)
        self._outbox.update({a: [] for a in account_ids})
