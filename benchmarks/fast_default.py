"""Is CacheGrid fast by default? Its defaults against the fastest meinheld, side by side in one run.

Run it on demand (it is not a test; it needs ``wrk``)::

    .venv/bin/python benchmarks/fast_default.py [--quick] [--rounds N] [--duration S]
        [--entries N] [--output docs/benchmarks-fast-default.md]

What it measures
----------------
1. **The ceiling**: ``benchmarks/hello_app.py`` (one route answering a
   constant 25-byte JSON body) under plain gunicorn with its defaults (one
   worker, no access log) and meinheld's own stock worker class
   ``meinheld.gmeinheld.MeinheldWorker``, on the *stock* meinheld 1.0.2 with
   greenlet 1.1.3: it leaks 4 KiB a request, but it is the speed meinheld is
   capable of. It runs from a scratch virtualenv of its own,
   ``.bench/stock-meinheld/`` (built on first use, reused after; ``.bench``
   ignores itself in git).
2. The same app and worker class on CacheGrid's own meinheld build (the
   project's virtualenv): the build's speed, without CacheGrid's code.
3. ``cachegrid serve`` as a user starts it (only ``--port``), then with
   ``--worker meinheld``, ``--worker gthread`` and with the access log on
   (``CACHEGRID_ACCESS_LOG=true``, written to a file): GET hit of
   ``user:000042`` and PUT of ``{"name":"Alice","age":30}`` to it, each
   ``wrk -t1 -c32``. Every figure is a ratio to the ceiling's figure for the
   same method (the ceiling answers a PUT after reading its body).
4. RSS slope: a fresh default server's worker RSS (``VmRSS``; the worker is
   the gunicorn master's one child) after a warm-up of GETs and after a
   million more; bytes per request = growth / requests wrk reports. The same
   for our build's hello world and, as the contrast, for the ceiling (fewer
   requests: it leaks 4 KiB each).
5. Slow clients: N connections that each send a request head one byte a
   second (~10 s, the head never completes), while 20 GETs on new
   connections and 20 on one keep-alive connection are timed: 200 such
   connections against the default server, 50 against ``--worker gthread``.
6. Listing under load: a default server (item and memory limits raised)
   filled with 1,000,000 entries by batch set, one thread listing keys
   non-stop (``GET /admin/keys?pattern=nomatch*&limit=100``, following the
   cursor to the end, then again), and wrk GETs at 32 connections meanwhile:
   their p99 and max latency, next to the same wrk run without the lister.

How
---
The machine is small and shared (server and wrk compete for 2 cores, other
tenants come and go), so nothing is compared with another run: the six
servers of the table run side by side, and each round runs every
(server, method) cell once in a shuffled (seeded) order; figures are medians
of the rounds, ratios are ratios of medians. Each round starts all six
servers afresh (and warms each cell up for a second): the ceiling leaks
4 KiB a request, about 1 GiB a round, and slows down as it grows. The other parts are measured one
server at a time, after the table's servers are stopped. Everything listens
on 127.0.0.1 on free ports, every wrk run and every wait is bounded, and all
servers are stopped at the end, on errors and on Ctrl-C or SIGTERM. The
server and wrk handling is shared with the other HTTP benchmarks
(``benchmarks/harness.py``).
"""

from __future__ import annotations

import argparse
import datetime
import http.client
import json
import math
import random
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from harness import (
    HERE,
    MIB,
    Run,
    Server,
    Workload,
    command_line,
    exit_on_sigterm,
    fill_by_batch,
    gunicorn_bind,
    key,
    log,
    machine_section,
    ms,
    port_only,
    preload,
    publish,
    ratio,
    require_tools,
    run_cells,
    run_wrk,
    table,
)

ROOT = HERE.parent
STOCK_ENV = ROOT / ".bench" / "stock-meinheld"
STOCK_WORKER = "meinheld.gmeinheld.MeinheldWorker"
CONNECTIONS = 32
WRK_THREADS = 1
HIT_KEY = key(42)

GOAL_BUILD_RATIO = 1.1
GOAL_GET_RATIO = 0.85
GOAL_PUT_RATIO = 0.75
GOAL_P99_RATIO = 1.25
GOAL_RSS_SLOPE = 0.1  # bytes per request
GOAL_SLOW_DEFAULT_MS = 100
GOAL_SLOW_GTHREAD_MS = 1000
GOAL_ACCESS_LOG_RATIO = 0.75
GOAL_LIST_P99_MS = 5
GOAL_LIST_MAX_MS = 20

GET = Workload("get", "GET", "/cache/" + HIT_KEY, "get.lua")
PUT = Workload("put", "PUT", "/cache/" + HIT_KEY, "put.lua")
HELLO_GET = Workload("get", "GET", "/hello", "get.lua", hello=True)
HELLO_PUT = Workload("put", "PUT", "/hello", "put.lua", hello=True)


# -- the stock meinheld environment ---------------------------------------------


def stock_python() -> Path:
    """The scratch virtualenv with stock meinheld 1.0.2 on greenlet 1.1.3; built when missing."""
    python = STOCK_ENV / "bin" / "python"
    check = (
        "import importlib.metadata as m, meinheld.server, gunicorn, falcon; "
        "v = m.version('meinheld'); g = m.version('greenlet'); "
        "assert v == '1.0.2' and g.startswith('1.'), (v, g)"
    )
    if python.exists() and subprocess.run([str(python), "-c", check], capture_output=True, timeout=60).returncode == 0:
        return python
    log(f"building the stock meinheld environment in {STOCK_ENV.relative_to(ROOT)} (once)")
    STOCK_ENV.parent.mkdir(exist_ok=True)
    # The directory ignores itself, so that no checkout needs a .gitignore entry.
    (STOCK_ENV.parent / ".gitignore").write_text("*\n")
    shutil.rmtree(STOCK_ENV, ignore_errors=True)
    steps = [
        [sys.executable, "-m", "venv", str(STOCK_ENV)],
        [str(python), "-m", "pip", "install", "--quiet", "greenlet>=1.1.3,<2", "gunicorn", "falcon"],
        # meinheld pins greenlet<0.5, which does not build on Python 3.11: hence --no-deps.
        [str(python), "-m", "pip", "install", "--quiet", "--no-deps", "meinheld==1.0.2"],
    ]
    for step in steps:
        result = subprocess.run(step, capture_output=True, text=True, timeout=900)
        if result.returncode != 0:
            raise SystemExit(
                f"building the stock meinheld environment failed: {' '.join(step)}\n"
                f"{result.stdout[-2000:]}\n{result.stderr[-2000:]}"
            )
    result = subprocess.run([str(python), "-c", check], capture_output=True, text=True, timeout=60)
    if result.returncode != 0:
        raise SystemExit(f"the stock meinheld environment does not work:\n{result.stderr[-2000:]}")
    return python


def package_versions(python: Path, packages: tuple[str, ...]) -> str:
    code = "import importlib.metadata as m, sys; print(', '.join(f'{p} {m.version(p)}' for p in sys.argv[1:]))"
    return subprocess.run(
        [str(python), "-c", code, *packages], capture_output=True, text=True, timeout=60
    ).stdout.strip()


# -- the servers -----------------------------------------------------------------


@dataclass
class Target:
    """A row of the table: a server and the GET and PUT it is loaded with."""

    name: str
    label: str
    start: Callable[[Path], Server]
    hello: bool = False
    server: Server | None = None
    runs: dict[str, list[Run]] = field(default_factory=lambda: {"get": [], "put": []})

    @property
    def workloads(self) -> tuple[Workload, Workload]:
        return (HELLO_GET, HELLO_PUT) if self.hello else (GET, PUT)

    def median(self, method: str, attribute: str) -> float:
        return statistics.median(getattr(run, attribute) for run in self.runs[method])

    def spread(self, method: str) -> float:
        rates = [run.rps for run in self.runs[method]]
        return (max(rates) - min(rates)) / statistics.median(rates)

    def round_ratios(self, method: str, reference: Target) -> list[float]:
        """req/s ÷ the reference's req/s of the same round, round by round."""
        return [mine.rps / theirs.rps for mine, theirs in zip(self.runs[method], reference.runs[method])]


def hello_server(name: str, python: Path, work_dir: Path) -> Server:
    """The hello app under plain gunicorn (its defaults: one worker, no access log) and meinheld's stock worker."""
    command = [
        str(python),
        "-m",
        "gunicorn",
        "--worker-class",
        STOCK_WORKER,
        "--chdir",
        str(HERE),
        # Only so that parallel runs on one machine do not share gunicorn's control socket.
        "--no-control-socket",
        "hello_app:create_app()",
    ]
    return Server(name, command, "/hello", work_dir, bind=gunicorn_bind)


def cachegrid_server(
    name: str, work_dir: Path, options: tuple[str, ...] = (), settings: dict[str, str] | None = None
) -> Server:
    return Server.cachegrid(name, list(options), work_dir, settings, bind=port_only)


def worker_kind(server: Server) -> str:
    """The worker the server says at start that it runs."""
    match = re.search(r"CacheGrid node \S+ on \S+: worker (\w+)", server.log_path.read_text(errors="replace"))
    return match.group(1) if match else "?"


def targets(stock: Path) -> list[Target]:
    ours = Path(sys.executable)
    return [
        Target(
            "ceiling",
            "hello world, **stock** meinheld (greenlet 1.1.3), stock worker — *the ceiling*",
            lambda d: hello_server("ceiling", stock, d),
            hello=True,
        ),
        Target(
            "our_hello",
            "hello world, **our** meinheld build, stock worker",
            lambda d: hello_server("our-hello", ours, d),
            hello=True,
        ),
        Target("defaults", "`cachegrid serve` (defaults)", lambda d: cachegrid_server("defaults", d)),
        Target(
            "meinheld",
            "`cachegrid serve --worker meinheld`",
            lambda d: cachegrid_server("meinheld", d, ("--worker", "meinheld")),
        ),
        Target(
            "gthread",
            "`cachegrid serve --worker gthread`",
            lambda d: cachegrid_server("gthread", d, ("--worker", "gthread")),
        ),
        Target(
            "access_log",
            "`cachegrid serve` (defaults), `CACHEGRID_ACCESS_LOG=true`",
            lambda d: cachegrid_server("access-log", d, settings={"CACHEGRID_ACCESS_LOG": "true"}),
        ),
    ]


def sanity_check(server: Server, workload: Workload) -> None:
    """One request of the workload, so that a wrong route is not benchmarked as a fast 404 or 405."""
    method = "PUT" if workload.script == "put.lua" else "GET"
    status, answer = server.request(method, workload.path, b'{"name":"Alice","age":30}' if method == "PUT" else None)
    if status not in (200, 201) or (method == "GET" and b"Alice" not in answer):
        raise SystemExit(f"{server.name}: {method} {workload.path} answered {status}: {answer[:200]!r}")


def start_servers(rows: list[Target], work_dir: Path) -> dict[str, str]:
    """Starts a fresh server per row, ready and checked; returns the worker each CacheGrid server ran."""
    for row in rows:
        row.server = row.start(work_dir)
    for row in rows:
        assert row.server is not None
        row.server.wait_ready()
        if not row.hello:
            preload(row.server, 100)
        for workload in row.workloads:
            sanity_check(row.server, workload)
    return {row.name: worker_kind(row.server) for row in rows if row.server and not row.hello}


def bench_table(rows: list[Target], args: argparse.Namespace, work_dir: Path) -> dict[str, str]:
    """The interleaved rounds; returns the worker each CacheGrid server ran.

    Every round starts every server afresh: the ceiling leaks 4 KiB a request
    (about 1 GiB a round), and a worker gigabytes large is slower than a fresh
    one, so a ceiling kept for the whole run would flatter the others' ratios
    more with every round."""
    kinds: dict[str, str] = {}
    cells = [(row, workload) for row in rows for workload in row.workloads]
    for round_ in range(args.rounds):
        try:
            kinds = start_servers(rows, work_dir)
            seconds, _ = run_cells(cells, random.Random(round_), f"round {round_ + 1}", args, CONNECTIONS, WRK_THREADS)
            log(f"table: round {round_ + 1}/{args.rounds} in {seconds:.0f} s, load average {args.loads[-1]:.1f}")
        finally:
            for row in rows:
                if row.server:
                    row.server.stop()
                    row.server = None
    return kinds


# -- RSS slope -------------------------------------------------------------------


@dataclass
class Slope:
    label: str
    warmup: int
    requests: int
    rss_warm: int
    rss_end: int
    rss_start: int

    @property
    def per_request(self) -> float:
        return (self.rss_end - self.rss_warm) / self.requests


def drive(server: Server, workload: Workload, requests: int, max_runs: int = 60) -> int:
    """wrk runs (``-c32``) until at least ``requests`` were answered; returns how many were."""
    done, rate = 0, 0.0
    for _ in range(max_runs):
        remaining = requests - done
        if remaining <= 0:
            return done
        # The first run learns the rate; the later ones aim at what is left (whole seconds, at most 30).
        duration = 1 if not rate else max(1, min(30, math.ceil(remaining / rate)))
        run = run_wrk(server.url(workload.path), workload, CONNECTIONS, duration, WRK_THREADS)
        if run.errors:
            raise SystemExit(f"{server.name}: wrk errors while driving requests: {run.errors}")
        done += run.requests
        rate = run.rps
    raise SystemExit(f"{server.name}: {requests:,} requests not reached in {max_runs} wrk runs")


def bench_slope(label: str, server: Server, workload: Workload, warmup: int, requests: int) -> Slope:
    try:
        server.wait_ready()
        if not workload.hello:
            preload(server, 100)
        rss_start = server.worker_rss()
        warmup = drive(server, workload, warmup)
        rss_warm = server.worker_rss()
        measured = drive(server, workload, requests)
        rss_end = server.worker_rss()
        server.check_alive()
        log(f"RSS slope {label}: {(rss_end - rss_warm) / measured:.3f} B/request over {measured:,}")
        return Slope(label, warmup, measured, rss_warm, rss_end, rss_start)
    finally:
        server.stop()


# -- slow clients ----------------------------------------------------------------


@dataclass
class SlowClients:
    label: str
    connections: int
    dripping_at_end: int
    fresh_ms: list[float]
    keepalive_ms: list[float]
    failures: int

    @property
    def all_ms(self) -> list[float]:
        return self.fresh_ms + self.keepalive_ms

    @property
    def worst_ms(self) -> float:
        return max(self.all_ms)


SLOW_HEAD = (
    b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: slow-client\r\nX-Padding: " + b"x" * 200 + b"\r\n\r\n"
)  # never completes at one byte a second within the test


def drip(port: int, count: int, stop: threading.Event, limit: float, result: list[int]) -> None:
    """Opens ``count`` connections and sends each one byte of SLOW_HEAD a second until ``stop``."""
    sockets = []
    try:
        for _ in range(count):
            sock = socket.create_connection(("127.0.0.1", port), timeout=5)
            sockets.append(sock)
        deadline = time.monotonic() + limit
        position = 0
        while not stop.is_set() and time.monotonic() < deadline:
            byte = SLOW_HEAD[position : position + 1]
            position += 1
            for sock in list(sockets):
                try:
                    sock.send(byte)
                except OSError:  # the server closed it
                    sockets.remove(sock)
                    sock.close()
            stop.wait(1.0)
        result.append(len(sockets))
    finally:
        for sock in sockets:
            sock.close()


def timed_get(connection: http.client.HTTPConnection) -> float:
    started = time.perf_counter()
    connection.request("GET", "/cache/" + HIT_KEY)
    response = connection.getresponse()
    response.read()
    if response.status != 200:
        raise OSError(f"answered {response.status}")
    return (time.perf_counter() - started) * 1000


def bench_slow(label: str, server: Server, count: int, gets: int, pause: float, timeout: float) -> SlowClients:
    stop = threading.Event()
    dripping: list[int] = []
    fresh: list[float] = []
    kept: list[float] = []
    failures = 0
    try:
        server.wait_ready()
        preload(server, 100)
        thread = threading.Thread(target=drip, args=(server.port, count, stop, 60.0, dripping), daemon=True)
        thread.start()
        time.sleep(2.0)  # every slow connection open and a byte or two in
        keepalive = http.client.HTTPConnection("127.0.0.1", server.port, timeout=timeout)
        try:
            for _ in range(gets):
                for samples, fresh_connection in ((fresh, True), (kept, False)):
                    connection = (
                        http.client.HTTPConnection("127.0.0.1", server.port, timeout=timeout)
                        if fresh_connection
                        else keepalive
                    )
                    try:
                        samples.append(timed_get(connection))
                    except OSError:
                        failures += 1
                        samples.append(timeout * 1000)
                        if not fresh_connection:
                            keepalive.close()  # reconnects on the next request
                    finally:
                        if fresh_connection:
                            connection.close()
                    time.sleep(pause)
        finally:
            keepalive.close()
            stop.set()
            thread.join(timeout=15)
        server.check_alive()
        result = SlowClients(label, count, dripping[0] if dripping else 0, fresh, kept, failures)
        log(
            f"slow clients {label}: median {statistics.median(result.all_ms):.1f} ms, max {result.worst_ms:.1f} ms, "
            f"{result.dripping_at_end}/{count} still dripping"
        )
        return result
    finally:
        stop.set()
        server.stop()


# -- listing under load ------------------------------------------------------------


@dataclass
class Listing:
    entries: int
    fill_seconds: float
    quiet: list[Run] = field(default_factory=list)
    listed: list[Run] = field(default_factory=list)
    pages: int = 0
    passes: int = 0
    slowest_page_ms: float = 0.0
    page_ms: list[float] = field(default_factory=list)


def lister(port: int, stop: threading.Event, listing: Listing) -> None:
    """Lists ``nomatch*`` non-stop, following the cursor to the end, then again."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    try:
        while not stop.is_set():
            cursor = None
            while not stop.is_set():
                query = "pattern=nomatch*&limit=100" + (f"&cursor={urllib.parse.quote(cursor)}" if cursor else "")
                started = time.perf_counter()
                connection.request("GET", "/admin/keys?" + query)
                response = connection.getresponse()
                page = json.loads(response.read())
                elapsed = (time.perf_counter() - started) * 1000
                if response.status != 200:
                    raise SystemExit(f"the key listing answered {response.status}: {page}")
                listing.pages += 1
                listing.page_ms.append(elapsed)
                listing.slowest_page_ms = max(listing.slowest_page_ms, elapsed)
                cursor = page.get("cursor")
                if not cursor:
                    listing.passes += 1
                    break
    finally:
        connection.close()


def bench_listing(args: argparse.Namespace, work_dir: Path) -> Listing:
    settings = {"CACHEGRID_MAX_SIZE": str(int(args.entries * 1.1) + 1000), "CACHEGRID_MAX_MEMORY_MB": "2048"}
    server = cachegrid_server("listing", work_dir, settings=settings)
    try:
        server.wait_ready()
        started = time.monotonic()
        fill_by_batch(server.port, [key(i) for i in range(args.entries)])
        listing = Listing(args.entries, time.monotonic() - started)
        size = json.loads(server.request("GET", "/stats")[1])["current_size"]
        if size != args.entries:
            raise SystemExit(f"listing: {size:,} entries stored, not {args.entries:,}")
        log(f"listing: {args.entries:,} entries stored in {listing.fill_seconds:.1f} s")
        sanity_check(server, GET)
        for round_ in range(args.list_rounds):
            order = [False, True]
            random.Random(100 + round_).shuffle(order)
            for with_lister in order:
                stop = threading.Event()
                thread = threading.Thread(target=lister, args=(server.port, stop, listing), daemon=True)
                if with_lister:
                    thread.start()
                    time.sleep(0.5)  # the listing under way before the measured requests
                try:
                    run = run_wrk(server.url(GET.path), GET, CONNECTIONS, args.list_duration, WRK_THREADS)
                finally:
                    stop.set()
                    if with_lister:
                        thread.join(timeout=150)
                (listing.listed if with_lister else listing.quiet).append(run)
            log(f"listing: round {round_ + 1}/{args.list_rounds}")
        server.check_alive()
        return listing
    finally:
        server.stop()


# -- the report ------------------------------------------------------------------


@dataclass
class Goal:
    measure: str
    goal: str
    measured: str
    met: bool


def throughput_section(rows: list[Target], kinds: dict[str, str], args: argparse.Namespace) -> str:
    top = rows[0]
    lines = []
    for row in rows:
        get, put = row.median("get", "rps"), row.median("put", "rps")
        p99_get, p99_put = row.median("get", "p99_ms"), row.median("put", "p99_ms")
        label = row.label + (f" → {kinds[row.name]}" if row.name in kinds else "")
        lines.append(
            [
                label,
                f"{get:,.0f}",
                f"{put:,.0f}",
                ms(p99_get),
                ms(p99_put),
                ratio(get / top.median("get", "rps")),
                ratio(put / top.median("put", "rps")),
                ratio(p99_get / top.median("get", "p99_ms")),
                ratio(p99_put / top.median("put", "p99_ms")),
                f"{row.spread('get'):.0%} / {row.spread('put'):.0%}",
            ]
        )
    return "\n".join(
        [
            "## Throughput and latency, side by side",
            "",
            f"`wrk -t{WRK_THREADS} -c{CONNECTIONS} -d{args.duration}s`, GET hit of `{HIT_KEY}` and PUT of "
            f'`{{"name":"Alice","age":30}}` to it (the hello worlds: GET and PUT of `/hello`); medians of '
            f"{args.rounds} interleaved rounds. × ceiling: against the ceiling's figure for the same method (req/s: "
            "higher is better; p99: lower is better). → names the worker each CacheGrid server said it ran. Spread: "
            "(max - min) / median of the rounds' req/s.",
            "",
            table(
                [
                    "server",
                    "GET req/s",
                    "PUT req/s",
                    "GET p99 ms",
                    "PUT p99 ms",
                    "GET × ceiling",
                    "PUT × ceiling",
                    "GET p99 × ceiling",
                    "PUT p99 × ceiling",
                    "spread GET / PUT",
                ],
                lines,
            ),
            "",
            "Round by round, req/s ÷ the ceiling's req/s in the same round (GET; PUT), for a look at the noise: "
            "the machine's 1-minute load average at the end of each round was "
            + ", ".join(f"{load:.1f}" for load in args.loads)
            + " (2 cores; the benchmark itself keeps about 2 busy).",
            "",
            table(
                ["server", "GET ÷ ceiling, by round", "PUT ÷ ceiling, by round"],
                [
                    [
                        row.name,
                        " ".join(f"{r:.2f}" for r in row.round_ratios("get", top)),
                        " ".join(f"{r:.2f}" for r in row.round_ratios("put", top)),
                    ]
                    for row in rows[1:]
                ],
            ),
        ]
    )


def slope_section(slopes: list[Slope]) -> str:
    rows = [
        [
            s.label,
            f"{s.warmup:,}",
            f"{s.requests:,}",
            f"{s.rss_start / MIB:.1f}",
            f"{s.rss_warm / MIB:.1f}",
            f"{s.rss_end / MIB:.1f}",
            f"{s.per_request:,.3f}",
        ]
        for s in slopes
    ]
    return "\n".join(
        [
            "## Worker RSS per request",
            "",
            f"A fresh server per row, GET hit (`/hello` for the hello worlds) over {CONNECTIONS} keep-alive "
            "connections, in wrk runs until the count is reached (the requests are those wrk reports). VmRSS of the "
            "worker at start, after the warm-up and at the end; slope = (end - after warm-up) / requests.",
            "",
            table(
                [
                    "server",
                    "warm-up requests",
                    "measured requests",
                    "RSS at start MiB",
                    "after warm-up MiB",
                    "at end MiB",
                    "B/request",
                ],
                rows,
            ),
        ]
    )


def slow_section(results: list[SlowClients], pause: float) -> str:
    rows = []
    for r in results:
        rows.append(
            [
                r.label,
                str(r.connections),
                f"{r.dripping_at_end}/{r.connections}",
                ms(statistics.median(r.fresh_ms)),
                ms(max(r.fresh_ms)),
                ms(statistics.median(r.keepalive_ms)),
                ms(max(r.keepalive_ms)),
                str(r.failures),
            ]
        )
    return "\n".join(
        [
            "## Slow clients",
            "",
            "N connections each send a request head one byte a second (the head is longer than the test, so none "
            f"completes); from 2 s in, {len(results[0].fresh_ms) if results else 0} GETs on a new connection each and "
            f"as many on one keep-alive connection, alternately, {pause:g} s apart, are timed. Still dripping: the "
            "slow connections the server had not closed at the end. A failed GET (timeout, error) counts as the "
            "timeout.",
            "",
            table(
                [
                    "server",
                    "slow connections",
                    "still dripping",
                    "new conn. median ms",
                    "new conn. max ms",
                    "keep-alive median ms",
                    "keep-alive max ms",
                    "failed GETs",
                ],
                rows,
            ),
        ]
    )


def listing_section(listing: Listing, args: argparse.Namespace) -> str:
    def row(label: str, runs: list[Run]) -> list[str]:
        return [
            label,
            f"{statistics.median(r.rps for r in runs):,.0f}",
            ms(statistics.median(r.p50_ms for r in runs)),
            ms(statistics.median(r.p99_ms for r in runs)),
            ms(statistics.median(r.max_ms for r in runs)),
            ms(max(r.max_ms for r in runs)),
        ]

    pages = sorted(listing.page_ms)
    page_line = (
        f"The lister fetched {listing.pages:,} pages and finished {listing.passes} full passes over "
        f"the keys; a page took {ms(statistics.median(pages))} ms at the median and "
        f"{ms(listing.slowest_page_ms)} ms at worst."
        if pages
        else "The lister fetched no page."
    )
    return "\n".join(
        [
            "## Listing keys under load",
            "",
            f"A default server with `CACHEGRID_MAX_SIZE` and `CACHEGRID_MAX_MEMORY_MB` raised, {listing.entries:,} "
            f"entries stored by batch set ({listing.fill_seconds:.1f} s). One thread lists "
            "`GET /admin/keys?pattern=nomatch*&limit=100`, following the cursor to its end, then again, non-stop; "
            f"meanwhile `wrk -t{WRK_THREADS} -c{CONNECTIONS} -d{args.list_duration}s` GETs `{HIT_KEY}`. The same "
            f"wrk run without the lister, interleaved; medians of {args.list_rounds} rounds (worst max: the highest "
            "of the rounds).",
            "",
            table(
                ["wrk GETs", "req/s", "p50 ms", "p99 ms", "max ms (median)", "max ms (worst)"],
                [row("without the lister", listing.quiet), row("while listing", listing.listed)],
            ),
            "",
            page_line,
        ]
    )


def goals(rows: list[Target], slopes: list[Slope], slow: list[SlowClients], listing: Listing | None) -> list[Goal]:
    by = {row.name: row for row in rows}
    result: list[Goal] = []

    def add(measure: str, goal: str, measured: str, met: bool) -> None:
        result.append(Goal(measure, goal, measured, met))

    if rows:
        top, ours, defaults = by["ceiling"], by["our_hello"], by["defaults"]
        build = ours.median("get", "rps") / top.median("get", "rps")
        add(
            "falcon hello world, our meinheld build ÷ the stock build (GET c32)",
            f"≥ {GOAL_BUILD_RATIO}×",
            ratio(build),
            build >= GOAL_BUILD_RATIO,
        )
        get = defaults.median("get", "rps") / top.median("get", "rps")
        add(
            "`cachegrid serve` defaults, GET c32 ÷ the ceiling",
            f"≥ {GOAL_GET_RATIO}×",
            ratio(get),
            get >= GOAL_GET_RATIO,
        )
        put = defaults.median("put", "rps") / top.median("put", "rps")
        add("same, PUT c32 ÷ the ceiling's PUT", f"≥ {GOAL_PUT_RATIO}×", ratio(put), put >= GOAL_PUT_RATIO)
        for method in ("get", "put"):
            p99 = defaults.median(method, "p99_ms") / top.median(method, "p99_ms")
            add(
                f"defaults, {method.upper()} p99 c32 ÷ the ceiling's p99",
                f"≤ {GOAL_P99_RATIO}×",
                f"{ratio(p99)} ({ms(defaults.median(method, 'p99_ms'))} ms vs {ms(top.median(method, 'p99_ms'))} ms)",
                p99 <= GOAL_P99_RATIO,
            )
        logged = by["access_log"].median("get", "rps") / defaults.median("get", "rps")
        add(
            "access log on ÷ access log off (defaults, GET c32)",
            f"≥ {GOAL_ACCESS_LOG_RATIO}×",
            ratio(logged),
            logged >= GOAL_ACCESS_LOG_RATIO,
        )
    for s in slopes:
        if s.label.startswith("`cachegrid serve`"):
            add(
                f"RSS slope over {s.requests:,} requests after {s.warmup:,} (defaults)",
                f"≤ {GOAL_RSS_SLOPE} B",
                f"{s.per_request:.3f} B/request",
                s.per_request <= GOAL_RSS_SLOPE,
            )
    for r, limit in zip(slow, (GOAL_SLOW_DEFAULT_MS, GOAL_SLOW_GTHREAD_MS)):
        add(
            f"{r.connections} connections dripping headers: a normal GET's latency ({r.label})",
            f"< {limit:,} ms",
            f"median {ms(statistics.median(r.all_ms))} ms, max {ms(r.worst_ms)} ms"
            + (f", {r.failures} failed" if r.failures else ""),
            r.worst_ms < limit and not r.failures,
        )
    if listing and listing.listed:
        p99 = statistics.median(r.p99_ms for r in listing.listed)
        worst = statistics.median(r.max_ms for r in listing.listed)
        add(
            f"{listing.entries:,} entries, one client listing keys: other clients' GET p99 / max",
            f"≤ {GOAL_LIST_P99_MS} ms / ≤ {GOAL_LIST_MAX_MS} ms",
            f"{ms(p99)} ms / {ms(worst)} ms",
            p99 <= GOAL_LIST_P99_MS and worst <= GOAL_LIST_MAX_MS,
        )
    return result


def goals_section(results: list[Goal]) -> str:
    rows = [[g.measure, g.goal, g.measured, "met" if g.met else "**NOT met**"] for g in results]
    return "\n".join(["## Goals", "", table(["measure", "goal", "measured", "verdict"], rows, text_columns=4)])


# -- main ------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--quick",
        action="store_true",
        help="a smoke run of about 2 minutes: 2 rounds of 2 s, 200,000 requests for the RSS "
        "slope, 100,000 entries for the listing",
    )
    parser.add_argument("--rounds", type=int, help="interleaved rounds of the table (default 5; quick 2)")
    parser.add_argument("--duration", type=int, help="seconds per wrk run of the table (default 5; quick 2)")
    parser.add_argument("--warmup", type=int, help="seconds of unmeasured wrk per cell first (default 1; quick 0)")
    parser.add_argument(
        "--slope-requests", type=int, help="requests measured for the RSS slope (default 1,000,000; quick 200,000)"
    )
    parser.add_argument("--entries", type=int, help="entries for the listing (default 1,000,000; quick 100,000)")
    parser.add_argument(
        "--skip",
        action="append",
        default=[],
        choices=("table", "slope", "slow", "listing"),
        help="leave a part out (repeatable)",
    )
    parser.add_argument("--output", type=Path, help="also write the Markdown here")
    args = parser.parse_args()
    quick = {"rounds": 2, "duration": 2, "warmup": 0, "slope_requests": 200_000, "entries": 100_000}
    full = {"rounds": 5, "duration": 5, "warmup": 1, "slope_requests": 1_000_000, "entries": 1_000_000}
    for name, default in (quick if args.quick else full).items():
        if getattr(args, name) is None:
            setattr(args, name, default)
    args.slope_warmup = args.slope_requests // 10
    # The stock build leaks 4 KiB a request: a tenth of the requests is contrast enough.
    args.stock_warmup, args.stock_requests = args.slope_warmup // 10, args.slope_requests // 5
    args.list_rounds, args.list_duration = (1, 3) if args.quick else (3, 5)
    args.slow_gets, args.slow_pause = (20, 0.1) if args.quick else (20, 0.2)
    args.notes = []
    args.loads = []
    exit_on_sigterm()

    require_tools()
    stock = stock_python()

    started = time.monotonic()
    rows: list[Target] = []
    kinds: dict[str, str] = {}
    slopes: list[Slope] = []
    slow: list[SlowClients] = []
    listing: Listing | None = None
    with tempfile.TemporaryDirectory(prefix="cachegrid-fast-default-") as scratch:
        work_dir = Path(scratch)
        if "table" not in args.skip:
            rows = targets(stock)
            kinds = bench_table(rows, args, work_dir)
        if "slope" not in args.skip:
            slopes.append(
                bench_slope(
                    "`cachegrid serve` (defaults)",
                    cachegrid_server("slope-defaults", work_dir),
                    GET,
                    args.slope_warmup,
                    args.slope_requests,
                )
            )
            slopes.append(
                bench_slope(
                    "hello world, our meinheld build",
                    hello_server("slope-ours", Path(sys.executable), work_dir),
                    HELLO_GET,
                    args.slope_warmup,
                    args.slope_requests,
                )
            )
            slopes.append(
                bench_slope(
                    "hello world, stock meinheld (the ceiling)",
                    hello_server("slope-stock", stock, work_dir),
                    HELLO_GET,
                    args.stock_warmup,
                    args.stock_requests,
                )
            )
        if "slow" not in args.skip:
            slow.append(
                bench_slow(
                    "`cachegrid serve` (defaults)",
                    cachegrid_server("slow-defaults", work_dir),
                    200,
                    args.slow_gets,
                    args.slow_pause,
                    timeout=10,
                )
            )
            slow.append(
                bench_slow(
                    "`cachegrid serve --worker gthread`",
                    cachegrid_server("slow-gthread", work_dir, ("--worker", "gthread")),
                    50,
                    args.slow_gets,
                    args.slow_pause,
                    timeout=10,
                )
            )
        if "listing" not in args.skip:
            listing = bench_listing(args, work_dir)

    results = goals(rows, slopes, slow, listing)
    parts = [
        "# Fast by default: CacheGrid's defaults against the fastest meinheld",
        "",
        f"Measured by `{command_line()}` on {datetime.date.today().isoformat()} in "
        f"{(time.monotonic() - started) / 60:.1f} min. Every comparison is a ratio of figures from this same run; "
        "the table's servers ran side by side, interleaved, all started afresh for each round (see the docstring of "
        "the script). The ceiling: "
        "`benchmarks/hello_app.py` under plain gunicorn (one worker, no access log) with meinheld's stock worker "
        f"`{STOCK_WORKER}` on the stock meinheld build, which leaks 4 KiB a request but is as fast as meinheld "
        "gets.",
        "",
        machine_section(
            [f"the ceiling's environment: {package_versions(stock, ('meinheld', 'greenlet', 'gunicorn', 'falcon'))}"]
        ),
        "",
        goals_section(results),
    ]
    if rows:
        parts += ["", throughput_section(rows, kinds, args)]
    if slopes:
        parts += ["", slope_section(slopes)]
    if slow:
        parts += ["", slow_section(slow, args.slow_pause)]
    if listing:
        parts += ["", listing_section(listing, args)]
    if args.quick:
        args.notes.append("A --quick smoke run: too few and too short runs to quote.")
    publish(parts, args.output, args.notes)


if __name__ == "__main__":
    main()
