"""``GET /metrics``: the engine's statistics in Prometheus' text format.

A collector of our own reads one ``Cache.stats()`` snapshot at every scrape
(nothing is counted twice: the engine's counters are the only counters), and
prometheus-client writes the exposition format.
"""

from __future__ import annotations

from typing import Iterator

import falcon
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, InfoMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.registry import Collector

from ..config import Settings
from ..engine import Cache

PREFIX = "cachegrid"


class CacheCollector(Collector):
    def __init__(self, cache: Cache, settings: Settings) -> None:
        self.cache = cache
        self.settings = settings

    def collect(self) -> Iterator[Metric]:
        stats = self.cache.stats()
        for name, documentation in (
            ("hits", "Reads that found a live entry."),
            ("misses", "Reads that found nothing (or an expired entry)."),
            ("sets", "Writes stored (set, batch items, incr/decr)."),
            ("deletes", "Entries removed by delete."),
            ("evictions", "Live entries evicted to make room."),
            ("expired", "Entries reclaimed because their TTL ran out."),
        ):
            yield CounterMetricFamily(f"{PREFIX}_{name}", documentation, value=stats[name])
        rejected = CounterMetricFamily(
            f"{PREFIX}_rejected_writes", "Writes refused by a limit.", labels=["reason"]
        )
        rejected.add_metric(["too_large"], stats["rejected_too_large"])
        rejected.add_metric(["full"], stats["rejected_full"])
        yield rejected
        for name, key, documentation in (
            ("items", "current_size", "Entries held now."),
            ("max_items", "max_size", "The item limit."),
            ("memory_bytes", "memory_usage_bytes", "Bytes charged for the entries held now."),
            ("max_memory_bytes", "max_memory_bytes", "The memory limit."),
            ("hit_ratio", "hit_ratio", "hits / (hits + misses) since start."),
            ("uptime_seconds", "uptime_seconds", "Seconds since the engine started."),
        ):
            yield GaugeMetricFamily(f"{PREFIX}_{name}", documentation, value=stats[key])
        yield InfoMetricFamily(
            PREFIX, "This node.", value={"node_id": self.settings.node_id, "policy": stats["policy"]}
        )


class Metrics:
    def __init__(self, cache: Cache, settings: Settings) -> None:
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(CacheCollector(cache, settings))

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        resp.content_type = CONTENT_TYPE_LATEST
        resp.data = generate_latest(self.registry)
