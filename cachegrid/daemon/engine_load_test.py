"""The built-in load test (``POST /test/load``): the engine's speed, in-process.

It runs ``count`` operations against a *scratch* engine built with the same
eviction policy and limits as the real one, so user data is never evicted,
expired or counted in /stats by it. Operations run one after another in the
request's thread; each one is timed with ``perf_counter_ns`` and the answer
gives ops/s and latency percentiles in microseconds. It measures the engine,
not HTTP: the CLI's ``loadtest`` measures the whole path.

Keys are drawn from a keyspace of min(count, 10,000) keys; ``get`` runs first
fill that keyspace (untimed), ``mixed`` is 80% get / 20% set.
"""

from __future__ import annotations

import random
import time
from typing import Any

from ..config import Settings
from .cache_factory import build_cache

OPERATION_TYPES = ("get", "set", "mixed")
KEYSPACE = 10_000
VALUE = b'{"name":"Alice","age":30}'


def percentile(sorted_values: list[int], fraction: float) -> int:
    """Nearest-rank percentile of a sorted list."""
    index = min(len(sorted_values) - 1, max(0, round(fraction * len(sorted_values) + 0.5) - 1))
    return sorted_values[index]


def run_load_test(settings: Settings, count: int, kind: str, seed: int | None = None) -> dict[str, Any]:
    scratch = build_cache(settings)  # its sweeper never runs: nothing lives long enough
    rng = random.Random(seed)
    keys = [f"loadtest:{i}" for i in range(min(count, KEYSPACE))]
    if kind != "set":
        for key in keys:
            try:
                scratch.set(key, VALUE)
            except Exception:  # noeviction with a small max_size: the rest are misses
                break
    get, set_, clock = scratch.get, scratch.set, time.perf_counter_ns
    latencies = [0] * count
    errors = 0
    started = clock()
    for i in range(count):
        key = keys[rng.randrange(len(keys))]
        do_get = kind == "get" or (kind == "mixed" and rng.random() < 0.8)
        before = clock()
        try:
            if do_get:
                get(key)
            else:
                set_(key, VALUE)
        except Exception:  # a full noeviction cache refuses; count it, go on
            errors += 1
        latencies[i] = clock() - before
    elapsed = (clock() - started) / 1e9
    latencies.sort()
    return {
        "operation_type": kind,
        "num_operations": count,
        "errors": errors,
        "policy": settings.eviction_policy,
        "duration_seconds": round(elapsed, 6),
        "ops_per_second": round(count / elapsed, 1) if elapsed > 0 else None,
        "latency_us": {
            name: round(percentile(latencies, fraction) / 1000, 3)
            for name, fraction in (("p50", 0.50), ("p95", 0.95), ("p99", 0.99), ("max", 1.0))
        },
    }
