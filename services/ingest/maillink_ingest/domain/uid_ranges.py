"""Sets of IMAP UIDs stored compactly as sorted, merged [low, high] ranges. Pure.

A folder of 100,000 messages delivered in order is one range; gaps (a poison message, an
expunge) cost one range each. That keeps "what was delivered" small enough to live in the
folder's state document and to compare with the server's UID set on every reconciliation.
"""
from collections.abc import Iterable

Ranges = list[list[int]]


def from_uids(uids: Iterable[int]) -> Ranges:
    out: Ranges = []
    for uid in sorted(set(uids)):
        if out and uid == out[-1][1] + 1:
            out[-1][1] = uid
        else:
            out.append([uid, uid])
    return out


def add(ranges: Ranges, uids: Iterable[int]) -> Ranges:
    # Merges intervals rather than expanding them: a big folder stays a few ranges, cheap per batch.
    merged: Ranges = []
    for low, high in sorted([*map(list, ranges), *from_uids(uids)]):
        if merged and low <= merged[-1][1] + 1:
            merged[-1][1] = max(merged[-1][1], high)
        else:
            merged.append([low, high])
    return merged


def remove(ranges: Ranges, uids: Iterable[int]) -> Ranges:
    gone = set(uids)
    return from_uids(u for u in to_uids(ranges) if u not in gone)


def to_uids(ranges: Ranges) -> list[int]:
    return [u for low, high in ranges for u in range(low, high + 1)]


def contains(ranges: Ranges, uid: int) -> bool:
    return any(low <= uid <= high for low, high in ranges)


def count(ranges: Ranges) -> int:
    return sum(high - low + 1 for low, high in ranges)


def format(ranges: Ranges) -> str:
    """IMAP sequence-set syntax: [[1, 3], [7, 7]] -> '1:3,7'."""
    return ",".join(f"{low}:{high}" if low != high else str(low) for low, high in ranges)


def parse(text: str) -> Ranges:
    out: Ranges = []
    for part in filter(None, text.split(",")):
        low, _, high = part.partition(":")
        out.append([int(low), int(high or low)])
    return add([], []) if not out else add(out, [])
