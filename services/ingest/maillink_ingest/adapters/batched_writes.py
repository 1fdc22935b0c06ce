"""Writes of single documents by `_id`, carried to the store in shared bulk commands.

1,000 accounts starting together write their status three times and each folder state a few
times: one command per write kept FerretDB v1 (one SQLite transaction per command) busy for
minutes (make bench-idle). Here, writes that arrive while a command runs wait for the next one,
which carries all of them: at most `BULK_CHUNK` statements per command and one command in flight
at a time (FerretDB v1 refuses large bulk updates and serialises them anyway; runtime/mongo.py).

Two writes of the same document waiting together are merged so that the document ends as if
they had been applied one after the other: a replacement takes the place of whatever waited
before it, and a later `$set`/`$unset` applies to the waiting replacement or update (top-level
fields only, which is all ingest's status and folder state documents use). Each caller returns
once its write is stored, or raises the store's error, exactly as with `update_one`/`replace_one`.
A write already in flight is never merged into: a later one waits for the next command. A write
whose callers were all cancelled before it was sent is dropped.
"""
import asyncio
from dataclasses import dataclass, field

from pymongo import ReplaceOne, UpdateOne
from pymongo.errors import BulkWriteError

from maillink_runtime.mongo import BULK_CHUNK


@dataclass
class _Pending:
    replacement: dict | None = None  # a whole document (replace_one, upsert)
    fields: dict = field(default_factory=dict)  # $set
    removed: set[str] = field(default_factory=set)  # $unset
    upsert: bool = False
    waiters: list[asyncio.Future] = field(default_factory=list)

    def operation(self, _id: str):
        if self.replacement is not None:
            return ReplaceOne({"_id": _id}, self.replacement, upsert=True)
        update = {**({"$set": self.fields} if self.fields else {}),
                  **({"$unset": {name: "" for name in self.removed}} if self.removed else {})}
        return UpdateOne({"_id": _id}, update, upsert=self.upsert)


class BatchedWrites:
    def __init__(self, collection, chunk: int = BULK_CHUNK) -> None:
        self._col, self._chunk = collection, chunk
        self._pending: dict[str, _Pending] = {}
        self._flusher: asyncio.Task | None = None

    async def replace(self, _id: str, document: dict) -> None:
        """As `replace_one({"_id": _id}, document, upsert=True)`."""
        pending = self._pending.setdefault(_id, _Pending())
        pending.replacement, pending.fields, pending.removed = {"_id": _id, **document}, {}, set()
        await self._wait(pending)

    async def update(self, _id: str, set_: dict | None = None, unset: tuple[str, ...] = (),
                     upsert: bool = False) -> None:
        """As `update_one({"_id": _id}, {"$set": set_, "$unset": unset}, upsert=upsert)`."""
        pending = self._pending.setdefault(_id, _Pending())
        set_ = set_ or {}
        if pending.replacement is not None:
            pending.replacement.update(set_)
            for name in unset:
                pending.replacement.pop(name, None)
        else:
            pending.fields.update(set_)
            pending.removed.difference_update(set_)
            for name in unset:
                pending.fields.pop(name, None)
                pending.removed.add(name)
            pending.upsert = pending.upsert or upsert
        await self._wait(pending)

    async def _wait(self, pending: _Pending) -> None:
        future = asyncio.get_running_loop().create_future()
        pending.waiters.append(future)
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.create_task(self._flush(), name=f"batched-writes:{self._col.name}")
        try:
            await future
        except asyncio.CancelledError:
            # A stopped sync (revocation, removal) must not write after it stopped: a write no one
            # waits for any more and not yet sent is dropped (the step is repeated, idempotently).
            if all(w.done() for w in pending.waiters):
                for _id, waiting in list(self._pending.items()):
                    if waiting is pending:
                        del self._pending[_id]
            raise

    async def _flush(self) -> None:
        batch: dict[str, _Pending] = {}
        try:
            while self._pending:
                ids = list(self._pending)[:self._chunk]
                batch = {_id: self._pending.pop(_id) for _id in ids}
                failed: dict[int, Exception] = {}
                try:
                    await self._col.bulk_write([p.operation(_id) for _id, p in batch.items()], ordered=False)
                except BulkWriteError as exc:
                    for error in exc.details.get("writeErrors", []):
                        failed[error["index"]] = BulkWriteError({**exc.details, "writeErrors": [error]})
                except Exception as exc:  # noqa: BLE001 - every waiting caller gets the store's error
                    failed = {i: exc for i in range(len(batch))}
                for i, pending in enumerate(batch.values()):
                    _resolve(pending.waiters, failed.get(i))
                batch = {}
        except BaseException:  # cancelled (shutdown): nobody may wait for a write that never comes
            stopped = RuntimeError("the store writer was stopped before this write was stored")
            for pending in [*batch.values(), *self._pending.values()]:
                _resolve(pending.waiters, stopped)
            self._pending.clear()
            raise


def _resolve(waiters: list[asyncio.Future], exc: Exception | None) -> None:
    for future in waiters:
        if future.done():  # its caller was cancelled; the write goes on for the others
            continue
        if exc is None:
            future.set_result(None)
        else:
            future.set_exception(exc)
