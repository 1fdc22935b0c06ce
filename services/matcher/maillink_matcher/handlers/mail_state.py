"""One mail batch's working state, and how it is loaded: the documents of the batch's messages,
their threads and Message-ID refs, in a few `_id` reads (handlers/mail.py has the whole picture)."""
from dataclasses import dataclass, field

from maillink_schemas.base import deterministic_id
from maillink_schemas.mail import MessageExpunged, MessageReceived, Visibility
from maillink_schemas.matcher import RecheckRequested, ThreadCommand

from ..domain.threads import mentioned_ids, root_thread_id
from ..ports import CrmPort, FactsSync, MessageStorePort, Outgoing, Publish, SettingsPort
from .resolving import Resolver


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
class MailState:
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
    timings: dict[str, float] = field(default_factory=dict)    # seconds per phase of commit (logged)

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
