"""A short-lived read cache for what every send reads and rarely changes (the account, the template,
the signature, CRM records). The store behind it serialises every operation (FerretDB on SQLite),
so five reads per message were most of a send's cost; a few seconds of staleness in a smart field
or a signature is harmless, and a changed account gets a new pool by its version anyway."""
import time
from collections.abc import Awaitable, Callable
from typing import Any


class ReadCache:
    def __init__(self, ttl_s: float, max_entries: int = 10_000) -> None:
        self.ttl_s, self.max_entries = ttl_s, max_entries
        self._entries: dict[tuple, tuple[float, Any]] = {}

    async def get(self, key: tuple, load: Callable[[], Awaitable[Any]]) -> Any:
        if self.ttl_s <= 0:
            return await load()
        now = time.monotonic()
        hit = self._entries.get(key)
        if hit and hit[0] > now:
            return hit[1]
        value = await load()
        if len(self._entries) >= self.max_entries:
            self._entries.clear()
        self._entries[key] = (now + self.ttl_s, value)
        return value
