"""Consumer lag, as a gauge refreshed at every scrape of /metrics: for each consumer group of this
process and each topic, the records on its assigned partitions not yet handed to the handler
(the partition's high watermark, as of the last fetch, minus the consumer's position).

Each partition is assigned to one process of a group, so Prometheus' `sum by (group, topic)` over
the pods is the group's lag; the matcher's HPA scales on it (deploy/k8s/matcher.yaml). A partition
whose high watermark is not known yet (nothing fetched since the assignment) is left out rather
than guessed."""
import asyncio
from collections.abc import Iterable

import structlog
from prometheus_client import Gauge

log = structlog.get_logger()
LAG = Gauge("maillink_consumer_lag", "Records on this process's assigned partitions not yet consumed",
            ["group", "topic"])
# Consumers made outside FastStream (e.g. ingest's account-assignment consumer): (group, consumer).
_extra: list[tuple[str, object]] = []


def watch(group: str, consumer) -> None:
    """Report the lag of an aiokafka consumer the broker does not own."""
    _extra.append((group, consumer))


def unwatch(consumer) -> None:
    _extra[:] = [(g, c) for g, c in _extra if c is not consumer]


def totals(readings: Iterable[tuple[str, str, int | None, int]]) -> dict[tuple[str, str], int]:
    """(group, topic, high watermark or None, position) per partition -> lag per (group, topic)."""
    out: dict[tuple[str, str], int] = {}
    for group, topic, highwater, position in readings:
        if highwater is None:
            continue
        out[(group, topic)] = out.get((group, topic), 0) + max(highwater - position, 0)
    return out


def _consumers(broker) -> list[tuple[str, object]]:
    found = []
    for subscriber in broker.subscribers:
        group = getattr(subscriber, "group_id", None)
        members = getattr(subscriber, "consumer_subgroup", None) or [getattr(subscriber, "consumer", None)]
        found += [(group, c) for c in members if c is not None and group]
    return found + list(_extra)


async def _readings(group: str, consumer) -> list[tuple[str, str, int | None, int]]:
    out = []
    for tp in consumer.assignment():
        highwater = consumer.highwater(tp)
        if highwater is None:
            continue
        # position() can wait for the group coordinator; a scrape must not hang on it.
        position = await asyncio.wait_for(consumer.position(tp), timeout=1)
        out.append((group, tp.topic, highwater, position))
    return out


async def refresh(broker) -> None:
    readings = []
    for group, consumer in _consumers(broker):
        try:
            readings += await _readings(group, consumer)
        except Exception as exc:  # noqa: BLE001 - a scrape reports what it can; rebalances come and go
            log.debug("consumer_lag_unavailable", group=group, error=repr(exc))
    lags = totals(readings)
    LAG.clear()  # partitions revoked since the last scrape must not linger
    for (group, topic), value in lags.items():
        LAG.labels(group, topic).set(value)
