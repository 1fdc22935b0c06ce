"""Address -> messages, read by `_id`: which stored messages a person's changed address affects.

The facts consumer (handlers/facts.py) used to find them with a filter on `messages.addresses`,
a full scan of the collection on the embedded store (FerretDB v1 on SQLite pushes only `_id`
equality down). Now the mail writer keeps this index and the facts consumer reads it:

- `address_keys`, `_id` "<address>#<n>" (n = a stable hash of the message key, 0..CHUNKS-1, so
  the mail of a busy address is spread over a few documents): `k`, entries "<account id> <message
  key>". A message is listed under each of its participants' addresses; the addresses of its own
  mailbox (`account_addresses`) are left out (own addresses are never participants, and a change
  of them re-checks the user's mail by user, not by address).
- Written by MessageStore.flush before the messages, for the addresses a message is not yet listed
  under (the message's `indexed_addresses`, written with it). A crash in between is repaired by
  the redelivery (the same `$addToSet` again). Entries are only added: a superset is harmless (a
  re-check of a message that no longer has the address changes nothing).
- A chunk this process has not seen is inserted rather than updated (adapters/string_sets.py).
- The facts consumer's look-up happens after it moved the facts clock; a writer that adds an
  entry after the look-up finishes its flush after the clock moved, so it re-resolves the batch
  itself (handlers/mail_apply.py).
- `python -m maillink_matcher rebuild-indexes` re-derives it from the messages.
"""
import zlib

from .reads import by_ids
from .recent import RecentSet
from .string_sets import add_strings, snapshot_ids

CHUNKS = 4


def chunk_id(address: str, key: str) -> str:
    return f"{address}#{zlib.crc32(key.encode()) % CHUNKS}"


def indexable(doc: dict) -> list[str]:
    own = set(doc.get("account_addresses", []))
    return sorted(a for a in doc.get("addresses", []) if a not in own)


class AddressIndex:
    def __init__(self, db, max_snapshot: int = 2_000_000) -> None:
        self.collection = db["address_keys"]
        self._max_snapshot = max_snapshot
        self.forget()

    def forget(self) -> None:
        self._known: RecentSet | None = None     # chunk ids known to exist (None: not read yet or too many)
        self._loaded = False

    async def _load(self) -> None:
        if self._loaded:
            return
        self._loaded = True
        self._known = await snapshot_ids(self.collection, self._max_snapshot)

    async def write(self, docs: list[dict]) -> None:
        """Lists each message under its new addresses; sets `indexed_addresses` on the docs."""
        entries: dict[str, set[str]] = {}
        for doc in docs:
            addresses = indexable(doc)
            done = set(doc.get("indexed_addresses", []))
            for address in addresses:
                if address not in done:
                    entries.setdefault(chunk_id(address, doc["_id"]), set()).add(f"{doc['account_id']} {doc['_id']}")
            doc["indexed_addresses"] = addresses
        if not entries:
            return
        await self._load()
        await add_strings(self.collection, "k", entries, self._known)

    async def lookup(self, addresses: list[str]) -> list[tuple[str, str]]:
        """(account id, message key) of every message listed under any of `addresses`."""
        if not await self.collection.estimated_document_count():
            return []   # no mail indexed at all (a first CRM load): one cheap count, not CHUNKS reads per address
        ids = [f"{a}#{n}" for a in sorted(set(addresses)) for n in range(CHUNKS)]
        found: set[tuple[str, str]] = set()
        for doc in (await by_ids(self.collection, ids)).values():
            for entry in doc.get("k", []):
                account, key = entry.split(" ", 1)
                found.add((account, key))
        return sorted(found)

    async def rebuild(self, messages) -> int:
        """Re-derives the index from the stored messages; returns how many were listed."""
        await self.collection.drop()
        self.forget()
        count, batch = 0, []
        async for doc in messages.find({}, {"_id": 1, "account_id": 1, "addresses": 1, "account_addresses": 1}):
            batch.append(doc)
            if len(batch) == 1000:
                await self.write(batch)
                count, batch = count + len(batch), []
        await self.write(batch)
        return count + len(batch)
