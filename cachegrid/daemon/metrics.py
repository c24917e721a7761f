"""``GET /metrics``: the engine's statistics in Prometheus' text format.

A collector of our own reads one ``Cache.stats()`` snapshot at every scrape
(nothing is counted twice: the engine's counters are the only counters), and
prometheus-client writes the exposition format.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import falcon
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, InfoMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.registry import Collector

from ..config import Settings
from ..engine import Cache
from ..engine.snapshot import Snapshotter
from .compression import InflatedValues
from .heap import HeapTrimmer

PREFIX = "cachegrid"


class CacheCollector(Collector):
    def __init__(
        self,
        cache: Cache,
        settings: Settings,
        snapshotter: Snapshotter | None = None,
        trimmer: HeapTrimmer | None = None,
    ) -> None:
        self.cache = cache
        self.settings = settings
        self.snapshotter = snapshotter
        self.trimmer = trimmer

    def collect(self) -> Iterator[Metric]:
        stats = self.cache.stats()
        for name, documentation in (
            ("hits", "Reads that found a live entry."),
            ("misses", "Reads that found nothing (or an expired entry)."),
            ("sets", "Writes stored (set, batch items, incr/decr)."),
            ("deletes", "Entries removed by delete."),
            ("evictions", "Live entries evicted to make room."),
            ("expired", "Entries reclaimed because their TTL ran out."),
            ("tag_invalidations", "Tags invalidated (one per name asked for)."),
            ("tag_invalidated_entries", "Entries dropped because a tag of theirs was invalidated."),
        ):
            yield CounterMetricFamily(f"{PREFIX}_{name}", documentation, value=stats[name])
        rejected = CounterMetricFamily(f"{PREFIX}_rejected_writes", "Writes refused by a limit.", labels=["reason"])
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
            ("tags", "tags", "Distinct tags in use now."),
            ("compressed_items", "compressed_entries", "Entries held compressed now."),
            ("compressed_original_bytes", "compressed_original_bytes", "Their values' bytes uncompressed."),
            ("compressed_stored_bytes", "compressed_stored_bytes", "Their values' bytes as held."),
            ("compression_saved_bytes", "compressed_saved_bytes", "Bytes compression saves now."),
            ("compression_ratio", "compression_ratio", "Held / original bytes of the entries held compressed."),
        ):
            yield GaugeMetricFamily(f"{PREFIX}_{name}", documentation, value=stats[key])
        yield from lease_metrics(stats)
        yield InfoMetricFamily(
            PREFIX, "This node.", value={"node_id": self.settings.node_id, "policy": stats["policy"]}
        )
        if self.snapshotter is not None:
            yield from snapshot_metrics(self.snapshotter.status())
        if self.trimmer is not None and self.trimmer.enabled:
            yield from trim_metrics(self.trimmer)


def lease_metrics(stats: dict[str, Any]) -> Iterator[Metric]:
    """The counters of leases, locks and stale reads (docs/stampedes.md), as metrics."""
    leases = CounterMetricFamily(
        f"{PREFIX}_leases", "Leases and locks since start, by what became of them.", labels=["outcome"]
    )
    for outcome in ("granted", "refused", "filled", "released", "expired"):
        leases.add_metric([outcome], stats[f"leases_{outcome}"])
    yield leases
    yield CounterMetricFamily(f"{PREFIX}_stale_hits", "Reads answered with a stale value.", value=stats["stale_hits"])
    yield CounterMetricFamily(f"{PREFIX}_marked_stale", "Keys marked stale.", value=stats["marked_stale"])
    for name, key, documentation in (
        ("leases_held", "leases_held", "Leases and locks held now."),
        ("max_leases", "max_leases", "The lease limit."),
        ("lease_memory_bytes", "lease_memory_bytes", "Bytes charged for the leases held now."),
    ):
        yield GaugeMetricFamily(f"{PREFIX}_{name}", documentation, value=stats[key])


def snapshot_metrics(status: dict[str, Any]) -> Iterator[Metric]:
    """The fields of GET /admin/snapshot, as metrics."""
    written = CounterMetricFamily(f"{PREFIX}_snapshots", "Snapshots written since start, by result.", labels=["result"])
    written.add_metric(["ok"], status["written"])
    written.add_metric(["failed"], status["failed"])
    yield written
    yield GaugeMetricFamily(
        f"{PREFIX}_snapshot_running", "1 while a snapshot is being written.", value=int(status["running"])
    )
    last = status["last"]
    yield GaugeMetricFamily(
        f"{PREFIX}_snapshot_last_success",
        "1 if the last snapshot succeeded, 0 if not (or none yet).",
        value=int(last["result"] == "ok"),
    )
    for name, key, documentation in (
        ("snapshot_last_finished_timestamp_seconds", "finished_at", "When the last snapshot ended (Unix time)."),
        ("snapshot_last_duration_seconds", "duration_seconds", "How long the last snapshot took."),
        ("snapshot_last_entries", "entries", "Entries in the last snapshot written."),
        ("snapshot_last_bytes", "bytes", "Size of the last snapshot written."),
    ):
        if last[key] is not None:
            yield GaugeMetricFamily(f"{PREFIX}_{name}", documentation, value=last[key])
    yield GaugeMetricFamily(
        f"{PREFIX}_snapshot_loaded_entries",
        "Entries loaded from the snapshot at start.",
        value=status["loaded"]["entries"],
    )


def trim_metrics(trimmer: HeapTrimmer) -> Iterator[Metric]:
    """The heap trimmer's counters (daemon/heap.py), as metrics."""
    yield CounterMetricFamily(
        f"{PREFIX}_memory_trims", "Times the heap's free memory was given back to the OS.", value=trimmer.trims
    )
    yield CounterMetricFamily(
        f"{PREFIX}_memory_trim_released_bytes", "RSS given back to the OS by those trims.", value=trimmer.released_bytes
    )


class InflatedCollector(Collector):
    """The inflated values kept for identity reads (compression.py ``InflatedValues``)."""

    def __init__(self, inflated: InflatedValues) -> None:
        self.inflated = inflated

    def collect(self) -> Iterator[Metric]:
        stats = self.inflated.stats()
        for name, key, documentation in (
            ("inflated_cache_bytes", "inflated_cache_bytes", "Bytes of values kept inflated (not in memory_bytes)."),
            ("inflated_cache_items", "inflated_cache_entries", "Values kept inflated now."),
            ("inflated_cache_max_bytes", "inflated_cache_max_bytes", "The bound of the inflated values kept."),
        ):
            yield GaugeMetricFamily(f"{PREFIX}_{name}", documentation, value=stats[key])
        for name, key, documentation in (
            ("inflated_cache_hits", "inflated_cache_hits", "Identity reads answered with a kept inflation."),
            ("inflated_cache_misses", "inflated_cache_misses", "Identity reads that inflated the value."),
        ):
            yield CounterMetricFamily(f"{PREFIX}_{name}", documentation, value=stats[key])


class Metrics:
    def __init__(
        self,
        cache: Cache,
        settings: Settings,
        snapshotter: Snapshotter | None = None,
        trimmer: HeapTrimmer | None = None,
    ) -> None:
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(CacheCollector(cache, settings, snapshotter, trimmer))

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        resp.content_type = CONTENT_TYPE_LATEST
        resp.data = generate_latest(self.registry)
