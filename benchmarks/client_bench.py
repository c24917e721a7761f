"""What one call costs from Python: CacheGrid's clients next to redis-py and pymemcache.

Run it on demand (it is not a test; it needs redis-server and memcached on
the PATH, ``apt-get install -y redis-server memcached``, and the dev extra's
``redis``, ``hiredis`` and ``pymemcache``)::

    .venv/bin/python benchmarks/client_bench.py [--rounds 5] [--calls 3000] [--seed 1]

What it measures
----------------
One thread, sequential calls, loopback. The benchmark starts its own
servers on free ports of 127.0.0.1: ``cachegrid serve`` with its defaults,
redis-server without persistence and memcached; it stores ``user:42`` =
``{"name":"Alice","age":30}`` in each, and stops them all at the end. Each
*row* is one way of reading (or writing) that value, with its decoding: a
CacheGrid client's ``get`` returns the decoded value, so the Redis and
memcached rows pay ``json.loads`` (writes ``json.dumps``) as an application
would. Rows:

* CacheGrid's sync client (its keep-alive transport) ``get``/``set``; the
  same client sending through a ``requests.Session``, as it did before
  (the transport still does that for https hosts); a bare
  ``requests.Session().get`` and an ``http.client`` keep-alive GET, for
  reference; and a raw socket writing a prepared request and reading the
  answer: the floor of any HTTP client of this server.
* redis-py (with hiredis) ``GET`` + ``json.loads``, ``SET`` + ``json.dumps``,
  and a raw socket sending a prepared ``GET``: the floor for Redis.
* pymemcache ``get`` + ``json.loads``, ``set`` + ``json.dumps``.
* The async clients (CacheGrid's and redis.asyncio), each call awaited in
  turn in one event loop.
* The near cache: a hit of the sync and of the async client (one
  ``NearCache`` shared by both, warmed first), timed in rounds of their own
  after the others (its stream's reader thread would otherwise take the
  GIL now and then from the rows timed beside it, and every write would be
  sent to it); and, after those rounds, the
  delay from a write's answer to another client's near cache receiving
  the change, over ``--writes`` writes (p50, p99, max, and how many never
  arrived within a second).
* Django's cache API (``cache.get``/``cache.set`` of the same dict, pickled
  by each backend) on CacheGrid's backend and on Django's own ``RedisCache``.

More rows (a near cache, Django's cache API) are one more entry of
``rows()`` each.

How
---
Every call is timed on its own (``perf_counter_ns``). A round runs every
row ``--calls`` times. The rows compared with one another (every row of
one *kind*: the GETs, the SETs, the async GETs, Django's get, Django's
set) take turns in blocks of ``--block`` calls, in an order shuffled per
block (seeded), so that a slow spell of the shared machine lands on the
rows compared alike; the kinds follow one another in an order shuffled per
round; ``--rounds`` rounds. Each row's round figure is the median of its
calls in that round; the table gives the median of those over the rounds,
and p99 over all its calls. A ratio is taken in each round (the row's
median ÷ its reference's median in the same round) and the table gives the
median of those per-round ratios with their spread (lowest–highest):
never a figure from another run. The async rows keep their clients on one
event loop for the whole run, as an application would.

Where
-----
On a machine of few CPUs the kernel puts the benchmark and the servers on
the same CPU in some stretches and on different ones in others, which alone
moved every ratio by up to 2× between runs. So each run is made in
*placements* (``--cpus``, each ``CLIENT:SERVERS``; by default ``0:1``, the
calls on CPU 0 and the servers on CPU 1, then ``0:0``, all on CPU 0, then
``''``, the kernel's choice), each with servers of its own; the first
placement gets the whole table, and a last table gives every placement's
goals side by side.
"""

from __future__ import annotations

import argparse
import asyncio
import http.client
import json
import os
import random
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import redis
import redis.asyncio
import requests
from pymemcache.client.base import Client as Memcache

from cachegrid.client import CacheGridClient, NearCache, SyncCacheGridClient
from cachegrid.testing import free_port, running

KEY = "user:42"
VALUE = {"name": "Alice", "age": 30}
WARMUP = 200  # untimed calls before a row's first block
BLOCK_WARMUP = 5  # and before each later one (the row's objects back in the CPU's caches)
BLOCK = 250


@dataclass
class Row:
    name: str
    kind: str  # "get" or "set": which reference it is compared with
    sync: Callable[[], object] | None = None
    run_async: Callable[[int], Awaitable[list[int]]] | None = None  # times n calls itself


@dataclass
class Servers:
    cachegrid: str  # base URL
    redis_port: int
    memcached_port: int


# -- the servers ------------------------------------------------------------------------------------


def wait_port(port: int, process: subprocess.Popen[bytes], timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{process.args[0]} exited with {process.returncode}")
        try:
            socket.create_connection(("127.0.0.1", port), 0.5).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"{process.args[0]} did not listen on {port} within {timeout} s")


@contextmanager
def daemon(command: list[str], port: int) -> Iterator[None]:
    """``command`` running (listening on ``port``) for the block, stopped after it."""
    if shutil.which(command[0]) is None:
        sys.exit(f"{command[0]} is not installed: apt-get install -y redis-server memcached")
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_port(port, process)
        yield
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)


@contextmanager
def servers() -> Iterator[Servers]:
    redis_port, memcached_port = free_port(), free_port()
    redis_command = [
        "redis-server",
        "--bind",
        "127.0.0.1",
        "--port",
        str(redis_port),
        "--save",
        "",
        "--appendonly",
        "no",
    ]
    with ExitStack() as stack:
        cachegrid = stack.enter_context(running(graceful=False))
        stack.enter_context(daemon(redis_command, redis_port))
        memcached = ["memcached", "-l", "127.0.0.1", "-p", str(memcached_port), "-U", "0"]
        if os.geteuid() == 0:  # memcached will not run as root
            memcached += ["-u", "nobody"]
        stack.enter_context(daemon(memcached, memcached_port))
        yield Servers(cachegrid.url, redis_port, memcached_port)


# -- the rows ---------------------------------------------------------------------------------------


class RequestsClient(SyncCacheGridClient):
    """The sync client sending through a ``requests.Session``, as before its own transport."""

    def _send(self, host, call):  # type: ignore[no-untyped-def]
        return self._open()._send_requests(host, call)


def raw_call(host: str, port: int, request: bytes, http: bool = True) -> Callable[[], bytes]:
    """A socket writing a prepared request and reading until a full answer:
    for HTTP, its head and Content-Length bytes (a PUT's ETag grows a digit
    now and then, so no size is learned once); for Redis, the size of the
    first answer (a GET of a value that does not change). Connected anew
    when the server closed it while the other rows ran."""
    state: dict[str, socket.socket] = {}

    def connect() -> socket.socket:
        sock = socket.create_connection((host, port), 10)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        state["sock"] = sock
        return sock

    def whole(data: bytes, size: int) -> bool:
        if not http:
            return len(data) >= size
        end = data.find(b"\r\n\r\n")
        if end < 0:
            return False
        at = data.lower().find(b"\r\ncontent-length:")
        return len(data) >= end + 4 + int(data[at + 17 : data.find(b"\r\n", at + 2)])

    def read(sock: socket.socket, size: int) -> bytes:
        data = b""
        while not whole(data, size):
            chunk = sock.recv(65536)
            if not chunk:
                if not data:
                    return b""
                raise ConnectionError("the server closed the connection mid-answer")
            data += chunk
        return data

    sock = connect()
    sock.sendall(request)
    size = len(read(sock, 1))

    def call() -> bytes:
        sock = state["sock"]
        sock.sendall(request)
        data = read(sock, size)
        if not data:  # closed while idle: once more on a new connection
            sock.close()
            sock = connect()
            sock.sendall(request)
            data = read(sock, size)
        return data

    return call


LOOP = asyncio.new_event_loop()  # every async row's client lives on it for a placement's whole run
ASYNC_CLIENTS: list[object] = []  # closed on LOOP at the placement's end (close_async_clients)


def async_row(name: str, kind: str, make: Callable[[], object], call: Callable[[object], Awaitable[object]]) -> Row:
    """A row of awaited calls on ``LOOP``: ``make()`` builds the client there, at the row's first block."""
    state: dict[str, object] = {}

    async def run(n: int) -> list[int]:
        if "client" not in state:
            state["client"] = make()
            ASYNC_CLIENTS.append(state["client"])
            for _ in range(WARMUP):
                await call(state["client"])
        client = state["client"]
        times = []
        for _ in range(n):
            started = time.perf_counter_ns()
            await call(client)
            times.append(time.perf_counter_ns() - started)
        return times

    return Row(name, kind, run_async=run)


def rows(at: Servers) -> list[Row]:
    cachegrid = SyncCacheGridClient([at.cachegrid])
    old = RequestsClient([at.cachegrid])
    session = requests.Session()
    item_url = f"{at.cachegrid}/cache/{KEY}"
    host, port = at.cachegrid.removeprefix("http://").split(":")
    connection = http.client.HTTPConnection(host, int(port))

    def http_client_get() -> object:
        try:
            connection.request("GET", f"/cache/{KEY}")
            return json.loads(connection.getresponse().read())
        except (
            http.client.RemoteDisconnected,
            BrokenPipeError,
            ConnectionResetError,
        ):  # closed while idle: http.client reconnects on the next request
            connection.close()
            return http_client_get()

    r = redis.Redis(port=at.redis_port)
    memcache = Memcache(("127.0.0.1", at.memcached_port), default_noreply=False)  # wait for "STORED", as SET does
    cachegrid.set(KEY, VALUE)
    r.set(KEY, json.dumps(VALUE))
    memcache.set(KEY, json.dumps(VALUE))
    cg_request = f"GET /cache/{KEY} HTTP/1.1\r\nHost: {host}:{port}\r\n\r\n".encode()
    cg_put = f"PUT /cache/{KEY} HTTP/1.1\r\nHost: {host}:{port}\r\nContent-Type: application/json\r\n"
    cg_put_request = f"{cg_put}Content-Length: {len(json.dumps(VALUE))}\r\n\r\n{json.dumps(VALUE)}".encode()
    redis_request = f"*2\r\n$3\r\nGET\r\n${len(KEY)}\r\n{KEY}\r\n".encode()
    return [
        Row("CacheGrid sync get", "get", lambda: cachegrid.get(KEY)),
        Row("CacheGrid sync get, through requests (before)", "get", lambda: old.get(KEY)),
        Row("requests.Session().get + json.loads", "get", lambda: session.get(item_url).json()),
        Row("http.client keep-alive GET + json.loads", "get", http_client_get),
        Row("raw socket, prepared GET (CacheGrid floor)", "get", raw_call(host, int(port), cg_request)),
        Row("redis-py GET + json.loads", "get", lambda: json.loads(r.get(KEY))),  # type: ignore[arg-type]
        Row(
            "raw socket, prepared GET (Redis floor)",
            "get",
            raw_call("127.0.0.1", at.redis_port, redis_request, http=False),
        ),
        Row("pymemcache get + json.loads", "get", lambda: json.loads(memcache.get(KEY))),
        async_row(
            "CacheGrid async get",
            "async get",
            lambda: CacheGridClient([at.cachegrid]),
            lambda client: client.get(KEY),  # type: ignore[attr-defined]
        ),
        async_row(
            "redis.asyncio GET + json.loads",
            "async get",
            lambda: redis.asyncio.Redis(port=at.redis_port),
            lambda client: _aloads(client.get(KEY)),  # type: ignore[attr-defined]
        ),
        Row("CacheGrid sync set", "set", lambda: cachegrid.set(KEY, VALUE)),
        Row("CacheGrid sync set, through requests (before)", "set", lambda: old.set(KEY, VALUE)),
        Row("raw socket, prepared PUT (CacheGrid floor)", "set", raw_call(host, int(port), cg_put_request)),
        Row("redis-py SET + json.dumps", "set", lambda: r.set(KEY, json.dumps(VALUE))),
        Row("pymemcache set + json.dumps", "set", lambda: memcache.set(KEY, json.dumps(VALUE))),
        *django_rows(at),
    ]


def near_rows(at: Servers) -> list[Row]:
    """Hits of the near cache: one NearCache shared by a sync and an async
    client, warmed (its stream live, the key kept) before the rounds."""
    near = NearCache()
    client = SyncCacheGridClient([at.cachegrid], near_cache=near)
    deadline = time.monotonic() + 10
    while near.stats()["entries"] == 0:
        if time.monotonic() > deadline:
            raise RuntimeError("the near cache kept nothing within 10 s")
        client.get(KEY)
        time.sleep(0.01)
    return [
        Row("CacheGrid sync get, near cache hit", "get", lambda: client.get(KEY)),
        async_row(
            "CacheGrid async get, near cache hit",
            "async get",
            lambda: CacheGridClient([at.cachegrid], near_cache=near),
            lambda client: client.get(KEY),  # type: ignore[attr-defined]
        ),
    ]


class Watched(NearCache):
    """A near cache that notes when each event of ``KEY`` arrives."""

    def __init__(self) -> None:
        super().__init__()
        self.seen = threading.Event()
        self.at = 0

    def stream_event(self, node: str, kind: str, data: dict[str, Any]) -> None:
        super().stream_event(node, kind, data)
        if data.get("key") == DELAY_KEY:
            self.at = time.perf_counter_ns()
            self.seen.set()


DELAY_KEY = "delay:probe"


def invalidation_delays(at: Servers, writes: int) -> tuple[list[float], int]:
    """For each of ``writes`` writes by one client: the time from its answer
    to another client's near cache receiving the change (0 when the event
    came first), in ms; and how many never arrived (within 1 s)."""
    near = Watched()
    reader = SyncCacheGridClient([at.cachegrid], near_cache=near)
    writer = SyncCacheGridClient([at.cachegrid])
    writer.set(DELAY_KEY, 0)
    deadline = time.monotonic() + 10
    while near.stats()["streams_live"] == 0 and time.monotonic() < deadline:
        reader.get(DELAY_KEY)
        time.sleep(0.01)
    delays, lost = [], 0
    for n in range(writes):
        near.seen.clear()
        writer.set(DELAY_KEY, n)
        answered = time.perf_counter_ns()
        if near.seen.wait(1.0):
            delays.append(max(0, near.at - answered) / 1e6)
        else:
            lost += 1
    near.close()
    return delays, lost


def django_rows(at: Servers) -> list[Row]:
    """Django's cache API on CacheGrid's backend and on Django's own RedisCache
    (both pickle the value, as a Django application's cache does)."""
    import django
    from django.conf import settings
    from django.core.cache import CacheHandler

    if not settings.configured:
        settings.configure()
        django.setup()
    # A handler of this run's servers (the global ``caches`` would keep the
    # first placement's, and each placement starts servers of its own).
    caches = CacheHandler(
        {
            "cachegrid": {"BACKEND": "cachegrid.contrib.django.CacheGridCache", "LOCATION": at.cachegrid},
            "redis": {
                "BACKEND": "django.core.cache.backends.redis.RedisCache",
                "LOCATION": f"redis://127.0.0.1:{at.redis_port}",
            },
        }
    )
    ours, theirs = caches["cachegrid"], caches["redis"]
    ours.set(KEY, VALUE, None)
    theirs.set(KEY, VALUE, None)
    return [
        Row("Django cache.get, CacheGrid backend", "django get", lambda: ours.get(KEY)),
        Row("Django cache.get, Django's RedisCache", "django get", lambda: theirs.get(KEY)),
        Row("Django cache.set, CacheGrid backend", "django set", lambda: ours.set(KEY, VALUE, None)),
        Row("Django cache.set, Django's RedisCache", "django set", lambda: theirs.set(KEY, VALUE, None)),
    ]


async def _aloads(reply: Awaitable[bytes]) -> object:
    return json.loads(await reply)


REFERENCE = {
    "get": "redis-py GET + json.loads",
    "set": "redis-py SET + json.dumps",
    "async get": "redis.asyncio GET + json.loads",
    "django get": "Django cache.get, Django's RedisCache",
    "django set": "Django cache.set, Django's RedisCache",
}


# -- timing -----------------------------------------------------------------------------------------


def close_async_clients() -> None:
    """Close the async rows' clients and their loop; the next placement gets a new loop."""
    global LOOP

    async def close() -> None:
        for client in ASYNC_CLIENTS:
            close = getattr(client, "aclose", None)
            if close is not None:
                await close()

    LOOP.run_until_complete(close())
    LOOP.close()
    ASYNC_CLIENTS.clear()
    LOOP = asyncio.new_event_loop()


def time_row(row: Row, n: int, warmup: int) -> list[int]:
    """``n`` calls of ``row`` (after ``warmup`` untimed ones), each timed, in ns."""
    if row.run_async is not None:
        return LOOP.run_until_complete(row.run_async(n))
    call = row.sync
    assert call is not None
    for _ in range(warmup):
        call()
    clock = time.perf_counter_ns
    times = []
    for _ in range(n):
        started = clock()
        call()
        times.append(clock() - started)
    return times


@dataclass
class Result:
    median: float  # µs: the median of the round medians
    p99: float  # µs: over every call
    ratio: tuple[float, float, float] | None  # ÷ the reference: median, lowest, highest of the rounds' ratios


def measure(table: list[Row], rounds: int, calls: int, block: int, seed: int) -> dict[str, Result]:
    """Each row's figures over ``rounds`` rounds; the rows of one kind
    interleaved in blocks of ``block`` calls (the module's docstring)."""
    shuffle = random.Random(seed)
    kinds: dict[str, list[Row]] = {}
    for row in table:
        kinds.setdefault(row.kind, []).append(row)
    medians: dict[str, list[float]] = {row.name: [] for row in table}
    every: dict[str, list[int]] = {row.name: [] for row in table}
    warmed: set[str] = set()
    for number in range(rounds):
        order = list(kinds)
        shuffle.shuffle(order)
        for kind in order:
            times: dict[str, list[int]] = {row.name: [] for row in kinds[kind]}
            for start in range(0, calls, block):
                turn = kinds[kind][:]
                shuffle.shuffle(turn)
                for row in turn:
                    warmup = BLOCK_WARMUP if row.name in warmed else WARMUP
                    warmed.add(row.name)
                    times[row.name] += time_row(row, min(block, calls - start), warmup)
            for name, taken in times.items():
                medians[name].append(statistics.median(taken) / 1000)
                every[name] += taken
        print(f"round {number + 1}/{rounds} done", file=sys.stderr)
    results = {}
    for row in table:
        reference = REFERENCE[row.kind] if REFERENCE[row.kind] in medians else None
        ratios = (
            sorted(a / b for a, b in zip(medians[row.name], medians[reference], strict=True)) if reference else None
        )
        results[row.name] = Result(
            statistics.median(medians[row.name]),
            statistics.quantiles(every[row.name], n=100)[98] / 1000,
            (statistics.median(ratios), ratios[0], ratios[-1]) if ratios else None,
        )
    return results


def delay_report(delays: list[float], lost: int) -> str:
    if len(delays) < 2:
        return f"Invalidation delay: too few events arrived ({len(delays)}; {lost} lost)."
    p99 = statistics.quantiles(delays, n=100)[98]
    worst = max(delays)
    met = p99 <= 10 and worst <= 50 and lost == 0
    return (
        f"A write answered → another client's near cache receives it, over {len(delays) + lost:,} writes: "
        f"p50 {statistics.median(delays):.2f} ms, p99 {p99:.2f} ms, max {worst:.2f} ms, lost {lost} "
        f"(goal p99 ≤ 10 ms, max ≤ 50 ms, 0 lost: {'met' if met else 'not met'})."
    )


GOALS = (  # (what, row, its limit)
    ("sync GET hit ÷ redis-py GET + json.loads", "CacheGrid sync get", 1.2),
    ("sync SET ÷ redis-py SET + json.dumps", "CacheGrid sync set", 1.3),
    ("async GET ÷ redis.asyncio GET + json.loads", "CacheGrid async get", 1.5),
    ("Django cache.get, CacheGrid ÷ RedisCache", "Django cache.get, CacheGrid backend", 1.2),
)


def ratio_of(results: dict[str, Result], row: Row) -> tuple[float, float, float]:
    """``row``'s ratio to its reference: the rounds' (median, lowest, highest);
    for a row timed apart from its reference, the ratio of the two medians."""
    found = results[row.name].ratio
    if found is not None:
        return found
    only = results[row.name].median / results[REFERENCE[row.kind]].median
    return only, only, only


def report(table: list[Row], results: dict[str, Result], rounds: int, calls: int, block: int) -> str:
    lines = [
        f"Per call, one thread, loopback: {rounds} rounds of {calls:,} calls a row, the rows of a kind "
        f"taking turns in blocks of {block}; median µs: the median of the round medians; p99 over every call; "
        "÷ reference: the median of the rounds' ratios (lowest–highest).",
        "",
        "| call | median µs | p99 µs | ÷ reference |",
        "|---|---:|---:|---:|",
    ]
    by_name = {row.name: row for row in table}
    for row in table:
        middle, low, high = ratio_of(results, row)
        spread = "" if low == high else f" ({low:.2f}–{high:.2f})"
        figures = results[row.name]
        lines.append(f"| {row.name} | {figures.median:,.1f} | {figures.p99:,.1f} | {middle:.2f}×{spread} |")
    lines.append("")
    for what, name, limit in GOALS:
        middle, low, high = ratio_of(results, by_name[name])
        verdict = "met" if middle <= limit else "not met"
        lines.append(f"Goal: {what} ≤ {limit}×: {middle:.2f}× (rounds {low:.2f}–{high:.2f}; {verdict})")
    near = results["CacheGrid sync get, near cache hit"]
    near_ok = near.median <= 2 and near.p99 <= 10
    lines.append(
        f"Goal: near-cache hit, sync, ≤ 2 µs median and ≤ 10 µs p99: {near.median:.2f} µs, p99 {near.p99:.2f} µs "
        f"({'met' if near_ok else 'not met'})"
    )
    return "\n".join(lines)


def parse_cpus(text: str) -> tuple[set[int], set[int]]:
    """``CLIENT:SERVERS`` (each a comma-separated list of CPUs) as two sets; ``''``: two empty ones."""
    if not text:
        return set(), set()
    client, _, server = text.partition(":")
    return {int(cpu) for cpu in client.split(",")}, {int(cpu) for cpu in server.split(",")}


def placement_name(cpus: str) -> str:
    if not cpus:
        return "unpinned"
    client, server = parse_cpus(cpus)
    return (
        "all on CPU " + cpus.partition(":")[0]
        if client == server
        else f"client CPU {cpus.replace(':', ', servers CPU ')}"
    )


def run_placement(cpus: str, args: argparse.Namespace) -> tuple[list[Row], dict[str, Result], str]:
    """Every row measured with the calls and the servers on ``cpus``; the table's rows, results and delay line."""
    everywhere = os.sched_getaffinity(0)
    client_cpus, server_cpus = parse_cpus(cpus)
    os.sched_setaffinity(0, server_cpus or everywhere)  # the servers started below inherit it
    try:
        with servers() as at:
            os.sched_setaffinity(0, client_cpus or everywhere)
            table = rows(at)
            results = measure(table, args.rounds, args.calls, args.block, args.seed)
            # After the others: a near cache follows the server's change stream,
            # whose reader thread would share the GIL with every row timed beside it.
            near_table = near_rows(at)
            results |= measure(near_table, args.rounds, args.calls, args.block, args.seed)
            table += near_table
            delays, lost = invalidation_delays(at, args.writes)
            close_async_clients()
    finally:
        os.sched_setaffinity(0, everywhere)
    return table, results, delay_report(delays, lost)


def placements_table(runs: list[tuple[str, list[Row], dict[str, Result]]]) -> str:
    """Each goal's ratio (and the near-cache hit) in every placement, side by side."""
    lines = [
        "| measure | " + " | ".join(placement_name(cpus) for cpus, _, _ in runs) + " | goal |",
        "|---|" + "---:|" * len(runs) + "---|",
    ]
    for what, name, limit in GOALS:
        cells = []
        for _, table, results in runs:
            middle, low, high = ratio_of(results, next(row for row in table if row.name == name))
            cells.append(f"{middle:.2f}× ({low:.2f}–{high:.2f})")
        lines.append(f"| {what} | " + " | ".join(cells) + f" | ≤ {limit}× |")
    near = [results["CacheGrid sync get, near cache hit"] for _, _, results in runs]
    lines.append(
        "| near-cache hit, sync, median (p99) µs | "
        + " | ".join(f"{hit.median:.2f} ({hit.p99:.2f})" for hit in near)
        + " | ≤ 2 (≤ 10) |"
    )
    return "\n".join(lines)


PLACEMENTS_NOTE = (
    "Where the calls and the servers run moves every figure: on one CPU a call is the CPU work of "
    "both sides; on two, each call also waits for a wake-up across CPUs (the same for every row); "
    "unpinned, the kernel switches between the two from one stretch to the next. The first "
    "placement's table is above; every placement's goals:"
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--calls", type=int, default=3000)
    parser.add_argument("--block", type=int, default=BLOCK, help="calls a row makes before the next row's turn")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--cpus",
        nargs="+",
        default=["0:1", "0:0", ""] if len(os.sched_getaffinity(0)) >= 2 else [""],
        help="placements, each CLIENT:SERVERS, the CPUs of the calls and of the servers ('' = the kernel's choice)",
    )
    parser.add_argument("--writes", type=int, default=10_000, help="writes timed for the invalidation delay")
    parser.add_argument("--output", type=Path, help="also write the tables to this Markdown file")
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # stop the servers on the way out
    runs = []
    for cpus in args.cpus:
        print(f"placement: {placement_name(cpus)}", file=sys.stderr)
        table, results, delays = run_placement(cpus, args)
        runs.append((cpus, table, results))
        if len(runs) == 1:
            first = f"Placement: {placement_name(cpus)}.\n\n" + report(
                table, results, args.rounds, args.calls, args.block
            )
            first += "\n\n" + delays
    text = first
    if len(runs) > 1:
        text += f"\n\n## Placements\n\n{PLACEMENTS_NOTE}\n\n{placements_table(runs)}"
    print(text)
    if args.output:
        args.output.write_text(f"# Client per-call benchmark\n\n{text}\n")


if __name__ == "__main__":
    main()
