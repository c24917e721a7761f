"""Benchmark of CacheGrid's engine against cachetools, printed as Markdown.

Run it on demand (it is not a test)::

    .venv/bin/python benchmarks/engine_bench.py [--quick] [--rounds N]
        [--entries N] [--output PATH]

What it measures
----------------
1. Single-thread throughput, per policy, in operations per second: get-hit,
   get-miss, set (replacing values over an existing keyspace), set-insert
   with eviction (every write is a new key into a full cache) and a mix of
   80% gets / 20% sets. The reference is the matching cachetools class behind
   one ``threading.Lock`` taken per operation, which is what a thread-safe
   cache built on cachetools looks like (CacheGrid takes its own lock per
   operation too).
2. Memory: bytes per entry beyond the key and the value, for ``--entries``
   entries, measured with tracemalloc for CacheGrid (``calibrate.measure``)
   and for the cachetools references (``measure_reference``, which mirrors
   it), together with the error of CacheGrid's own claim (``memory_usage``).
3. Lock hold while sweeping a million expired entries, and the worst single
   ``set`` while a million TTL keys are rewritten (which makes the sweeper
   rebuild the expiry heap), with the rebuild's longest lock hold.
4. Pauses with ``--pause-entries`` entries (default a million), per policy:
   the longest full ``gc.collect()``, one ``keys()`` call with a pattern that
   matches nothing (the first of a listing, and the longest of a whole
   listing), and ``clear()``: its longest lock hold and its whole time.

How
---
The machine it runs on is shared and noisy, so no absolute number is compared
with one from another run: every comparison is a ratio of two measurements
taken in the same run. The measurements of CacheGrid (A) and of the reference
(B) are interleaved, A, B, A, B, ... over ``--rounds`` rounds, so a slow spell
of the machine hits both alike, and the median of each side is reported, so
one disturbed round does not move the result. Both sides run the same loop
over the same pre-built lists of keys and values, with the methods bound to
local variables, so the loop overhead is identical and the difference is the
cache itself.
"""

from __future__ import annotations

import argparse
import bisect
import dataclasses
import datetime
import gc
import os
import platform
import random
import statistics
import sys
import threading
import time
import tracemalloc
from array import array
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import cachetools

from cachegrid.engine import DEFAULT_SCAN_COUNT, POLICIES, Cache
from cachegrid.engine.calibrate import measure
from cachegrid.percentile import percentile

REFERENCE_TTL = 3600.0
VALUE_SIZE = 25  # len(b'{"name":"Alice","age":30}')
GOAL_BYTES_PER_ENTRY = 150  # the project's goal for lru, beyond key + value

# The cachetools class each policy is compared with (see the footnotes).
REFERENCES: dict[str, Callable[[int], cachetools.Cache]] = {
    "lru": lambda maxsize: cachetools.LRUCache(maxsize),
    "lfu": lambda maxsize: cachetools.LFUCache(maxsize),
    "tinylfu": lambda maxsize: cachetools.LRUCache(maxsize),
    "ttl": lambda maxsize: cachetools.TTLCache(maxsize, ttl=REFERENCE_TTL),
    "size": lambda maxsize: cachetools.LRUCache(maxsize),
    "noeviction": lambda maxsize: cachetools.Cache(maxsize),
}
REFERENCE_NAMES = {
    "lru": "LRUCache",
    "lfu": "LFUCache",
    "tinylfu": "LRUCache",
    "ttl": f"TTLCache(ttl={REFERENCE_TTL:g})",
    "size": "LRUCache",
    "noeviction": "Cache",
}

# Footnote marks of the tables' policy cells (the notes are under the tables).
FOOTNOTES = {"size": " ¹", "ttl": " ³", "tinylfu": " ⁴"}


@dataclass(frozen=True)
class Settings:
    rounds: int
    keyspace: int  # keys of the throughput caches
    ops: int  # operations per timed measurement
    entries: int  # entries of the memory measurements
    sweep_entries: int  # entries of the lock-hold measurements
    pause_entries: int  # entries of the pause measurements


# -- helpers -------------------------------------------------------------------------


def value_for(i: int) -> bytes:
    """A distinct 25-byte value, shaped like a small JSON document."""
    return b'{"name":"%05d","age":30}' % (i % 100_000)


def policy_ttl(policy: str) -> float | None:
    # The ttl policy only differs from lru for entries that have a TTL, and
    # TTLCache gives every entry one: so its entries get one here too.
    return REFERENCE_TTL if policy == "ttl" else None


def new_cachegrid(policy: str, max_size: int) -> Cache:
    # max_memory out of the way: only max_size decides eviction, as in cachetools.
    return Cache(policy, max_size=max_size, max_memory=1 << 62)


def fill_cachegrid(cache: Cache, keys: list[str], values: list[bytes], ttl: float | None) -> None:
    cache_set = cache.set
    for key, value in zip(keys, values):
        cache_set(key, value, ttl)


def fill_reference(ref: cachetools.Cache, keys: list[str], values: list[bytes]) -> None:
    for key, value in zip(keys, values):
        ref[key] = value


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def table(header: list[str], rows: list[list[str]], align: str) -> str:
    """A Markdown table; ``align`` has one of ``l``/``r`` per column."""
    rule = ["---:" if a == "r" else ":---" for a in align]
    lines = ["| " + " | ".join(header) + " |", "| " + " | ".join(rule) + " |"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


# -- 1. throughput -------------------------------------------------------------------
#
# One pair of loops per operation. The CacheGrid loop and the reference loop
# differ only in the cache call: CacheGrid takes its lock inside get/set, the
# reference takes the one lock around its call.


def cg_get(cache: Cache, ops: list[Any], ttl: float | None) -> float:
    get = cache.get
    started = time.perf_counter()
    for key in ops:
        get(key)
    return time.perf_counter() - started


def ref_get(ref: cachetools.Cache, lock: threading.Lock, ops: list[Any]) -> float:
    get = ref.get
    started = time.perf_counter()
    for key in ops:
        with lock:
            get(key)
    return time.perf_counter() - started


def cg_set(cache: Cache, ops: list[Any], ttl: float | None) -> float:
    cache_set = cache.set
    started = time.perf_counter()
    for key, value in ops:
        cache_set(key, value, ttl)
    return time.perf_counter() - started


def ref_set(ref: cachetools.Cache, lock: threading.Lock, ops: list[Any]) -> float:
    started = time.perf_counter()
    for key, value in ops:
        with lock:
            ref[key] = value
    return time.perf_counter() - started


def cg_mixed(cache: Cache, ops: list[Any], ttl: float | None) -> float:
    get, cache_set = cache.get, cache.set
    started = time.perf_counter()
    for key, value in ops:
        if value is None:
            get(key)
        else:
            cache_set(key, value, ttl)
    return time.perf_counter() - started


def ref_mixed(ref: cachetools.Cache, lock: threading.Lock, ops: list[Any]) -> float:
    get = ref.get
    started = time.perf_counter()
    for key, value in ops:
        if value is None:
            with lock:
                get(key)
        else:
            with lock:
                ref[key] = value
    return time.perf_counter() - started


@dataclass
class Workload:
    """One throughput row: one list of operations per round, and the two loops."""

    name: str
    rounds: list[list[Any]]
    cg_loop: Callable[[Cache, list[Any], float | None], float]
    ref_loop: Callable[[cachetools.Cache, threading.Lock, list[Any]], float]
    # Whether it needs caches of its own, filled afresh; the others share one
    # pair of caches per policy, which they leave holding the same keys.
    fresh: bool = False


def workloads(settings: Settings, keys: list[str]) -> list[Workload]:
    rng = random.Random(1234)  # the same operations in every run
    n, ops, rounds = settings.keyspace, settings.ops, settings.rounds
    # Fresh value objects for the writes, distinct from the stored ones.
    new_values = [value_for(i + 1) for i in range(ops)]
    misses = [f"miss:{i:06d}" for i in range(n)]

    hits = rng.choices(keys, k=ops)
    miss_ops = rng.choices(misses, k=ops)
    set_ops = list(zip(rng.choices(keys, k=ops), new_values))
    mixed_ops = [(key, new_values[i] if rng.random() < 0.2 else None) for i, key in enumerate(rng.choices(keys, k=ops))]

    # Insertion with eviction: a cycle of 2n keys into a cache of n, filled
    # with the first n. Operation j of the run writes cycle[(n + j) % 2n], a
    # key written 2n writes ago and so evicted n writes ago (all policies
    # degenerate to FIFO here: no entry is ever read or rewritten). The new
    # keys are as long as the others: the size policy must see equal sizes.
    cycle = keys + [f"user:{i:06d}" for i in range(n, 2 * n)]
    evict_rounds = []
    for r in range(rounds):
        start = n + r * ops
        evict_rounds.append([(cycle[(start + j) % (2 * n)], new_values[j]) for j in range(ops)])

    return [
        Workload("get (hit)", [hits] * rounds, cg_get, ref_get),
        Workload("get (miss)", [miss_ops] * rounds, cg_get, ref_get),
        Workload("set (replace)", [set_ops] * rounds, cg_set, ref_set),
        Workload("set (insert + evict)", evict_rounds, cg_set, ref_set, fresh=True),
        Workload("mixed 80% get / 20% set", [mixed_ops] * rounds, cg_mixed, ref_mixed),
    ]


def bench_throughput(settings: Settings, log: Callable[[str], None]) -> str:
    n = settings.keyspace
    keys = [f"user:{i:06d}" for i in range(n)]
    values = [value_for(i) for i in range(n)]
    loads = workloads(settings, keys)

    def filled_pair(policy: str, ttl: float | None) -> tuple[Cache, cachetools.Cache]:
        cache, ref = new_cachegrid(policy, n), REFERENCES[policy](n)
        fill_cachegrid(cache, keys, values, ttl)
        fill_reference(ref, keys, values)
        return cache, ref

    rows = []
    for policy in POLICIES:
        ttl = policy_ttl(policy)
        shared = filled_pair(policy, ttl)
        for load in loads:
            if policy == "noeviction" and load.fresh:
                rows.append([policy, load.name, "–", "–", "n/a ²"])
                continue
            cache, ref = filled_pair(policy, ttl) if load.fresh else shared
            lock = threading.Lock()
            gc.collect()  # start without the garbage of the previous row
            cg_rates, ref_rates = [], []
            for ops in load.rounds:  # A, B, A, B, ...
                cg_rates.append(len(ops) / load.cg_loop(cache, ops, ttl))
                ref_rates.append(len(ops) / load.ref_loop(ref, lock, ops))
            cg_rate, ref_rate = statistics.median(cg_rates), statistics.median(ref_rates)
            ratio = cg_rate / ref_rate
            label = policy + FOOTNOTES.get(policy, "")
            rows.append([label, load.name, f"{cg_rate:,.0f}", f"{ref_rate:,.0f}", f"{ratio:.2f}"])
            log(f"throughput {policy:<10} {load.name:<24} {cg_rate:>12,.0f} {ref_rate:>12,.0f}")
            del cache, ref
        del shared
    header = ["policy", "operation", "CacheGrid ops/s", "reference ops/s", "ratio"]
    return table(header, rows, "llrrr")


def bench_policies(settings: Settings, log: Callable[[str], None]) -> str:
    """tinylfu against lru, both CacheGrid, interleaved: what W-TinyLFU's
    sketch and three lists cost per operation over one recency list."""
    n = settings.keyspace
    keys = [f"user:{i:06d}" for i in range(n)]
    values = [value_for(i) for i in range(n)]
    rows = []
    shared: dict[str, Cache] = {}
    for load in workloads(settings, keys):
        caches = {}
        for policy in ("tinylfu", "lru"):
            if load.fresh or policy not in shared:
                caches[policy] = new_cachegrid(policy, n)
                fill_cachegrid(caches[policy], keys, values, None)
                if not load.fresh:
                    shared[policy] = caches[policy]
            else:
                caches[policy] = shared[policy]
        gc.collect()
        rates: dict[str, list[float]] = {"tinylfu": [], "lru": []}
        for ops in load.rounds:  # A, B, A, B, ...
            for policy in rates:
                rates[policy].append(len(ops) / load.cg_loop(caches[policy], ops, None))
        tinylfu, lru = statistics.median(rates["tinylfu"]), statistics.median(rates["lru"])
        rows.append([load.name, f"{tinylfu:,.0f}", f"{lru:,.0f}", f"{tinylfu / lru:.2f}"])
        log(f"policies {load.name:<24} tinylfu {tinylfu:>12,.0f} lru {lru:>12,.0f}")
    return table(["operation", "tinylfu ops/s", "lru ops/s", "tinylfu / lru"], rows, "lrrr")


# -- 2. memory -----------------------------------------------------------------------

# Run in a fresh interpreter per row: RSS after minus RSS before filling, per
# entry. Batches of 100 items through set_many, as the daemon's batch set.
_RSS_CHILD = """
import sys
def rss():
    with open('/proc/self/statm') as statm:
        return int(statm.read().split()[1]) * 4096
kind, entries = sys.argv[1], int(sys.argv[2])
from cachegrid.engine import Cache
before = rss()
if kind == 'dict':
    held = {}
    for i in range(entries):
        held[f'user:{i:06d}'] = b'{"name":"Alice","age":%d}' % (i % 100)
else:
    held = Cache(kind, max_size=entries, max_memory=1 << 62)
    for start in range(0, entries, 100):
        held.set_many({f'user:{i:06d}': b'{"name":"Alice","age":%d}' % (i % 100)
                       for i in range(start, min(start + 100, entries))})
print((rss() - before) / entries)
"""


def bench_rss(settings: Settings, log: Callable[[str], None], entries: int = 100_000) -> str:
    """RSS per entry of the engine in a fresh process, against a bare dict of
    str -> bytes measured the same way in the same run."""
    import subprocess

    rows = []
    results: dict[str, list[float]] = {}
    for _ in range(3):  # interleaved, the median kept
        for kind in ("dict", "lru", "tinylfu"):
            out = subprocess.run(
                [sys.executable, "-c", _RSS_CHILD, kind, str(entries)], check=True, capture_output=True, text=True
            ).stdout
            results.setdefault(kind, []).append(float(out))
    reference = statistics.median(results["dict"])
    for kind in ("dict", "lru", "tinylfu"):
        median = statistics.median(results[kind])
        label = "bare dict str -> bytes" if kind == "dict" else kind
        rows.append([label, f"{median:.1f}", f"{median / reference:.2f}"])
        log(f"rss {kind:<8} {median:.1f} B/entry")
    return table(["what holds the entries", "RSS bytes per entry", "× bare dict"], rows, "lrr")


@dataclass(frozen=True)
class Footprint:
    entries: int
    traced_bytes: int
    payload_bytes: int  # len(key) + len(value), summed
    object_bytes: int  # sys.getsizeof(key) + sys.getsizeof(value), summed

    @property
    def beyond_payload(self) -> float:
        return (self.traced_bytes - self.payload_bytes) / self.entries

    @property
    def beyond_objects(self) -> float:
        return (self.traced_bytes - self.object_bytes) / self.entries


def key_value(i: int, value_size: int) -> tuple[str, bytes]:
    """The i-th key and value exactly as calibrate.measure makes them."""
    key = f"user:{i:06d}"
    value = (b"%06d" % i).ljust(value_size, b"x")[:value_size] if value_size else b""
    return key, value


def payload_sizes(entries: int, value_size: int) -> tuple[int, int]:
    """(sum of len(key) + len(value), sum of their sys.getsizeof)."""
    raw = objects = 0
    for i in range(entries):
        key, value = key_value(i, value_size)
        raw += len(key) + len(value)
        objects += sys.getsizeof(key) + sys.getsizeof(value)
    return raw, objects


def measure_reference(reference: Callable[[int], cachetools.Cache], entries: int, value_size: int) -> Footprint:
    """calibrate.measure for a cachetools cache: fill it under tracemalloc
    with the same keys and values, made inside the measured span."""
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        ref = reference(entries)
        raw = objects = 0
        for i in range(entries):
            key, value = key_value(i, value_size)
            ref[key] = value
            raw += len(key) + len(value)
            objects += sys.getsizeof(key) + sys.getsizeof(value)
        gc.collect()
        traced = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    del ref
    return Footprint(entries, traced, raw, objects)


def bench_memory(settings: Settings, log: Callable[[str], None]) -> str:
    entries = settings.entries
    raw, objects = payload_sizes(entries, VALUE_SIZE)
    rows = []
    cases = [(policy, False) for policy in POLICIES] + [("lru", True)]
    lru_overhead = None
    references: dict[str, Footprint] = {}  # size and lru share LRUCache, ttl and lru+TTL TTLCache
    for policy, with_ttl in cases:
        m = measure(policy, entries, VALUE_SIZE, with_ttl)
        assert m.payload_bytes == raw, "benchmarks/engine_bench.py no longer makes the keys of calibrate.measure"
        cg = Footprint(entries, m.traced_bytes, raw, objects)
        # lru with a TTL is compared with TTLCache: cachetools' LRU with expiry.
        ref_name = REFERENCE_NAMES["ttl" if with_ttl else policy]
        if ref_name not in references:
            references[ref_name] = measure_reference(REFERENCES["ttl" if with_ttl else policy], entries, VALUE_SIZE)
        ref = references[ref_name]
        if policy == "lru" and not with_ttl:
            lru_overhead = cg.beyond_payload
        rows.append(
            [
                policy,
                "3600 s" if with_ttl else "none",
                ref_name + FOOTNOTES.get(policy, "") if not with_ttl else ref_name,
                f"{cg.beyond_payload:.1f}",
                f"{ref.beyond_payload:.1f}",
                f"{cg.beyond_objects:.1f}",
                f"{ref.beyond_objects:.1f}",
                f"{m.claim_error:+.1%}",
            ]
        )
        log(f"memory {policy:<10} ttl={with_ttl!s:<5} {cg.beyond_payload:7.1f} {ref.beyond_payload:7.1f} B/entry")
    header = [
        "policy",
        "TTL",
        "reference",
        "CacheGrid B/entry beyond len()",
        "reference B/entry beyond len()",
        "CacheGrid B/entry beyond getsizeof()",
        "reference B/entry beyond getsizeof()",
        "CacheGrid claim error",
    ]
    result = table(header, rows, "lllrrrrr")
    assert lru_overhead is not None
    verdict = "met" if lru_overhead <= GOAL_BYTES_PER_ENTRY else "NOT met"
    result += (
        f"\n\nGoal: at most {GOAL_BYTES_PER_ENTRY} bytes per entry beyond key + value for lru: "
        f"{lru_overhead:.1f} measured (beyond len()), goal **{verdict}**."
    )
    return result


# -- 3. lock hold --------------------------------------------------------------------


class FakeClock:
    """A clock that only moves when told to."""

    def __init__(self, now: float = 1_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def bench_lock_hold(settings: Settings, log: Callable[[str], None]) -> str:
    n = settings.sweep_entries
    keys = [f"user:{i:07d}" for i in range(n)]
    values = [value_for(i) for i in range(n)]

    # The sweep: n entries expire at once and one sweep reclaims them all.
    clock = FakeClock()
    cache = Cache("lru", max_size=n, max_memory=1 << 62, clock=clock)
    fill_cachegrid(cache, keys, values, 10)
    clock.now += 11
    gc.collect()
    started = time.perf_counter()
    reclaimed = cache.sweep()
    sweep_seconds = time.perf_counter() - started
    max_hold = cache.last_sweep_max_hold
    log(f"sweep: {reclaimed:,} reclaimed in {sweep_seconds:.3f} s, longest hold {max_hold * 1e3:.2f} ms")
    del cache

    # The worst set: every key rewritten twice with a TTL on a fresh cache.
    # The real clock, so that every rewrite moves the expiry and leaves a
    # stale heap item behind; the heap passes 2n items during the second
    # rewrite and must be rebuilt. The sweeper runs, as in the daemon, so the
    # rebuild happens in its thread, holding the lock only to copy the heap
    # and to install the new one.
    cache = Cache("lru", max_size=n, max_memory=1 << 62, cleanup_interval=3600)
    cache.start()
    fill_cachegrid(cache, keys, values, REFERENCE_TTL)
    cache_set, perf_counter = cache.set, time.perf_counter
    durations = array("d")
    record = durations.append
    gc.collect()
    for _ in range(2):
        for key, value in zip(keys, values):
            started = perf_counter()
            cache_set(key, value, REFERENCE_TTL)
            record(perf_counter() - started)
    deadline = time.monotonic() + 60
    while cache.rebuilds == 0 and time.monotonic() < deadline:
        time.sleep(0.05)
    rebuilds, rebuild_hold = cache.rebuilds, cache.last_rebuild_max_hold
    cache.stop()
    del cache
    ordered = sorted(durations)
    worst, p999, median = ordered[-1], percentile(ordered, 0.999), percentile(ordered, 0.5)
    # How many sets stalled: the heap rebuild is one; others are the cyclic GC or the machine.
    stalls = len(ordered) - bisect.bisect_left(ordered, 0.010)
    log(f"sets: worst {worst * 1e3:.2f} ms, p99.9 {p999 * 1e6:.1f} µs")

    sweep_table = table(
        ["expired entries", "reclaimed", "sweep total (s)", "longest lock hold (ms)"],
        [[f"{n:,}", f"{reclaimed:,}", f"{sweep_seconds:.3f}", f"{max_hold * 1e3:.2f}"]],
        "rrrr",
    )
    set_table = table(
        [
            "sets timed",
            "worst set (ms)",
            "p99.9 (µs)",
            "median (µs)",
            "sets over 10 ms",
            "index rebuilds",
            "longest rebuild lock hold (ms)",
        ],
        [
            [
                f"{len(durations):,}",
                f"{worst * 1e3:.2f}",
                f"{p999 * 1e6:.1f}",
                f"{median * 1e6:.2f}",
                f"{stalls:,}",
                f"{rebuilds}",
                f"{rebuild_hold * 1e3:.2f}",
            ]
        ],
        "rrrrrrr",
    )
    return (
        f"Sweep of `Cache('lru', max_size={n:,})` after {n:,} entries with ttl=10 expired "
        f"(fake clock moved 11 s on):\n\n{sweep_table}\n\n"
        f"Every one of those {n:,} keys, on a fresh cache filled with ttl=3600, rewritten with "
        f"ttl=3600 twice in a row (real clock, the sweeper running as in the daemon), each `set` timed "
        f"with `perf_counter` (the timer's own cost included); the rebuild of the expiry index runs "
        f"in the sweeper thread:\n\n{set_table}"
    )


# -- 4. pauses -----------------------------------------------------------------------


class TimedLock:
    """A lock that records its longest hold: put in a Cache's place to see how
    long one of its calls keeps everyone else waiting."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._taken = 0.0
        self.longest = 0.0

    def acquire(self, blocking: bool = True, timeout: float = -1) -> bool:
        taken = self._lock.acquire(blocking, timeout)
        if taken:
            self._taken = time.perf_counter()
        return taken

    def release(self) -> None:
        self.longest = max(self.longest, time.perf_counter() - self._taken)
        self._lock.release()

    def locked(self) -> bool:
        return self._lock.locked()

    __enter__ = acquire

    def __exit__(self, *exc_info: object) -> None:
        self.release()


def longest_full_collection(rounds: int = 3) -> float:
    """The longest of ``rounds`` full collections, each after a write (which
    would make a tracked mapping tracked again)."""
    longest = 0.0
    for _ in range(rounds):
        started = time.perf_counter()
        gc.collect()
        longest = max(longest, time.perf_counter() - started)
    return longest


def bench_pauses(settings: Settings, log: Callable[[str], None]) -> str:
    n = settings.pause_entries
    rows = []
    for policy in POLICIES:
        cache = Cache(policy, max_size=n, max_memory=1 << 62)
        cache_set, cache_get = cache.set, cache.get
        for i in range(n):
            cache_set(f"user:{i:07d}", value_for(i))
        for i in range(0, n, 3):  # some uses, so lfu holds more than one count
            cache_get(f"user:{i:07d}")
        gc.collect()
        gc_pause = longest_full_collection()
        row = [policy, f"{n:,}", f"{gc_pause * 1e3:.1f}"]
        if policy == "lru":
            started = time.perf_counter()
            page = cache.keys("no-such-prefix:", limit=100)
            first_call = time.perf_counter() - started
            calls = [first_call]
            while page.cursor is not None:
                started = time.perf_counter()
                page = cache.keys("no-such-prefix:", limit=100, cursor=page.cursor)
                calls.append(time.perf_counter() - started)
            calls.sort()
            median_call, longest_call = percentile(calls, 0.5), calls[-1]
            timed = TimedLock()
            cache._lock = cache._sweeper._lock = timed  # type: ignore[assignment]
            started = time.perf_counter()
            cache.clear()
            clear_total = time.perf_counter() - started
            row += [
                f"{first_call * 1e3:.2f}",
                f"{median_call * 1e3:.2f} / {longest_call * 1e3:.2f} ({len(calls):,} calls)",
                f"{timed.longest * 1e3:.2f}",
                f"{clear_total * 1e3:.0f}",
            ]
            log(
                f"pauses lru: keys() first {first_call * 1e3:.2f} ms, median {median_call * 1e3:.2f} ms, "
                f"longest {longest_call * 1e3:.2f} ms; "
                f"clear() hold {timed.longest * 1e3:.2f} ms of {clear_total * 1e3:.0f} ms"
            )
        else:
            row += ["", "", "", ""]
        log(f"pauses {policy:<10} gc.collect() {gc_pause * 1e3:.1f} ms")
        rows.append(row)
        del cache, cache_set, cache_get
        gc.collect()
    header = [
        "policy",
        "entries",
        "longest full gc.collect() (ms)",
        "keys() first call (ms)",
        "keys() median / longest call (ms)",
        "clear() longest lock hold (ms)",
        "clear() total (ms)",
    ]
    return (
        f"Each cache filled with {n:,} entries (keys `user:0000123`, 25-byte values, no TTL, a third of "
        f"them read once). `keys()` lists with a prefix that matches nothing, so every call examines its "
        f"full budget of `scan_count` = {DEFAULT_SCAN_COUNT:,} slots; `clear()` is timed without the "
        f"sweeper running, so the caller frees the old entries itself, in slices, without the lock.\n\n"
        + table(header, rows, "lrrrrrr")
        + "\n\nGoals: a full collection at most 10 ms, one `keys()` call at most 2 ms."
    )


# -- the document --------------------------------------------------------------------


def machine() -> str:
    now = datetime.datetime.now().astimezone()
    return "\n".join(
        [
            f"- CPU: {cpu_model()}, `os.cpu_count()` = {os.cpu_count()}",
            f"- Python {platform.python_version()} ({platform.python_implementation()}), {platform.system()}",
            f"- cachetools {cachetools.__version__}",
            f"- date: {now:%Y-%m-%d %H:%M %Z}",
        ]
    )


def run(settings: Settings, quick: bool, log: Callable[[str], None]) -> str:
    began = time.perf_counter()
    sections = []
    for bench in (bench_throughput, bench_policies, bench_memory, bench_rss, bench_lock_hold, bench_pauses):
        started = time.perf_counter()
        sections.append(bench(settings, log))
        log(f"{bench.__name__} took {time.perf_counter() - started:.0f} s")
    throughput, policies, memory, rss, lock_hold, pauses = sections
    elapsed = time.perf_counter() - began
    mode = " (quick run: small sizes, few rounds; not for conclusions)" if quick else ""
    return f"""# CacheGrid engine benchmark{mode}

{machine()}
- settings: {settings.rounds} rounds, keyspace {settings.keyspace:,}, {settings.ops:,} operations per measurement, \
{settings.entries:,} entries for memory, {settings.sweep_entries:,} for the sweep; {elapsed:.0f} s in all

Each comparison is a ratio taken in this run: CacheGrid and the reference are
measured alternately (A, B, A, B, ...) for {settings.rounds} rounds and the median of each
is reported, because the machine is shared and noisy. Absolute numbers are not
comparable between runs; the ratios are what to look at.

## 1. Throughput, single thread

Reference: the matching cachetools class, each operation inside one
`threading.Lock` (`with lock: ref.get(k)` / `with lock: ref[k] = v`).
Values are distinct {VALUE_SIZE}-byte `bytes`; keys are drawn at random (fixed seed)
from a keyspace of {settings.keyspace:,} keys the caches hold (set replaces a
value; get (miss) asks for keys never written). Ratio = CacheGrid / reference:
above 1, CacheGrid is faster.

{throughput}

¹ cachetools has no policy that evicts the largest entry; `size` is compared
with `LRUCache`, which is what it does when every entry has the same size, as
here.
² `noeviction` refuses writes to a full cache (`CacheFull`), so it has no
insert-with-eviction row.
³ The `ttl` policy's writes carry ttl={REFERENCE_TTL:g}, since `TTLCache` gives every
entry its TTL (without a TTL the policy is plain lru).
⁴ cachetools has no W-TinyLFU; `tinylfu` is compared with `LRUCache`, and with
CacheGrid's own `lru` in the next table.

### tinylfu against lru

Both CacheGrid, the same workloads, measured alternately in this run: what
W-TinyLFU's sketch and its three lists cost per operation over lru's one
list. Ratio = tinylfu / lru.

{policies}

## 2. Memory per entry

{settings.entries:,} entries per cache, keys `user:000123` and distinct {VALUE_SIZE}-byte values,
measured with tracemalloc (bytes requested from the allocator, not counting
pymalloc's rounding) while filling a fresh cache: `calibrate.measure()` for
CacheGrid, the same procedure for the reference. "beyond len()" is
(traced − Σ(len(key) + len(value))) / entries; "beyond getsizeof()" is
(traced − Σ(sys.getsizeof(key) + sys.getsizeof(value))) / entries, i.e. what
the cache's own structures cost on top of the key and value objects. The
claim error is (CacheGrid's `memory_usage` − traced) / traced.

{memory}

¹ As in section 1: `size` against `LRUCache`, which has the same order here.
³ The `ttl` row stores no TTL, as the other rows, so it costs what lru costs;
`TTLCache` keeps its expiry links for every entry, whence the difference.
Each cachetools class is measured once and shown on every row it is the
reference of.

### RSS per entry

100,000 entries `user:NNNNNN` → `{{"name":"Alice","age":NN}}` (25 bytes), set
through `set_many` in batches of 100 as the daemon's batch set does, each row
in a fresh interpreter: RSS after minus RSS before, per entry; the reference
is a bare dict of str → bytes filled the same way, in the same run (median of
3 interleaved runs each). The daemon adds its own request garbage on top
(docs/entry-layout.md).

{rss}

## 3. Lock hold

{lock_hold}

## 4. Pauses

{pauses}
"""


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer rounds, smaller sizes: a smoke run (< 1 min)")
    parser.add_argument("--rounds", type=int, help="interleaved rounds per comparison (default 7, quick 3)")
    parser.add_argument("--entries", type=int, help="entries of the memory part (default 1,000,000, quick 50,000)")
    parser.add_argument("--pause-entries", type=int, help="entries of the pause part (default 1,000,000)")
    parser.add_argument(
        "--only",
        choices=["throughput", "policies", "memory", "rss", "lock_hold", "pauses"],
        help="run one part only, and print it alone",
    )
    parser.add_argument("--output", help="also write the Markdown document to this file")
    args = parser.parse_args(argv)
    if args.quick:
        settings = Settings(
            rounds=3, keyspace=10_000, ops=10_000, entries=50_000, sweep_entries=100_000, pause_entries=1_000_000
        )
    else:
        settings = Settings(
            rounds=7, keyspace=100_000, ops=100_000, entries=1_000_000, sweep_entries=1_000_000, pause_entries=1_000_000
        )
    if args.rounds is not None:
        settings = dataclasses.replace(settings, rounds=args.rounds)
    if args.entries is not None:
        settings = dataclasses.replace(settings, entries=args.entries)
    if args.pause_entries is not None:
        settings = dataclasses.replace(settings, pause_entries=args.pause_entries)
    if settings.rounds < 1 or settings.entries < 1:
        parser.error("--rounds and --entries must be at least 1")

    def log(message: str) -> None:  # progress on stderr, the document on stdout
        print(message, file=sys.stderr, flush=True)

    if args.only:
        print(globals()[f"bench_{args.only}"](settings, log))
        return
    document = run(settings, args.quick, log)
    print(document)
    if args.output:
        with open(args.output, "w") as output:
            output.write(document)


if __name__ == "__main__":
    main()
