"""What a load test measured: each worker's ``WorkerResult``, the latency
histogram they fill, and the ``Report`` merged from them.

Latencies go into a log-linear histogram of microseconds (exact below
``EXACT_US``, then 11 significant bits, i.e. within 0.1 %), so memory stays
bounded on a long ``--duration`` run and merging the processes' samples is
adding counts. The maximum is kept exactly. Percentiles are nearest-rank
(``cachegrid.percentile``), like every other measurement of CacheGrid.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from ..percentile import histogram_percentiles
from .plan import Plan, Target

EXACT_US = 2048  # the histogram is exact below this many microseconds


def bucket(us: int) -> int:
    """The histogram bucket of ``us``: exact below EXACT_US, then rounded down
    to 11 significant bits."""
    if us < EXACT_US:
        return us
    shift = us.bit_length() - 11
    return us >> shift << shift


@dataclass
class WorkerResult:
    requests: int = 0
    gets: int = 0
    sets: int = 0
    keys: int = 0
    errors: Counter[str] = field(default_factory=Counter)
    histogram: Counter[int] = field(default_factory=Counter)
    max_us: int = 0
    started: float = 0.0
    finished: float = 0.0
    cpu_seconds: float = 0.0  # this worker's own CPU time (user + system) while it ran
    problem: str | None = None  # a worker that could not start says why


@dataclass
class Report:
    url: str
    requests: int
    gets: int
    sets: int
    keys: int
    errors: dict[str, int]
    duration: float
    cpu_seconds: float
    latency_ms: dict[str, float]
    concurrency: int
    processes: int
    batch: int
    pipeline: int

    def to_dict(self) -> dict[str, Any]:
        errors = sum(self.errors.values())
        return {
            "url": self.url,
            "requests": self.requests,
            "gets": self.gets,
            "sets": self.sets,
            "keys": self.keys,
            "errors": errors,
            "errors_by_kind": dict(sorted(self.errors.items())),
            "duration_seconds": round(self.duration, 6),
            "requests_per_second": round(self.requests / self.duration, 1) if self.duration > 0 else None,
            "keys_per_second": round(self.keys / self.duration, 1) if self.duration > 0 else None,
            "latency_ms": self.latency_ms,
            # The load generator's own CPU, in % of one core: near 100 % per
            # process, it (not the server) may be what limits the rate.
            "generator_cpu_percent": round(100 * self.cpu_seconds / self.duration, 1) if self.duration > 0 else None,
            "concurrency": self.concurrency,
            "processes": self.processes,
            "batch": self.batch,
            "pipeline": self.pipeline,
        }


def merge(target: Target, plan: Plan, connections: int, results: list[WorkerResult]) -> Report:
    """One report of the workers' results: counts added, histograms merged."""
    histogram: Counter[int] = Counter()
    errors: Counter[str] = Counter()
    for result in results:
        histogram.update(result.histogram)
        errors.update(result.errors)
    p50, p95, p99 = histogram_percentiles(histogram, (0.50, 0.95, 0.99))
    max_us = max((result.max_us for result in results), default=0)
    started = min((r.started for r in results if r.started), default=0.0)
    finished = max((r.finished for r in results if r.finished), default=0.0)
    return Report(
        url=target.url,
        requests=sum(r.requests for r in results),
        gets=sum(r.gets for r in results),
        sets=sum(r.sets for r in results),
        keys=sum(r.keys for r in results),
        errors=dict(errors),
        duration=max(finished - started, 0.0),
        cpu_seconds=sum(r.cpu_seconds for r in results),
        latency_ms={
            name: round(us / 1000, 3) for name, us in (("p50", p50), ("p95", p95), ("p99", p99), ("max", max_us))
        },
        concurrency=connections,
        processes=len(results),
        batch=plan.batch,
        pipeline=plan.pipeline,
    )
