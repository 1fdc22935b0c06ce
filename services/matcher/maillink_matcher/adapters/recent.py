"""Bounded memory for what a long-lived process learns as it goes (which bucket, hours-list and
index documents exist, how full this process filled a bucket): the most recently used entries,
in two generations. A generation that reaches `limit` becomes the old one, and the one before it
is forgotten; an entry used while in the old generation moves to the new one. So at most
2 x `limit` entries are kept, and what is forgotten is what went unused longest (an old hour's
bucket, an address not seen for a long time).

Forgetting is always safe where these are used: a document not known to exist is inserted, and
one that existed after all is added to instead (adapters/string_sets.py); a bucket whose fill
this process forgot counts as empty, as after a restart (adapters/record_views.py)."""
from collections.abc import Iterable

LIMIT = 500_000


class RecentSet:
    def __init__(self, members: Iterable = (), limit: int = LIMIT) -> None:
        self._limit = limit
        self._new: set = set()
        self._old: set = set()
        self.update(members)

    def __contains__(self, item) -> bool:
        if item in self._new:
            return True
        if item in self._old:
            self._old.discard(item)
            self.add(item)
            return True
        return False

    def add(self, item) -> None:
        self._new.add(item)
        if len(self._new) >= self._limit:
            self._old, self._new = self._new, set()

    def update(self, items: Iterable) -> None:
        for item in items:
            self.add(item)

    def __len__(self) -> int:
        return len(self._new) + len(self._old)


class RecentCounts:
    """The same for counts (key -> int; 0 for a key not kept)."""

    def __init__(self, limit: int = LIMIT) -> None:
        self._limit = limit
        self._new: dict = {}
        self._old: dict = {}

    def get(self, key, default: int = 0) -> int:
        if key in self._new:
            return self._new[key]
        if key in self._old:
            value = self._old.pop(key)
            self[key] = value
            return value
        return default

    def __contains__(self, key) -> bool:
        return key in self._new or key in self._old

    def __setitem__(self, key, value: int) -> None:
        self._old.pop(key, None)
        self._new[key] = value
        if len(self._new) >= self._limit:
            self._old, self._new = self._new, {}

    def __len__(self) -> int:
        return len(self._new) + len(self._old)
