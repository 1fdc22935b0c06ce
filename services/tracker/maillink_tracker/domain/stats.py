"""Per-message statistics from everything recorded for the message: pure, and re-derived on every
read, so a rule that can only be judged in hindsight is applied to every hit it concerns.

The one hindsight rule is the burst: a scanner clicks every link within a second or two, and when
the first of those clicks arrives the others have not happened yet. Its event says "human" (all
the request could tell); the stats count it as machine once the burst is complete.
"""
from collections import Counter
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from .classify import Context, Hit, Past, Windows, all_links_in_burst, verdict_of


@dataclass(frozen=True)
class Recorded:
    kind: Literal["open", "click", "head"]
    at: datetime
    signals: tuple[str, ...] = ()
    link_index: int = 0
    network: str = ""


@dataclass(frozen=True)
class LinkStats:
    link_index: int
    human: int
    machine: int


@dataclass(frozen=True)
class MessageStats:
    first_human_open: datetime | None
    last_human_open: datetime | None
    opens_human: int
    opens_machine: int
    clicks: tuple[LinkStats, ...]
    first_human_click: tuple[datetime, int] | None
    head_requests: int
    signals: dict[str, int]


def final_signals(item: Recorded, everything: list[Recorded], link_count: int, windows: Windows) -> tuple[str, ...]:
    if item.kind != "click" or "all_links_in_burst" in item.signals:
        return item.signals
    hit = Hit("click", "GET", "", None, item.network, item.at, item.link_index)
    ctx = Context(link_count=link_count, history=tuple(Past(r.kind, r.at, r.link_index, r.network)
                                                       for r in everything if r is not item))
    burst = all_links_in_burst(hit, ctx, windows)
    return item.signals + (burst,) if burst else item.signals


def summarise(recorded: list[Recorded], link_indexes: list[int], windows: Windows) -> MessageStats:
    ordered = sorted(recorded, key=lambda r: r.at)
    human_opens: list[datetime] = []
    opens_machine = 0
    per_link: dict[int, list[int]] = {i: [0, 0] for i in link_indexes}
    first_click: tuple[datetime, int] | None = None
    signal_counts: Counter[str] = Counter()
    heads = 0
    for item in ordered:
        if item.kind == "head":
            heads += 1
            continue
        signals = final_signals(item, ordered, len(link_indexes), windows)
        signal_counts.update(signals)
        human = verdict_of(signals) == "human"
        if item.kind == "open":
            if human:
                human_opens.append(item.at)
            else:
                opens_machine += 1
        else:
            counts = per_link.setdefault(item.link_index, [0, 0])
            counts[0 if human else 1] += 1
            if human and first_click is None:
                first_click = (item.at, item.link_index)
    return MessageStats(
        first_human_open=human_opens[0] if human_opens else None,
        last_human_open=human_opens[-1] if human_opens else None,
        opens_human=len(human_opens), opens_machine=opens_machine,
        clicks=tuple(LinkStats(i, h, m) for i, (h, m) in sorted(per_link.items())),
        first_human_click=first_click, head_requests=heads, signals=dict(signal_counts))
