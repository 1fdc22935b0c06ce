"""Messages, threads and the Message-ID -> thread map, in matcher's own database.

The mailbox's single writer (handlers/mail.py, one consumer per partition of the account-keyed
topics) is the only code that writes here, so writes are plain replaces by `_id`: FerretDB v1 on
SQLite neither makes filtered updates atomic nor pushes down anything but `_id` equality, so hot
paths read by `_id` only. Order of a flush: messages, then threads, then refs. A crash between
them is repaired by the redelivered batch, because a message's stored thread id takes part in
placing it again (domain/threads.py).
"""
import time

from pymongo import DESCENDING, ReplaceOne
from pymongo.asynchronous.database import AsyncDatabase

from maillink_runtime.mongo import bulk_write_chunked, insert_new
from maillink_schemas.base import deterministic_id

from .address_index import AddressIndex
from .reads import by_ids
from .record_views import RecordViews

# Updates go in small commands (mongo.bulk_write_chunked: large update commands deadlock FerretDB
# v1); inserts do not hold the connections that cause it, so they go in large ones (mongo.insert_new).
bulk = bulk_write_chunked


async def insert_or_replace(collection, docs: list[dict]) -> None:
    """Documents believed new, inserted in large commands (inserts do not hold the connections that
    deadlock big update commands); any that exists after all (a redelivery) is replaced."""
    taken = await insert_new(collection, docs)
    await bulk(collection, [ReplaceOne({"_id": docs[i]["_id"]}, docs[i], upsert=True) for i in taken])


def ref_key(account_id: str, message_id: str) -> str:
    return deterministic_id(account_id, message_id)


class MessageStore:
    def __init__(self, db: AsyncDatabase) -> None:
        self.messages = db["messages"]
        self.threads = db["threads"]
        self.refs = db["thread_refs"]
        self.outbox = db["outbox"]
        self.views = RecordViews(db)
        self.addresses = AddressIndex(db)
        self.timings: dict[str, float] = {}

    async def get(self, message_key: str) -> dict | None:
        return await self.messages.find_one({"_id": message_key})

    async def messages_by_key(self, keys: list[str]) -> dict[str, dict]:
        return await by_ids(self.messages, keys)

    async def refs_by_key(self, keys: list[str]) -> dict[str, str]:
        return {k: d["thread_id"] for k, d in (await by_ids(self.refs, keys)).items()}

    async def threads_by_id(self, ids: list[str]) -> dict[str, dict]:
        """Thread documents, following merges: the result maps each asked id to its live thread."""
        found = await by_ids(self.threads, ids)
        live: dict[str, dict] = {}
        for thread_id in ids:
            doc, hops = found.get(thread_id), 0
            while doc and doc.get("merged_into") and hops < 20:
                target = doc["merged_into"]
                doc = found.get(target) or await self.threads.find_one({"_id": target}) or {"_id": target}
                found[target], hops = doc, hops + 1
            live[thread_id] = doc or {"_id": thread_id}
        return live

    async def keys_in_threads(self, thread_ids: list[str]) -> list[str]:
        cursor = self.messages.find({"thread_id": {"$in": list(thread_ids)}}, {"_id": 1})
        return [d["_id"] async for d in cursor]

    async def flush(self, messages: list[dict], threads: list[dict], refs: list[dict],
                    created: dict[str, set[str]] | None = None) -> None:
        """`created`: per collection name, the ids known not to be stored yet (inserted, not replaced).
        The address index and the record views first (their modules say why)."""
        clock = time.perf_counter()

        def lap(name: str) -> None:   # seconds per step, logged with the batch (handlers/mail.py)
            nonlocal clock
            now = time.perf_counter()
            self.timings[name] = round(now - clock, 3)
            clock = now

        await self.addresses.write(messages)
        lap("w_addresses")
        await self.views.write(messages)
        lap("w_views")
        self.timings.update(self.views.timings)
        for name, collection, docs in (("messages", self.messages, messages), ("threads", self.threads, threads),
                                       ("refs", self.refs, refs)):
            new = (created or {}).get(name, set())
            inserts = [d for d in docs if d["_id"] in new]
            await insert_or_replace(collection, inserts)
            await bulk(collection, [ReplaceOne({"_id": d["_id"]}, d, upsert=True) for d in docs if d["_id"] not in new])
            lap(f"w_{name}")
            self.timings[f"n_{name}_replaced"] = len(docs) - len(inserts)

    # --- the outbox: revisions written but not yet published, per mailbox ----------------------
    async def pending(self, account_ids: set[str]) -> dict[str, list[str]]:
        return {k: d.get("keys", []) for k, d in (await by_ids(self.outbox, sorted(account_ids))).items() if d.get("keys")}

    async def set_pending(self, keys: dict[str, list[str]]) -> None:
        await bulk(self.outbox, [ReplaceOne({"_id": a}, {"_id": a, "keys": sorted(set(k))}, upsert=True)
                                 for a, k in keys.items()])

    async def clear_pending(self, account_ids: list[str]) -> None:
        await bulk(self.outbox, [ReplaceOne({"_id": a}, {"_id": a, "keys": []}, upsert=True) for a in account_ids])

    async def ensure_indexes(self) -> None:
        # Only the filters still made on `messages`, for a real MongoDB: one thread stored before
        # threads listed their messages (queries.thread_page), and a company's settings change.
        # The conversations, the Mail tab and the re-checks by address or user read record views
        # and the address index by `_id`. Every declared index costs writes: FerretDB v1 on SQLite
        # maintains them (measured: 2,000-document inserts 35 % slower with the ten indexes this
        # declared before) but pushes only `_id` equality down.
        await self.messages.create_index([("thread_id", 1), ("sort_date", DESCENDING)])
        await self.messages.create_index([("company_id", 1), ("arrived_at", 1)])

    # --- reads for the facts consumer: which messages a changed fact affects ------------------
    async def affected_by_addresses(self, addresses: list[str]) -> list[tuple[str, str]]:
        """(account id, message key) of the messages with any of `addresses`: `_id` reads of the index."""
        return await self.addresses.lookup(addresses)

    async def affected_in_view(self, ref: str, arrived_since=None) -> list[tuple[str, str]]:
        """(account id, message key) of the messages in a record view: a record's conversations
        ("person:<id>"), or a user's Mail tab ("user:<id>": their active and blocked mail)."""
        return await self.views.keys_of(ref, arrived_since)

    async def affected(self, query: dict) -> list[tuple[str, str]]:
        """(account id, message key) of the messages matching `query` (a scan on the embedded store)."""
        cursor = self.messages.find(query, {"_id": 1, "account_id": 1})
        return [(d["account_id"], d["_id"]) async for d in cursor]
