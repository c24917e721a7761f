"""HTTP benchmark of the CacheGrid daemon, against a hello-world ceiling, printed as Markdown.

Run it on demand (it is not a test; it needs ``wrk``)::

    .venv/bin/python benchmarks/http_bench.py [--quick] [--rounds N] [--duration S]
        [--entries N] [--threads N] [--output docs/benchmarks-http.md]

What it measures
----------------
1. For each gunicorn worker kind (meinheld, unless
   ``cachegrid.daemon.workers.meinheld_problem()`` gives a reason not to, and
   gthread): GET hit, GET miss, PUT of a small JSON value (one key, replaced
   each time: a static request costs wrk nothing per request), a mix of 75%
   GET / 25% PUT over 10,000 preloaded keys, a batch get of 100 keys and a
   batch set of 100 items. At 32 connections (``wrk -t 2``): requests/s, p50 and p99 latency,
   and keys/s for the batches; at 1 connection (``wrk -t 1``): latency.
2. The ceiling: ``benchmarks/hello_app.py``, a falcon app whose one route
   answers a constant JSON body, served through CacheGrid's own ``serve()``
   (same gunicorn options, same worker class and threads, same access log).
   Every CacheGrid figure is given as a ratio to the ceiling of the same
   worker kind and connection count: what CacheGrid's own code costs.
3. Memory per entry in the running daemon: a fresh server, the worker's
   VmRSS before and after storing ``--entries`` entries (``user:NNNNNN`` ->
   ``{"name":"Alice","age":30}``), next to what ``/stats`` claims
   (``memory_usage_bytes``). The entries are stored two ways, each in its own
   fresh server: one PUT per entry over 16 keep-alive connections, one request
   in flight on each (meinheld answers only the first of pipelined requests,
   so no pipelining), and batch set in chunks of 1,000 (fewer, larger
   requests: different garbage, a different RSS). The worker gives its
   heap's free memory back in the background (``memory_trim_interval``,
   cachegrid/daemon/heap.py), so RSS right after a fill depends on whether a
   trim ran yet: with trimming on, each RSS reading (after the warm-up and
   after the fill) waits until the server reports a trim that began after
   that fill (``memory_trim_last_at`` in /stats; a miss is sent first, so
   there is work to trim after): the steady state a user sees. With
   ``--memory-trim-interval 0`` (trimming off) RSS is read at once. Also the RSS of each
   benchmark server's worker before and after all its runs, per request
   served: the runs store no new keys, so steady growth there is a leak.
4. The project's goals, each reported as met or not met.

How
---
The machine is small and shared: the server and wrk compete for the same
cores and other tenants come and go. So no figure is compared with one from
another run, only ratios of figures from the same run (the batch goals in
keys/s and the bytes per entry are the only absolute thresholds); every figure
is the median of ``--rounds`` runs; and the runs are interleaved: the four
servers (CacheGrid and the hello app, under each worker kind) run side by
side, and each round runs every (server, workload, connections) cell once, in
a shuffled order (seeded, so reproducible), so that a slow spell of the
machine lands on the things being compared alike and position in the round
favours none. Ratios are ratios of the medians. The servers write their
access log to a file, as they would in production, and run with
``CACHEGRID_MAX_SIZE`` raised so that nothing is evicted. wrk reports through
a Lua ``done()`` that prints JSON (``benchmarks/lua/report.lua``). The
server and wrk handling is shared with the other HTTP benchmarks
(``benchmarks/harness.py``).
"""

from __future__ import annotations

import argparse
import datetime
import json
import random
import re
import selectors
import socket
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from harness import (
    FILL_CHUNK,
    HELLO_APP,
    VALUE,
    Run,
    Server,
    Workload,
    command_line,
    exit_on_sigterm,
    fill_by_batch,
    key,
    log,
    machine_section,
    ms,
    preload,
    publish,
    ratio,
    require_tools,
    rss_bytes,
    run_wrk,
    table,
)

from cachegrid.daemon.workers import meinheld_problem

KEYSPACE = 10_000  # keys preloaded for the GET, mixed and batch workloads
BATCH = 100  # keys per batch request
FILL_CONNECTIONS = 16
MAX_SIZE = 1_000_000  # CACHEGRID_MAX_SIZE: above anything stored here, so nothing is evicted
HIGH_CONNECTIONS, LOW_CONNECTIONS = 32, 1

GOAL_GET_RATIO = 0.85
GOAL_PUT_RATIO = 0.75
GOAL_P99_RATIO = 1.25
GOAL_BATCH_GET_KEYS = 250_000
GOAL_BATCH_SET_ITEMS = 100_000
GOAL_RSS_PER_ENTRY = 200  # for lru and tinylfu alike (250 before the W-TinyLFU work)
GOAL_GTHREAD_RATIO = 0.8


# -- the workloads ---------------------------------------------------------------


CEILING = Workload("hello", "hello world (ceiling)", "/hello", "get.lua", hello=True)
WORKLOADS = [
    Workload("get_hit", "GET hit", f"/cache/{key(42)}", "get.lua"),
    Workload("get_miss", "GET miss", "/cache/absent:000042", "get.lua", expect_status=404),
    Workload("put", "PUT", f"/cache/{key(42)}", "put.lua"),
    Workload("mixed", "75% GET / 25% PUT", "/", "mixed.lua", args=(str(KEYSPACE), "0.75")),
    Workload(
        "batch_get", f"batch get, {BATCH} keys", "/cache/batch/get", "batch_get.lua", args=(str(BATCH),), keys=BATCH
    ),
    Workload(
        "batch_set", f"batch set, {BATCH} items", "/cache/batch/set", "batch_set.lua", args=(str(BATCH),), keys=BATCH
    ),
]


# -- servers ---------------------------------------------------------------------

# The same settings for CacheGrid and the ceiling: the caller's CACHEGRID_* are
# dropped (harness.Server), only the item limit is raised (the default, 10,000,
# would evict during the memory fill).
SETTINGS = {"CACHEGRID_MAX_SIZE": str(MAX_SIZE)}


def threads_option(threads: int | None) -> list[str]:
    return ["--threads", str(threads)] if threads else []


def cachegrid_server(kind: str, threads: int | None, work_dir: Path, tag: str = "") -> Server:
    return Server.cachegrid(f"cachegrid-{kind}{tag}", ["--worker", kind, *threads_option(threads)], work_dir, SETTINGS)


def hello_server(kind: str, threads: int | None, work_dir: Path) -> Server:
    command = [sys.executable, str(HELLO_APP), "--worker", kind, *threads_option(threads)]
    return Server(f"hello-{kind}", command, "/hello", work_dir, SETTINGS)


# -- wrk -------------------------------------------------------------------------


@dataclass
class Cell:
    kind: str
    workload: Workload
    connections: int
    runs: list[Run] = field(default_factory=list)

    def median(self, attribute: str) -> float:
        return statistics.median(getattr(run, attribute) for run in self.runs)

    @property
    def rps(self) -> float:
        return self.median("rps")

    @property
    def p50(self) -> float:
        return self.median("p50_ms")

    @property
    def p99(self) -> float:
        return self.median("p99_ms")

    @property
    def spread(self) -> float:
        """(max - min) / median of requests/s: how noisy this cell was."""
        rates = [run.rps for run in self.runs]
        return (max(rates) - min(rates)) / statistics.median(rates)


def sanity_check(server: Server, workload: Workload) -> None:
    """One request of the workload, so that a wrong route is not benchmarked as a fast 404."""
    if workload.script == "mixed.lua":
        return  # GETs and PUTs of keys the GET hit and PUT checks cover
    method = {"put.lua": "PUT", "batch_get.lua": "POST", "batch_set.lua": "POST"}.get(workload.script, "GET")
    body = None
    if workload.script == "put.lua":
        body = VALUE
    elif workload.script == "batch_get.lua":
        body = json.dumps({"keys": [key(i) for i in range(workload.keys)]}).encode()
    elif workload.script == "batch_set.lua":
        body = json.dumps({"items": {key(i): json.loads(VALUE) for i in range(workload.keys)}}).encode()
    status, answer = server.request(method, workload.path, body)
    if status != workload.expect_status:
        raise SystemExit(
            f"{server.name}: {method} {workload.path} answered {status}, not {workload.expect_status}: {answer[:200]!r}"
        )
    if workload.script == "batch_get.lua" and len(json.loads(answer)["items"]) != workload.keys:
        raise SystemExit(f"{server.name}: the batch get did not find all {workload.keys} keys")


def bench_http(kinds: list[str], args: argparse.Namespace, work_dir: Path) -> dict[tuple[str, str, int], Cell]:
    servers: dict[tuple[str, bool], Server] = {}
    try:
        for kind in kinds:
            servers[kind, False] = cachegrid_server(kind, args.threads, work_dir)
            servers[kind, True] = hello_server(kind, args.threads, work_dir)
        for server in servers.values():
            server.wait_ready()
        for kind in kinds:
            preload(servers[kind, False], KEYSPACE)
            for workload in (CEILING, *WORKLOADS):
                sanity_check(servers[kind, workload.hello], workload)
        for server in servers.values():
            server.rss_start = rss_bytes(server.worker_pid())

        cells = {
            (kind, workload.name, connections): Cell(kind, workload, connections)
            for kind in kinds
            for workload in (CEILING, *WORKLOADS)
            for connections in (HIGH_CONNECTIONS, LOW_CONNECTIONS)
        }
        # A short unmeasured run of everything first, so that no first round
        # pays for the servers' first requests (imports, caches, allocations).
        for cell in cells.values():
            if cell.connections == HIGH_CONNECTIONS and args.warmup > 0:
                server = servers[cell.kind, cell.workload.hello]
                server.requests_sent += run_wrk(
                    server.url(cell.workload.path), cell.workload, cell.connections, args.warmup
                ).requests
        order = list(cells.values())
        for round_ in range(args.rounds):
            random.Random(round_).shuffle(order)
            started = time.monotonic()
            for cell in order:
                server = servers[cell.kind, cell.workload.hello]
                cell.runs.append(
                    run_wrk(server.url(cell.workload.path), cell.workload, cell.connections, args.duration)
                )
                server.requests_sent += cell.runs[-1].requests
            log(f"round {round_ + 1}/{args.rounds} done in {time.monotonic() - started:.0f} s")
        for server in servers.values():
            if server.process.poll() is not None:
                raise SystemExit(f"{server.name} died during the benchmark (exit {server.process.returncode})")
            # A worker whose RSS keeps growing with requests (not with entries:
            # the mixed and batch-set PUTs only replace values) is leaking.
            args.growth.append(
                Growth(server.name, server.requests_sent, server.rss_start, rss_bytes(server.worker_pid()))
            )
            problems = server.log_problems()
            if problems:
                log(f"warning: {server.name}'s log has {problems} error lines ({server.log_path})")
                args.notes.append(f"{server.name}'s log reported {problems} error lines during the runs.")
        return cells
    finally:
        for server in servers.values():
            server.stop()


# -- memory ----------------------------------------------------------------------


@dataclass
class Growth:
    """A benchmark server's worker RSS from before the HTTP runs to after them."""

    server: str
    requests: int
    rss_start: int
    rss_end: int

    @property
    def per_request(self) -> float:
        return (self.rss_end - self.rss_start) / max(self.requests, 1)


def put_request(name: str) -> bytes:
    return (
        f"PUT /cache/{name} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(VALUE)}\r\n\r\n"
    ).encode() + VALUE


def response_length(buffer: bytes) -> int | None:
    """The length of the first complete response in ``buffer``, or None if it is not complete."""
    end = buffer.find(b"\r\n\r\n")
    if end < 0:
        return None
    match = re.search(rb"(?im)^content-length:\s*(\d+)\s*$", buffer[:end])
    if not match:
        raise SystemExit(f"a response without Content-Length: {buffer[:end]!r}")
    total = end + 4 + int(match.group(1))
    return total if len(buffer) >= total else None


def fill_by_put(port: int, names: list[str], timeout: float = 600.0) -> None:
    """One PUT per name over FILL_CONNECTIONS keep-alive sockets, one request in
    flight on each (meinheld does not answer pipelined requests)."""
    pending = iter(names)
    selector = selectors.DefaultSelector()
    buffers: dict[socket.socket, bytes] = {}
    deadline = time.monotonic() + timeout

    def send_next(sock: socket.socket) -> bool:
        name = next(pending, None)
        if name is None:
            return False
        sock.sendall(put_request(name))  # small; a blocking send is fine on loopback
        return True

    try:
        for _ in range(min(FILL_CONNECTIONS, len(names))):
            sock = socket.create_connection(("127.0.0.1", port), timeout=30)
            buffers[sock] = b""
            selector.register(sock, selectors.EVENT_READ)
            send_next(sock)
        active = len(buffers)
        while active:
            if time.monotonic() > deadline:
                raise SystemExit(f"filling the cache took more than {timeout:g} s")
            for selector_key, _ in selector.select(timeout=5):
                sock = selector_key.fileobj  # type: ignore[assignment]
                data = sock.recv(65536)
                if not data:
                    raise SystemExit("the server closed a connection while filling the cache")
                buffers[sock] += data
                length = response_length(buffers[sock])
                if length is None:
                    continue
                status = buffers[sock][9:12]
                if status not in (b"200", b"201"):
                    raise SystemExit(f"a PUT answered {buffers[sock][:length]!r}")
                buffers[sock] = buffers[sock][length:]
                if not send_next(sock):
                    selector.unregister(sock)
                    active -= 1
    finally:
        for sock in buffers:
            sock.close()
        selector.close()


@dataclass
class Memory:
    kind: str
    method: str
    entries: int
    rss_before: int
    rss_after: int
    stats_before: int
    stats_after: int
    size_after: int
    trimmed: bool  # both RSS readings waited for a trim of the heap's free memory

    @property
    def rss_per_entry(self) -> float:
        return (self.rss_after - self.rss_before) / self.entries

    @property
    def stats_per_entry(self) -> float:
        return (self.stats_after - self.stats_before) / self.entries


FILLS: dict[str, Callable[[int, list[str]], None]] = {
    "PUT": fill_by_put,
    f"batch set ×{FILL_CHUNK}": fill_by_batch,
}


def after_a_trim(server: Server, stats: Callable[[], dict]) -> bool:
    """With trimming on, wait until the server reports a trim begun after
    this moment (a miss is sent first, so that there is work to trim after);
    False at once when trimming is off."""
    document = stats()
    if not document.get("memory_trim_enabled"):
        return False
    since = time.time()
    server.request("GET", "/cache/bench:absent")  # work: the next interval trims
    deadline = time.monotonic() + 3 * document["memory_trim_interval_seconds"] + 30
    while time.monotonic() < deadline:
        last_at = stats()["memory_trim_last_at"]
        if last_at is not None and last_at >= since:
            return True
        time.sleep(0.1)
    raise SystemExit(f"{server.name}: no memory trim within {deadline - since:.0f} s of the fill")


def bench_memory(kind: str, method: str, args: argparse.Namespace, work_dir: Path) -> Memory:
    fill = FILLS[method]
    server = cachegrid_server(kind, args.threads, work_dir, tag=f"-memory-{'put' if method == 'PUT' else 'batch'}")
    try:
        server.wait_ready()
        pid = server.worker_pid()

        def stats() -> dict:
            return json.loads(server.request("GET", "/stats")[1])

        # Warm the same code path with other keys first, so the baseline already
        # holds what the first requests allocate once (buffers, caches, imports).
        fill(server.port, [f"warm:{i:06d}" for i in range(2 * FILL_CHUNK)])
        trimmed = after_a_trim(server, stats)
        rss_before, before = rss_bytes(pid), stats()
        started = time.monotonic()
        fill(server.port, [key(i) for i in range(args.entries)])
        elapsed = time.monotonic() - started
        trimmed = after_a_trim(server, stats) and trimmed
        rss_after, after = rss_bytes(pid), stats()
        log(
            f"memory {kind}, {method}: {args.entries:,} entries in {elapsed:.1f} s"
            f"{', RSS read after a trim' if trimmed else ''}"
        )
        if after["current_size"] - before["current_size"] != args.entries:
            raise SystemExit(
                f"{server.name}: expected {args.entries} more entries, /stats says "
                f"{after['current_size'] - before['current_size']}"
            )
        return Memory(
            kind,
            method,
            args.entries,
            rss_before,
            rss_after,
            before["memory_usage_bytes"],
            after["memory_usage_bytes"],
            after["current_size"],
            trimmed,
        )
    finally:
        server.stop()


# -- the report ------------------------------------------------------------------


def http_sections(cells: dict[tuple[str, str, int], Cell], kinds: list[str], args: argparse.Namespace) -> str:
    def ceiling(kind: str, connections: int) -> Cell:
        return cells[kind, CEILING.name, connections]

    parts = []
    high_rows = []
    for kind in kinds:
        top = ceiling(kind, HIGH_CONNECTIONS)
        high_rows.append(
            [
                kind,
                f"*{CEILING.label}*",
                f"{top.rps:,.0f}",
                "",
                ms(top.p50),
                ms(top.p99),
                "1.00x",
                "1.00x",
                f"{top.spread:.0%}",
            ]
        )
        for workload in WORKLOADS:
            cell = cells[kind, workload.name, HIGH_CONNECTIONS]
            high_rows.append(
                [
                    kind,
                    workload.label,
                    f"{cell.rps:,.0f}",
                    f"{cell.rps * workload.keys:,.0f}" if workload.keys else "",
                    ms(cell.p50),
                    ms(cell.p99),
                    ratio(cell.rps / top.rps),
                    ratio(cell.p99 / top.p99),
                    f"{cell.spread:.0%}",
                ]
            )
    parts += [
        f"## {HIGH_CONNECTIONS} connections: throughput and latency",
        "",
        f"`wrk -t 2 -c {HIGH_CONNECTIONS} -d {args.duration}s`; medians of {args.rounds} runs. The ratios are "
        "to the hello-world ceiling of the same worker kind (requests/s: higher is better; p99: lower is "
        "better). Spread: (max - min) / median of the runs' requests/s.",
        "",
        table(
            ["worker", "workload", "req/s", "keys/s", "p50 ms", "p99 ms", "req/s ÷ ceiling", "p99 ÷ ceiling", "spread"],
            high_rows,
            text_columns=2,
        ),
    ]

    low_rows = []
    for kind in kinds:
        top = ceiling(kind, LOW_CONNECTIONS)
        low_rows.append([kind, f"*{CEILING.label}*", ms(top.p50), ms(top.p99), f"{top.rps:,.0f}", "1.00x", "1.00x"])
        for workload in WORKLOADS:
            cell = cells[kind, workload.name, LOW_CONNECTIONS]
            low_rows.append(
                [
                    kind,
                    workload.label,
                    ms(cell.p50),
                    ms(cell.p99),
                    f"{cell.rps:,.0f}",
                    ratio(cell.rps / top.rps),
                    ratio(cell.p99 / top.p99),
                ]
            )
    parts += [
        "",
        f"## {LOW_CONNECTIONS} connection: latency",
        "",
        f"`wrk -t 1 -c {LOW_CONNECTIONS} -d {args.duration}s`; medians of {args.rounds} runs; one request "
        "in flight, so req/s is 1 / mean latency.",
        "",
        table(
            ["worker", "workload", "p50 ms", "p99 ms", "req/s", "req/s ÷ ceiling", "p99 ÷ ceiling"],
            low_rows,
            text_columns=2,
        ),
    ]

    if len(kinds) == 2:
        rows = []
        for workload in (CEILING, *WORKLOADS):
            row = [workload.label]
            for connections in (HIGH_CONNECTIONS, LOW_CONNECTIONS):
                gthread = cells["gthread", workload.name, connections]
                meinheld = cells["meinheld", workload.name, connections]
                row += [ratio(gthread.rps / meinheld.rps), ratio(meinheld.p99 / gthread.p99)]
            rows.append(row)
        parts += [
            "",
            "## gthread ÷ meinheld",
            "",
            f"gthread with {args.threads or 'the default number of'} threads. Both columns are oriented so that "
            "below 1 means gthread is worse: req/s of gthread ÷ req/s of meinheld, and p99 of meinheld ÷ p99 of "
            "gthread.",
            "",
            table(
                [
                    "workload",
                    f"req/s, {HIGH_CONNECTIONS} conn.",
                    f"p99, {HIGH_CONNECTIONS} conn.",
                    f"req/s, {LOW_CONNECTIONS} conn.",
                    f"p99, {LOW_CONNECTIONS} conn.",
                ],
                rows,
            ),
        ]
    return "\n".join(parts)


def growth_section(growth: list[Growth]) -> str:
    mib = 1024 * 1024
    rows = [
        [g.server, f"{g.requests:,}", f"{g.rss_start / mib:.1f}", f"{g.rss_end / mib:.1f}", f"{g.per_request:,.0f}"]
        for g in growth
    ]
    return "\n".join(
        [
            "## Worker RSS over the HTTP runs",
            "",
            "VmRSS of each benchmark server's worker after the preload, and after all its runs (warm-up included). "
            "The runs store no new keys (PUTs replace the preloaded values), so growth per request should be near 0; "
            "a steady growth per request is a leak.",
            "",
            "| server | requests | RSS before MiB | RSS after MiB | growth B/request |",
            "|---|---:|---:|---:|---:|",
            *("| " + " | ".join(row) + " |" for row in rows),
        ]
    )


def memory_section(results: list[Memory]) -> str:
    mib = 1024 * 1024
    rows = [
        [
            m.kind,
            m.method,
            f"{m.entries:,}",
            f"{m.rss_before / mib:.1f}",
            f"{m.rss_after / mib:.1f}",
            "yes" if m.trimmed else "no",
            f"{m.rss_per_entry:.0f}",
            f"{m.stats_per_entry:.0f}",
            ratio(m.rss_per_entry / m.stats_per_entry),
        ]
        for m in results
    ]
    return "\n".join(
        [
            "## Memory per entry in the running daemon",
            "",
            f"A fresh server per row; keys `user:NNNNNN`, value `{VALUE.decode()}`. RSS: VmRSS of the gunicorn "
            f"worker, before and after the entries (after {2 * FILL_CHUNK:,} warm-up entries stored the same way). "
            f"PUT: one request per entry over {FILL_CONNECTIONS} keep-alive connections, one in flight each. Batch "
            f"set: {FILL_CHUNK:,} items per request (fewer, larger requests leave different garbage). /stats: the "
            "growth of `memory_usage_bytes`, the engine's own accounting of keys, values and bookkeeping. A PUT "
            "row also carries whatever the worker keeps per request, whether entries are stored or not (see the "
            "worker RSS over the HTTP runs). After a trim: both RSS readings waited until the server reported a trim "
            "of its heap's free memory begun after that fill (`memory_trim_interval`; no: trimming was off).",
            "",
            "| worker | stored by | entries | RSS before MiB | RSS after MiB | after a trim | RSS growth B/entry "
            "| /stats B/entry | RSS ÷ /stats |",
            "|---|---|---:|---:|---:|---|---:|---:|---:|",
            *("| " + " | ".join(row) + " |" for row in rows),
        ]
    )


def goals_section(
    cells: dict[tuple[str, str, int], Cell] | None, kinds: list[str], memory: list[Memory], primary: str
) -> str:
    goals: list[tuple[str, bool, str]] = []

    def goal(text: str, met: bool, measured: str) -> None:
        goals.append((text, met, measured))

    if cells:

        def at(kind: str, name: str, connections: int = HIGH_CONNECTIONS) -> Cell:
            return cells[kind, name, connections]

        top = at(primary, CEILING.name)
        get, put = at(primary, "get_hit"), at(primary, "put")
        goal(
            f"GET hit >= {GOAL_GET_RATIO}x the ceiling ({primary}, {HIGH_CONNECTIONS} conn.)",
            get.rps >= GOAL_GET_RATIO * top.rps,
            ratio(get.rps / top.rps),
        )
        goal(
            f"PUT >= {GOAL_PUT_RATIO}x the ceiling ({primary}, {HIGH_CONNECTIONS} conn.)",
            put.rps >= GOAL_PUT_RATIO * top.rps,
            ratio(put.rps / top.rps),
        )
        goal(
            f"GET hit p99 <= {GOAL_P99_RATIO}x the ceiling's p99 ({primary}, {HIGH_CONNECTIONS} conn.)",
            get.p99 <= GOAL_P99_RATIO * top.p99,
            ratio(get.p99 / top.p99),
        )
        goal(
            f"PUT p99 <= {GOAL_P99_RATIO}x the ceiling's p99 ({primary}, {HIGH_CONNECTIONS} conn.)",
            put.p99 <= GOAL_P99_RATIO * top.p99,
            ratio(put.p99 / top.p99),
        )
        batch_get, batch_set = at(primary, "batch_get"), at(primary, "batch_set")
        goal(
            f"batch get of {BATCH} keys >= {GOAL_BATCH_GET_KEYS:,} keys/s ({primary}, {HIGH_CONNECTIONS} conn.)",
            batch_get.rps * BATCH >= GOAL_BATCH_GET_KEYS,
            f"{batch_get.rps * BATCH:,.0f} keys/s",
        )
        goal(
            f"batch set of {BATCH} items >= {GOAL_BATCH_SET_ITEMS:,} items/s ({primary}, {HIGH_CONNECTIONS} conn.)",
            batch_set.rps * BATCH >= GOAL_BATCH_SET_ITEMS,
            f"{batch_set.rps * BATCH:,.0f} items/s",
        )
    for m in memory:
        goal(
            f"RSS growth <= {GOAL_RSS_PER_ENTRY} B/entry for {m.entries:,} entries ({m.kind}, {m.method})",
            m.rss_per_entry <= GOAL_RSS_PER_ENTRY,
            f"{m.rss_per_entry:.0f} B/entry",
        )
    if cells and len(kinds) == 2:
        worst = min(
            (
                (cells["gthread", w.name, c].rps / cells["meinheld", w.name, c].rps, w.label, c)
                for w in WORKLOADS
                for c in (HIGH_CONNECTIONS, LOW_CONNECTIONS)
            ),
        )
        goal(
            f"no gthread req/s below {GOAL_GTHREAD_RATIO}x meinheld (CacheGrid rows, both connection counts)",
            worst[0] >= GOAL_GTHREAD_RATIO,
            f"lowest {ratio(worst[0])}: {worst[1]}, {worst[2]} conn.",
        )
    lines = ["## Goals", ""]
    lines += [f"- **{'met' if met else 'NOT met'}**: {text}: {measured}" for text, met, measured in goals]
    if cells and len(kinds) < 2:
        lines.append("- not measured: gthread ÷ meinheld (meinheld was skipped)")
    return "\n".join(lines)


# -- main ------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="a smoke run: 2 rounds of 1 s, no warm-up, 20,000 entries")
    parser.add_argument("--rounds", type=int, help="runs of every cell, interleaved (default 5; quick 2)")
    # wrk takes whole seconds only.
    parser.add_argument("--duration", type=int, help="seconds per wrk run (default 3; quick 1)")
    parser.add_argument("--warmup", type=int, help="seconds of unmeasured warm-up per workload (default 1; quick 0)")
    parser.add_argument(
        "--entries", type=int, help="entries stored for the memory figure (default 100,000; quick 20,000)"
    )
    parser.add_argument("--threads", type=int, default=None, help="gthread threads (default: CacheGrid's default)")
    parser.add_argument("--skip-http", action="store_true", help="only the memory figure")
    parser.add_argument("--skip-memory", action="store_true", help="only the HTTP figures")
    parser.add_argument("--policy", help="the eviction policy of every CacheGrid server (default: the default, lru)")
    parser.add_argument(
        "--memory-trim-interval",
        type=float,
        help="memory_trim_interval of every CacheGrid server, 0: off (default: the default, 10 s)",
    )
    parser.add_argument("--output", type=Path, help="also write the Markdown here")
    args = parser.parse_args()
    defaults = (2, 1, 0, 20_000) if args.quick else (5, 3, 1, 100_000)
    for name, default in zip(("rounds", "duration", "warmup", "entries"), defaults):
        if getattr(args, name) is None:
            setattr(args, name, default)
    args.notes = []
    args.growth = []
    if args.policy:
        SETTINGS["CACHEGRID_EVICTION_POLICY"] = args.policy
        args.notes.append(f"Every CacheGrid server ran the `{args.policy}` eviction policy.")
    if args.memory_trim_interval is not None:
        SETTINGS["CACHEGRID_MEMORY_TRIM_INTERVAL"] = f"{args.memory_trim_interval:g}"
    exit_on_sigterm()

    require_tools()

    problem = meinheld_problem()
    kinds = ["gthread"] if problem else ["meinheld", "gthread"]
    primary = kinds[0]
    if problem:
        args.notes.append(f"meinheld was skipped: {problem}. The goals stated for meinheld are checked on gthread.")
        log(f"skipping meinheld: {problem}")

    started = time.monotonic()
    cells = None
    memory: list[Memory] = []
    with tempfile.TemporaryDirectory(prefix="cachegrid-http-bench-") as scratch:
        work_dir = Path(scratch)
        if not args.skip_http:
            cells = bench_http(kinds, args, work_dir)
        if not args.skip_memory:
            for kind in kinds:
                for method in FILLS:
                    memory.append(bench_memory(kind, method, args, work_dir))

    parts = [
        "# CacheGrid HTTP benchmark",
        "",
        f"Measured by `{command_line()}` on {datetime.date.today().isoformat()} in "
        f"{(time.monotonic() - started) / 60:.1f} min. CacheGrid (`cachegrid serve`, one gunicorn worker, access "
        "log on, written to a file) against a falcon hello-world app served the same way "
        "(`benchmarks/hello_app.py`), under each worker kind. All figures are medians of interleaved runs, and "
        "every comparison is a ratio of figures from this same run (see the docstring of the script).",
        "",
        machine_section(),
    ]
    if cells:
        parts += ["", http_sections(cells, kinds, args), "", growth_section(args.growth)]
    if memory:
        parts += ["", memory_section(memory)]
    parts += ["", goals_section(cells, kinds, memory, primary)]
    errors = [
        f"{cell.kind} {cell.workload.label}, {cell.connections} conn.: {run.errors}"
        for cell in (cells or {}).values()
        for run in cell.runs
        if run.errors
    ]
    if errors:
        args.notes.append("wrk reported errors in some runs: " + "; ".join(errors))
    if any(m.trimmed for m in memory):
        args.notes.append(
            "The memory rows read RSS only once the server had reported a trim of its heap's free "
            "memory (malloc_trim, every `memory_trim_interval` seconds after work) begun after the "
            "fill, before and after the entries: the steady state a user sees, not the moment after "
            "the fill."
        )
    elif memory:
        args.notes.append(
            "The memory rows read RSS right after each fill: the servers did not trim their heap "
            "(`memory_trim_interval` 0, or no glibc)."
        )
    if args.quick:
        args.notes.append("A --quick smoke run: too few and too short runs to quote.")
    publish(parts, args.output, args.notes)


if __name__ == "__main__":
    main()
