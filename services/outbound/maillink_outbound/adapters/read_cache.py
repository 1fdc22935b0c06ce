"""A short-lived read cache for what every send reads and rarely changes (the account, the template,
the signature, CRM records). The store behind it serialises every operation (FerretDB on SQLite),
so five reads per message were most of a send's cost; a few seconds of staleness in a smart field
or a signature is harmless, and a changed account gets a new pool by its version anyway."""
import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any


class ReadCache:
    def __init__(self, ttl_s: float, max_entries: int = 10_000) -> None:
        self.ttl_s, self.max_entries = ttl_s, max_entries
        self._entries: dict[tuple, tuple[float, Any]] = {}
        # Reads under way: the batches build side by side, and when an entry expires every one of them
        # would read it again at once.
        self._loading: dict[tuple, asyncio.Future] = {}

    async def get(self, key: tuple, load: Callable[[], Awaitable[Any]]) -> Any:
        if self.ttl_s <= 0:
            return await load()
        hit = self._entries.get(key)
        if hit and hit[0] > time.monotonic():
            return hit[1]
        if (pending := self._loading.get(key)) is not None:
            return await asyncio.shield(pending)
        future = asyncio.get_running_loop().create_future()
        self._loading[key] = future
        try:
            value = await load()
        except BaseException as exc:
            if isinstance(exc, asyncio.CancelledError):
                future.cancel()
            else:
                future.set_exception(exc)
                future.exception()   # retrieved: a failure nobody waited for is not an "unretrieved" warning
            raise
        finally:
            del self._loading[key]
        future.set_result(value)
        if len(self._entries) >= self.max_entries:
            self._entries.clear()
        self._entries[key] = (time.monotonic() + self.ttl_s, value)
        return value
