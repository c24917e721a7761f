"""Snapshots of 1,000,000 entries: write, load, and what serving costs meanwhile.

Two parts, each with its reference measured in the same run:

1. The engine, in this process (``--entries`` entries of the seed's shape,
   half with a TTL): the foreground write (time, size), the load into an
   empty cache, and the latency of a request thread (get + set per turn)
   with no snapshot, during a fork-based snapshot (what CacheGrid does) and
   during a copy in bounded slices under the lock (the alternative: the
   key list copied under the lock, then ``SLICE`` entries per lock hold,
   encoded and written by a second thread). Also the lock hold of the fork
   and the memory the forked copy dirtied (its Private_Dirty at the end).
2. HTTP, on a real server (``cachegrid serve``, meinheld where usable) with
   the same entries: wrk's p99 and worst latency of a mixed load with no
   snapshot, and of the same load while background snapshots run back to
   back; then a SIGTERM (the shutdown snapshot) and a start: how long until
   /health answers, and the load time the server reports.

Goals (the issue): p99 during a snapshot within 2x of the same load
without, no request over 50 ms, a load of 1M entries under 5 s.

    python benchmarks/snapshot_bench.py [--entries 1000000] [--duration 5] [--output docs/benchmarks-snapshot.md]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import tempfile
import threading
import time
from pathlib import Path

from harness import (
    FILL_CHUNK,
    VALUE,
    Server,
    Workload,
    command_line,
    fill_by_batch,
    key,
    log,
    machine_section,
    ms,
    publish,
    ratio,
    require_tools,
    run_wrk,
    table,
)

from cachegrid.daemon.workers import meinheld_problem
from cachegrid.engine import Cache
from cachegrid.engine.snapshot import CHILD_NICENESS, Snapshotter, write_file
from cachegrid.percentile import percentile

SLICE = 10_000  # entries per lock hold of the sliced copy
TTL = 3600.0
MIXED = Workload("mixed", "75% GET / 25% PUT", "/", "mixed.lua", args=("100000", "0.75"))


# -- 1. the engine ---------------------------------------------------------------


def filled_cache(entries: int) -> Cache:
    cache = Cache("lru", max_size=entries + 1000, max_memory=8 * 2**30)
    for number in range(entries):
        cache.set(key(number), VALUE, ttl=TTL if number % 2 else None)
    return cache


def private_dirty_mib() -> float:
    text = Path("/proc/self/smaps_rollup").read_text()
    return int(re.search(r"Private_Dirty:\s+(\d+)", text).group(1)) / 1024  # type: ignore[union-attr]


class Requests:
    """A thread doing get + set on the cache, timing each turn."""

    def __init__(self, cache: Cache, entries: int) -> None:
        self.cache, self.entries = cache, entries
        self.latencies: list[float] = []
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.run)

    def run(self) -> None:
        cache, number, clock = self.cache, 0, time.perf_counter
        while not self.stop.is_set():
            number = (number + 7919) % self.entries
            started = clock()
            cache.get(key(number))
            cache.set(key(number), VALUE)
            self.latencies.append(clock() - started)

    def __enter__(self) -> Requests:
        self.thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop.set()
        self.thread.join()

    def summary(self) -> dict[str, float]:
        ordered = sorted(self.latencies)
        return {
            "turns": len(ordered),
            "p50": percentile(ordered, 0.5) * 1000,
            "p99": percentile(ordered, 0.99) * 1000,
            "max": ordered[-1] * 1000,
        }


def sliced_copy(cache: Cache, path: Path) -> tuple[float, float]:
    """The alternative to fork: the key list under the lock, then SLICE
    entries per lock hold, written meanwhile; returns (longest hold, seconds).
    (It loses the policy's order and is not a point-in-time copy: entries
    changed during it are in either state.)"""
    store, lock = cache._store, cache._lock
    started = time.perf_counter()
    hold_started = time.perf_counter()
    with lock:
        keys = list(store._data)
        wall_offset = time.time() - store.clock()
    longest = time.perf_counter() - hold_started
    records = []
    for start in range(0, len(keys), SLICE):
        hold_started = time.perf_counter()
        with lock:
            for name in keys[start : start + SLICE]:
                entry = store._data.get(name)
                if entry is not None:
                    records.append(entry)
        longest = max(longest, time.perf_counter() - hold_started)
        time.sleep(0)
    from cachegrid.engine.store import entry_of

    def encoded():
        for name, blob in zip(keys, records):
            entry = entry_of(blob, 0)  # the bench's values are plain: no Extra, and a record keeps no version
            yield name, entry.value, None if entry.expires_at is None else entry.expires_at + wall_offset, 0, None

    write_file(path, encoded(), len(records), {"policy": "lru"})
    return longest, time.perf_counter() - started


def engine_part(entries: int, work: Path) -> tuple[list[str], dict[str, float]]:
    log(f"engine: filling {entries:,} entries")
    cache = filled_cache(entries)
    path = work / "engine.snap"
    snapshotter = Snapshotter(cache, path, producer="bench")
    started = time.perf_counter()
    snapshotter.write_now("request")
    write_seconds = time.perf_counter() - started
    size = path.stat().st_size

    fresh = Cache("lru", max_size=entries + 1000, max_memory=8 * 2**30)
    started = time.perf_counter()
    report = Snapshotter(fresh, path).load()
    load_seconds = time.perf_counter() - started
    assert report.entries == entries, report
    del fresh

    window = max(write_seconds, 2.0)
    log("engine: requests without a snapshot")
    with Requests(cache, entries) as baseline:
        time.sleep(window)

    log("engine: requests during a fork-based snapshot")
    dirty: list[float] = []
    read_end, write_end = os.pipe()

    def child(store) -> None:  # type: ignore[no-untyped-def]
        os.nice(CHILD_NICENESS)  # as Snapshotter's child
        write_file(work / "fork.snap", store.export_entries(time.time()), len(store), {"policy": "lru"})
        os.write(write_end, json.dumps(private_dirty_mib()).encode())
        os._exit(0)

    with Requests(cache, entries) as forked:
        time.sleep(0.2)
        hold_started = time.perf_counter()
        pid = cache.fork_locked(child)
        fork_hold = time.perf_counter() - hold_started
        os.close(write_end)
        os.waitpid(pid, 0)
        fork_seconds = time.perf_counter() - hold_started
        dirty.append(json.loads(os.read(read_end, 100)))
        os.close(read_end)
    log("engine: requests during a sliced copy under the lock")
    with Requests(cache, entries) as sliced:
        time.sleep(0.2)
        slice_hold, slice_seconds = sliced_copy(cache, work / "sliced.snap")
    cache_mib = private_dirty_mib()

    base, fork_run, slice_run = baseline.summary(), forked.summary(), sliced.summary()
    rows = [
        [
            "no snapshot (reference)",
            f"{base['turns']:,}",
            ms(base["p50"]),
            ms(base["p99"]),
            ms(base["max"]),
            "1.00x",
            "-",
            "-",
        ],
        [
            "fork (CacheGrid's choice)",
            f"{fork_run['turns']:,}",
            ms(fork_run["p50"]),
            ms(fork_run["p99"]),
            ms(fork_run["max"]),
            ratio(fork_run["p99"] / base["p99"]),
            f"{fork_hold * 1000:.1f}",
            f"{fork_seconds:.2f}",
        ],
        [
            f"slices of {SLICE:,} under the lock",
            f"{slice_run['turns']:,}",
            ms(slice_run["p50"]),
            ms(slice_run["p99"]),
            ms(slice_run["max"]),
            ratio(slice_run["p99"] / base["p99"]),
            f"{slice_hold * 1000:.1f}",
            f"{slice_seconds:.2f}",
        ],
    ]
    parts = [
        f"## The engine, {entries:,} entries (in process)",
        "",
        table(
            ["", "value"],
            [
                ["snapshot write, foreground", f"{write_seconds:.2f} s"],
                ["snapshot size", f"{size / 2**20:.1f} MiB ({size / entries:.0f} bytes an entry)"],
                ["load into an empty cache", f"{load_seconds:.2f} s (goal: under 5 s)"],
                [
                    "memory the forked copy dirtied",
                    f"{dirty[0]:.0f} MiB of the process' {cache_mib:.0f} MiB ({dirty[0] / cache_mib:.0%})",
                ],
            ],
        ),
        "",
        "A request thread (one get and one set per turn) meanwhile; latencies of a turn in ms; "
        "ratio: p99 against the reference:",
        "",
        table(["", "turns", "p50", "p99", "max", "p99 ratio", "longest lock hold (ms)", "snapshot (s)"], rows),
    ]
    figures = {
        "write": write_seconds,
        "load": load_seconds,
        "size": size,
        "fork_hold": fork_hold,
        "fork_p99_ratio": fork_run["p99"] / base["p99"],
        "fork_max": fork_run["max"],
    }
    return parts, figures


# -- 2. HTTP ---------------------------------------------------------------------


def wait_snapshot(server: Server, written: int, timeout: float = 120) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        state = json.loads(server.request("GET", "/admin/snapshot")[1])
        if not state["running"] and state["written"] + state["failed"] > written:
            return state
        time.sleep(0.05)
    raise SystemExit("a snapshot did not finish in time")


def http_part(entries: int, duration: int, work: Path) -> tuple[list[str], dict[str, float]]:
    worker = "meinheld" if meinheld_problem() is None else "gthread"
    snap = work / "http.snap"
    options = [
        "--worker",
        worker,
        "--max-size",
        str(entries + 200_000),
        "--max-memory-mb",
        "4096",
        "--snapshot-path",
        str(snap),
        "--snapshot-interval",
        "0",
    ]
    server = Server.cachegrid("snapshot", options, work)
    try:
        server.wait_ready()
        log(f"http: filling {entries:,} entries ({worker}), {FILL_CHUNK} a batch")
        fill_by_batch(server.port, [key(number) for number in range(entries)])
        url = server.url("")
        log("http: wrk without a snapshot")
        reference = run_wrk(url, MIXED, connections=8, duration=duration)

        stop = threading.Event()
        snapshots: list[dict] = []

        def back_to_back() -> None:
            written = 0
            while not stop.is_set():
                status, _ = server.request("POST", "/admin/snapshot")
                if status == 202:
                    state = wait_snapshot(server, written)
                    written = state["written"] + state["failed"]
                    snapshots.append(state["last"])

        log("http: wrk during back-to-back snapshots")
        thread = threading.Thread(target=back_to_back)
        thread.start()
        time.sleep(0.1)
        during = run_wrk(url, MIXED, connections=8, duration=duration)
        stop.set()
        thread.join()
        server.check_alive()

        log("http: SIGTERM (shutdown snapshot), then a start")
        stopping = time.perf_counter()
        server.stop()
        stop_seconds = time.perf_counter() - stopping
        again = Server.cachegrid("snapshot-again", options, work)
        starting = time.perf_counter()
        again.wait_ready(timeout=120)
        ready_seconds = time.perf_counter() - starting
        stats = json.loads(again.request("GET", "/stats")[1])
        again.stop()
    finally:
        server.stop() if server.process.poll() is None else None

    ok = [last for last in snapshots if last["result"] == "ok"]
    rows = [
        [
            "no snapshot (reference)",
            f"{reference.rps:,.0f}",
            ms(reference.p50_ms),
            ms(reference.p99_ms),
            ms(reference.max_ms),
            "1.00x",
            str(sum(reference.errors.values())),
        ],
        [
            f"during {len(ok)} background snapshots",
            f"{during.rps:,.0f}",
            ms(during.p50_ms),
            ms(during.p99_ms),
            ms(during.max_ms),
            ratio(during.p99_ms / reference.p99_ms),
            str(sum(during.errors.values())),
        ],
    ]
    each = sum(last["duration_seconds"] for last in ok) / len(ok) if ok else float("nan")
    parts = [
        f"## HTTP, {entries:,} entries ({worker} worker, wrk -c8, {MIXED.label}, {duration} s each)",
        "",
        table(["", "req/s", "p50 ms", "p99 ms", "max ms", "p99 ratio", "errors"], rows),
        "",
        table(
            ["", "value"],
            [
                ["background snapshot, each", f"{each:.2f} s ({ok[0]['bytes'] / 2**20:.1f} MiB)" if ok else "-"],
                ["SIGTERM to exit, with the shutdown snapshot", f"{stop_seconds:.2f} s"],
                ["start to healthy, with the load", f"{ready_seconds:.2f} s"],
                [
                    "load time the server reports",
                    f"{stats['snapshot_loaded_seconds']:.2f} s ({stats['snapshot_loaded_entries']:,} entries)",
                ],
            ],
        ),
    ]
    return parts, {
        "http_p99_ratio": during.p99_ms / reference.p99_ms,
        "http_max": during.max_ms,
        "server_load": stats["snapshot_loaded_seconds"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entries", type=int, default=1_000_000)
    parser.add_argument("--duration", type=int, default=5, help="seconds of each wrk run")
    parser.add_argument("--output", type=Path, default=None)
    parser.add_argument("--engine-only", action="store_true", help="skip the HTTP part (no wrk needed)")
    arguments = parser.parse_args()
    if not arguments.engine_only:
        require_tools()
    with tempfile.TemporaryDirectory() as scratch:
        work = Path(scratch)
        engine, engine_figures = engine_part(arguments.entries, work)
        parts = ["# Snapshot benchmark", "", f"`{command_line()}`", "", *engine]
        notes = [
            "The machine is shared with other work while this runs: latencies, the worst ones above all, move "
            "from run to run; the ratios, against a reference measured in the same run, are what to read.",
            f"Engine: fork holds the lock {engine_figures['fork_hold'] * 1000:.1f} ms; the sliced copy holds it "
            f"longest for the key list, and loses the policy's order and point-in-time consistency.",
        ]
        if not arguments.engine_only:
            http, http_figures = http_part(arguments.entries, arguments.duration, work)
            parts += ["", *http]
            notes.append(
                f"Goals: p99 during a snapshot {http_figures['http_p99_ratio']:.2f}x the reference "
                f"(goal 2x), worst {http_figures['http_max']:.1f} ms (goal 50 ms), load "
                f"{http_figures['server_load']:.2f} s (goal 5 s)."
            )
        parts += ["", machine_section()]
    publish(parts, arguments.output, notes)


if __name__ == "__main__":
    main()
