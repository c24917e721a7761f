"""``POST /test/load``: the engine's speed, measured in-process.

It runs ``count`` operations against a *scratch* engine built with the same
eviction policy and limits as the real one, so user data is never evicted,
expired or counted in /stats by it, and the real engine's lock is never
taken. Operations run one after another in the request's thread; each one is
timed with ``perf_counter_ns`` and the answer gives ops/s and latency
percentiles in microseconds. It measures the engine, not HTTP: the CLI's
``loadtest`` measures the whole path.

Keys are drawn from a keyspace of min(count, 10,000) keys; ``get`` runs first
fill that keyspace (untimed), ``mixed`` is 80% get / 20% set.

The run is bounded: the server may be a single-threaded event loop, where
the request stalls every other client while it runs. ``num_operations`` is
at most ``loadtest_max_operations`` (5,000 by default, the largest run the
product description shows: about 10 ms at about 2 microseconds an operation,
the filling included); past it the answer is 400 naming the limit. Running
larger tests in the background would measure the engine while it competes
with the requests for the interpreter, so the bound is the whole answer.
"""

from __future__ import annotations

import random
import time
from typing import Any

import falcon

from ..config import Settings
from ..percentile import percentile
from .body import int_param
from .cache_factory import build_cache
from .errors import ApiError
from .resources import send_json

OPERATION_TYPES = ("get", "set", "mixed")
DEFAULT_OPERATIONS = 1000
KEYSPACE = 10_000
VALUE = b'{"name":"Alice","age":30}'


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


class LoadTest:
    """``POST /test/load?num_operations=&operation_type=get|set|mixed``."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        if not self.settings.loadtest_enabled:
            raise ApiError(403, "load_test_disabled", "the load test is switched off (loadtest_enabled = false)")
        limit = self.settings.loadtest_max_operations
        count = int_param(req, "num_operations", min(DEFAULT_OPERATIONS, limit), 1)
        if count > limit:
            raise ApiError(
                400,
                "invalid_parameter",
                f"num_operations must be at most {limit} (loadtest_max_operations), not {count}",
                limit=limit,
                limit_name="loadtest_max_operations",
            )
        kind = req.get_param("operation_type") or "mixed"
        if kind not in OPERATION_TYPES:
            raise ApiError(
                400, "invalid_parameter", f"operation_type must be one of {', '.join(OPERATION_TYPES)}, not {kind!r}"
            )
        send_json(resp, run_load_test(self.settings, count, kind))
