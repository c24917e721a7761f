"""The load generator behind ``cachegrid loadtest``: HTTP load on a CacheGrid server.

It has to measure the server, not itself, so it works the way wrk and
redis-benchmark do rather than the way a Python HTTP client does:

- **Pre-built requests.** Every request is bytes made from templates built
  once (the GET of each key of a small keyspace is built in advance, other
  requests are one ``%`` formatting of a bytes template); nothing goes through
  an HTTP library.
- **A minimal response parser.** The server always frames its responses with
  Content-Length, so a response is complete when ``\\r\\n\\r\\n`` and that many
  body bytes have arrived; only the status code and Content-Length (and a
  ``Connection: close``) are read, and the body is skipped.
- **Non-blocking sockets and one ``selectors`` loop per process**, each
  connection keeping ``pipeline`` requests in flight (HTTP/1.1 pipelining;
  depth 1 is plain keep-alive, like wrk). A connection sends its next request
  as soon as a response completes; the send times of the requests in flight
  sit in a FIFO per connection, since responses come back in order.
- **Several processes** (``processes``, default the number of CPUs), each
  with its share of the connections and of the requests, since one Python
  process saturates one core long before a server does. They connect, say
  they are ready, and start together on one event; at the end each one sends
  back its counts and a latency histogram, and the parent merges them.

Latencies go into a log-linear histogram of microseconds (exact below
2048 us, then 11 significant bits, i.e. within 0.1 %), so memory stays bounded
on a long ``--duration`` run and merging the processes' samples is adding
counts. The maximum is kept exactly.

Every loop is bounded: by the request budget (``--requests``) or the deadline
(``--duration``), by a stop flag the parent raises on Ctrl-C, and by an idle
timeout when the server stops answering; requests still in flight then count
as errors. The keyspace is filled first, untimed, with batch sets over one
plain connection, which doubles as the check that the server is up and
accepts the token.
"""

from __future__ import annotations

import http.client
import json
import multiprocessing
import os
import random
import selectors
import signal
import socket
import time
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

IDLE_TIMEOUT = 10.0  # seconds without any response before requests in flight count as timeouts
CONNECT_TIMEOUT = 5.0
START_TIMEOUT = 30.0  # seconds for the worker processes to connect and report ready
REPORT_EVERY = 0.1  # seconds between a worker's progress updates
FILL_CHUNK = 1000  # items per batch set while filling (the server's default max_batch_size)
PREBUILT_KEYS = 1 << 16  # up to this keyspace, every single-key GET is built in advance
EXACT_US = 2048  # the histogram is exact below this many microseconds
RECV_SIZE = 65536


class LoadError(Exception):
    """The load test cannot run; ``kind`` is unavailable, unauthorized, refused
    or server_error."""

    def __init__(self, message: str, kind: str) -> None:
        super().__init__(message)
        self.kind = kind


@dataclass(frozen=True)
class Target:
    host: str
    port: int
    token: str | None = None

    @classmethod
    def parse(cls, url: str, token: str | None = None) -> Target:
        """ValueError unless ``url`` is http://host[:port][/]."""
        parts = urlsplit(url)
        if parts.scheme != "http":
            raise ValueError(f"{url!r}: only http:// URLs are supported")
        if not parts.hostname:
            raise ValueError(f"{url!r}: no host")
        if parts.path not in ("", "/") or parts.query:
            raise ValueError(f"{url!r}: give the server's base URL, without a path")
        try:
            port = parts.port or 80
        except ValueError:
            raise ValueError(f"{url!r}: the port is not a number from 0 to 65535") from None
        return cls(parts.hostname, port, token or None)

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"} if self.token else {}


@dataclass(frozen=True)
class Plan:
    """What to run. ``requests`` or ``duration`` bounds it; ``get_share`` is the
    fraction of requests that are GETs; ``batch`` > 0 sends batch requests of
    that many keys."""

    requests: int | None = 100_000
    duration: float | None = None
    concurrency: int = 32
    get_share: float = 0.8
    keyspace: int = 10_000
    value_size: int = 32
    batch: int = 0
    pipeline: int = 1
    processes: int = 1
    seed: int | None = None


# --------------------------------------------------------------------------- requests


def value_json(size: int) -> bytes:
    """The JSON string value: ``size`` characters between the quotes."""
    return b'"' + b"x" * size + b'"'


class Requests:
    """Builds the bytes of each kind of request from templates made once."""

    def __init__(self, target: Target, plan: Plan) -> None:
        host = f"Host: {target.url.removeprefix('http://')}\r\n"
        auth = f"Authorization: Bearer {target.token}\r\n" if target.token else ""
        common = (host + auth).encode()
        self.keyspace = plan.keyspace
        self.batch = plan.batch
        self.value = value_json(plan.value_size)
        self.get_head = b"GET /cache/key:%d HTTP/1.1\r\n" + common + b"\r\n"
        self.set_head = (b"PUT /cache/key:%d HTTP/1.1\r\n" + common
                         + b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n")
        self.post_head = (b"POST /cache/batch/%s HTTP/1.1\r\n" + common
                          + b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n")
        # The GETs of a small keyspace are built in advance: a list lookup per request.
        self.gets = ([self.get_head % key for key in range(plan.keyspace)]
                     if plan.batch == 0 and plan.keyspace <= PREBUILT_KEYS else None)

    def get(self, key: int) -> bytes:
        if self.gets is not None:
            return self.gets[key]
        return self.get_head % key

    def set(self, key: int) -> bytes:
        return self.set_head % (key, len(self.value)) + self.value

    def batch_keys(self, first: int) -> list[int]:
        """``batch`` distinct keys: a window of the keyspace from ``first``,
        wrapping around (distinct, so every key counts once)."""
        return [(first + i) % self.keyspace for i in range(self.batch)]

    def batch_get(self, first: int) -> bytes:
        body = b'{"keys":["' + b'","'.join(b"key:%d" % k for k in self.batch_keys(first)) + b'"]}'
        return self.post_head % (b"get", len(body)) + body

    def batch_set(self, first: int) -> bytes:
        pairs = b",".join(b'"key:%d":' % k + self.value for k in self.batch_keys(first))
        body = b'{"items":{' + pairs + b"}}"
        return self.post_head % (b"set", len(body)) + body


# --------------------------------------------------------------------------- histogram


def bucket(us: int) -> int:
    """The histogram bucket of ``us``: exact below EXACT_US, then rounded down
    to 11 significant bits."""
    if us < EXACT_US:
        return us
    shift = us.bit_length() - 11
    return us >> shift << shift


def percentiles(histogram: dict[int, int], fractions: tuple[float, ...]) -> list[int]:
    """Nearest-rank percentiles (in the histogram's unit) of a histogram."""
    total = sum(histogram.values())
    if not total:
        return [0 for _ in fractions]
    ranks = [max(1, min(total, int(fraction * total + 0.999999))) for fraction in fractions]
    found: list[int] = []
    seen = 0
    items = sorted(histogram.items())
    index = 0
    for rank in ranks:
        while seen < rank:
            seen += items[index][1]
            index += 1
        found.append(items[index - 1][0])
    return found


# --------------------------------------------------------------------------- one worker


class Connection:
    __slots__ = ("buffer", "closing", "dead", "need", "pending", "sent", "sock")

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.buffer = b""
        self.sent: deque[tuple[float, int, bool]] = deque()  # (send time, keys, is a get) per request in flight
        self.pending = b""  # bytes the socket did not take yet
        self.need = -1  # total length of the response being read, once its head is parsed
        self.closing = False  # the server said Connection: close
        self.dead = False


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


def _connect(target: Target, timeout: float) -> socket.socket:
    sock = socket.create_connection((target.host, target.port), timeout=timeout)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.setblocking(False)
    return sock


def _error_kind(error: BaseException) -> str:
    if isinstance(error, ConnectionRefusedError):
        return "connection refused"
    if isinstance(error, ConnectionResetError):
        return "connection reset"
    if isinstance(error, (BrokenPipeError, ConnectionAbortedError)):
        return "connection closed"
    if isinstance(error, (TimeoutError, socket.timeout)):
        return "timeout"
    return f"connection error ({type(error).__name__})"


def run_worker(target: Target, plan: Plan, connections: int, budget: int | None, index: int,
               ready: Callable[[WorkerResult | None], None], wait_go: Callable[[], float | None],
               progress: Any, stop: Any) -> WorkerResult:
    """One process's share of the load: ``connections`` connections and
    ``budget`` requests (None: until the deadline). ``ready(problem)`` is
    called once connected; ``wait_go()`` returns the shared start time (or None
    to give up); ``progress[index]`` gets the count done; ``stop.value`` set
    means stop sending."""
    result = WorkerResult()
    build = Requests(target, plan)
    rng = random.Random(None if plan.seed is None else plan.seed * 1000 + index)
    socks: list[Connection] = []
    try:
        for _ in range(connections):
            socks.append(Connection(_connect(target, CONNECT_TIMEOUT)))
    except OSError as error:
        for conn in socks:
            conn.sock.close()
        result.problem = f"cannot connect to {target.url}: {error.strerror or error}"
        ready(result)
        return result
    ready(None)
    start = wait_go()
    if start is None:
        for conn in socks:
            conn.sock.close()
        return result

    selector = selectors.DefaultSelector()
    for conn in socks:
        selector.register(conn.sock, selectors.EVENT_READ, conn)

    clock = time.perf_counter
    rand = rng.random
    keyspace = plan.keyspace
    get_share = plan.get_share
    batch = plan.batch
    keys_per_request = batch or 1
    get_one, set_one, batch_get, batch_set = build.get, build.set, build.batch_get, build.batch_set
    histogram = result.histogram
    errors = result.errors
    remaining = budget if budget is not None else -1  # -1: no count, only the deadline
    deadline = start + plan.duration if plan.duration is not None else None
    # The deadline is on the shared monotonic clock; the loop runs on perf_counter.
    offset = clock() - time.monotonic()
    stop_at = None if deadline is None else deadline + offset
    in_flight = 0
    alive = len(socks)
    done = gets = sets = keys = 0
    max_us = 0
    sending = True  # false once the budget, the deadline or the stop flag says so

    def next_request(now: float) -> tuple[bytes, tuple[float, int, bool]]:
        is_get = rand() < get_share
        key = int(rand() * keyspace)
        if batch:
            data = batch_get(key) if is_get else batch_set(key)
        else:
            data = get_one(key) if is_get else set_one(key)
        return data, (now, keys_per_request, is_get)

    def issue(conn: Connection, count: int, now: float) -> int:
        """Send up to ``count`` new requests on ``conn``; the number sent."""
        nonlocal remaining, in_flight
        if remaining >= 0:
            count = min(count, remaining)
            remaining -= count
        if count <= 0:
            return 0
        chunks = []
        for _ in range(count):
            data, record = next_request(now)
            chunks.append(data)
            conn.sent.append(record)
        in_flight += count
        write(conn, b"".join(chunks) if count > 1 else chunks[0])
        return count

    def write(conn: Connection, data: bytes) -> None:
        if conn.pending:
            conn.pending += data
            return
        try:
            sent = conn.sock.send(data)
        except BlockingIOError:
            sent = 0
        except OSError as error:
            fail(conn, _error_kind(error))
            return
        if sent < len(data):  # rare with small requests: wait until the socket can take the rest
            conn.pending = data[sent:]
            selector.modify(conn.sock, selectors.EVENT_READ | selectors.EVENT_WRITE, conn)

    def fail(conn: Connection, kind: str) -> None:
        """The connection broke: its requests in flight are errors; reconnect once."""
        nonlocal in_flight, done
        lost = len(conn.sent)
        if lost:
            errors[kind] += lost
            in_flight -= lost
            done += lost
        conn.sent.clear()
        retire(conn)
        replace(conn)

    def retire(conn: Connection) -> None:
        nonlocal alive
        if conn.dead:
            return
        alive -= 1
        try:
            selector.unregister(conn.sock)
        except (KeyError, ValueError):
            pass
        conn.sock.close()
        conn.dead = True

    def replace(conn: Connection) -> None:
        """A new connection in place of a closed one, while there is work;
        if the server cannot be reached, the slot stays closed."""
        nonlocal remaining, done, alive
        if not sending or remaining == 0 or (stop_at is not None and clock() >= stop_at):
            return
        try:
            fresh = Connection(_connect(target, CONNECT_TIMEOUT))
        except OSError as error:
            # One request could not be sent: an error, out of the budget.
            errors[_error_kind(error)] += 1
            done += 1
            if remaining > 0:
                remaining -= 1
            return
        socks.append(fresh)
        alive += 1
        selector.register(fresh.sock, selectors.EVENT_READ, fresh)
        issue(fresh, plan.pipeline, clock())

    # One receive buffer, reused: recv() would allocate one per call, and one
    # above glibc's mmap threshold (128 KiB) costs three more syscalls each time.
    receive = bytearray(RECV_SIZE)
    view = memoryview(receive)
    cpu_before = time.process_time()
    result.started = time.monotonic()
    now = clock()
    for conn in list(socks):  # a copy: a connection that fails at once is replaced (appended)
        issue(conn, plan.pipeline, now)
    last_answer = now
    next_report = now + REPORT_EVERY
    while True:
        if sending and (remaining == 0 or (stop_at is not None and now >= stop_at)):
            sending = False
        if not sending and in_flight == 0:
            break
        if not alive:
            break
        events = selector.select(REPORT_EVERY)
        now = clock()
        for key, mask in events:
            conn = key.data
            if conn.dead:
                continue
            if mask & selectors.EVENT_WRITE and conn.pending:
                data, conn.pending = conn.pending, b""
                selector.modify(conn.sock, selectors.EVENT_READ, conn)
                write(conn, data)
                if conn.dead:
                    continue
            if not mask & selectors.EVENT_READ:
                continue
            try:
                got = conn.sock.recv_into(receive)
            except BlockingIOError:
                continue
            except OSError as error:
                fail(conn, _error_kind(error))
                continue
            chunk = view[:got].tobytes()
            if not got:  # the server closed the connection
                if conn.sent:
                    fail(conn, "connection closed")
                else:
                    retire(conn)
                    replace(conn)
                continue
            last_answer = now
            buffer = conn.buffer + chunk if conn.buffer else chunk
            answered = 0
            while True:
                need = conn.need
                if need < 0:
                    end = buffer.find(b"\r\n\r\n")
                    if end < 0:
                        break
                    head = buffer[:end]
                    at = head.find(b"ontent-length:")
                    if at < 0:
                        lower = head.lower()
                        at = lower.find(b"content-length:") + 1
                    line_end = head.find(b"\r", at)
                    try:
                        if at <= 0 or not head.startswith(b"HTTP/1."):
                            raise ValueError
                        need = end + 4 + int(head[at + 14:line_end if line_end > 0 else len(head)])
                    except ValueError:  # not HTTP, or not framed by Content-Length: give up this connection
                        conn.buffer = b""
                        fail(conn, "bad response")
                        buffer = b""
                        break
                    conn.need = need
                    # The cheap test first: lower() only when "lose" is there at all.
                    if b"lose" in head and b"connection: close" in head.lower():
                        conn.closing = True
                if len(buffer) < need:
                    break
                status = buffer[9:12]
                buffer = buffer[need:]
                conn.need = -1
                sent_at, nkeys, is_get = conn.sent.popleft()
                in_flight -= 1
                done += 1
                answered += 1
                us = int((now - sent_at) * 1e6)
                histogram[us if us < EXACT_US else bucket(us)] += 1
                if us > max_us:
                    max_us = us
                if status[0] == 50:  # b"2"
                    if is_get:
                        gets += 1
                    else:
                        sets += 1
                    keys += nkeys
                else:
                    errors["HTTP " + status.decode("ascii", "replace")] += 1
            if conn.dead:
                continue
            conn.buffer = buffer
            if conn.closing:
                if not conn.sent:  # everything answered: close and open a new one
                    retire(conn)
                    replace(conn)
                continue
            if answered and sending:
                if stop_at is not None and now >= stop_at:
                    sending = False
                else:
                    issue(conn, answered, now)
        if now >= next_report:
            next_report = now + REPORT_EVERY
            progress[index] = done
            if stop.value:
                sending = False
            if in_flight and now - last_answer > IDLE_TIMEOUT:
                for conn in socks:
                    if not conn.dead and conn.sent:
                        errors["timeout"] += len(conn.sent)
                        done += len(conn.sent)
                        in_flight -= len(conn.sent)
                        conn.sent.clear()
                        retire(conn)
                sending = False
    result.finished = time.monotonic()
    result.cpu_seconds = time.process_time() - cpu_before
    # A worker can end with requests it never got to send (every connection
    # closed); they are not counted: requests are what was sent or failed.
    for conn in socks:
        if not conn.dead:
            conn.sock.close()
    selector.close()
    progress[index] = done
    result.requests = done
    result.gets = gets
    result.sets = sets
    result.keys = keys
    result.max_us = max_us
    return result


# --------------------------------------------------------------------------- the processes


def _worker_main(target: Target, plan: Plan, connections: int, budget: int | None, index: int,
                 pipe: Any, go: Any, start_time: Any, progress: Any, stop: Any) -> None:
    # Ctrl-C reaches the whole process group: the parent handles it by raising
    # the stop flag, so the workers finish and report what they measured.
    signal.signal(signal.SIGINT, signal.SIG_IGN)

    def ready(problem: WorkerResult | None) -> None:
        pipe.send(("ready", problem))

    def wait_go() -> float | None:
        if not go.wait(START_TIMEOUT) or stop.value:
            return None
        return start_time.value

    try:
        result = run_worker(target, plan, connections, budget, index, ready, wait_go, progress, stop)
        pipe.send(("done", result))
    except BaseException as error:  # report, never die silently: the parent would wait for nothing
        pipe.send(("crashed", f"{type(error).__name__}: {error}"))
    finally:
        pipe.close()


def split(total: int, parts: int) -> list[int]:
    """``total`` in ``parts`` shares that differ by at most one."""
    return [total // parts + (1 if i < total % parts else 0) for i in range(parts)]


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
    histogram: Counter[int] = Counter()
    errors: Counter[str] = Counter()
    for result in results:
        histogram.update(result.histogram)
        errors.update(result.errors)
    p50, p95, p99 = percentiles(histogram, (0.50, 0.95, 0.99))
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
        latency_ms={name: round(us / 1000, 3) for name, us in
                    (("p50", p50), ("p95", p95), ("p99", p99), ("max", max_us))},
        concurrency=connections,
        processes=len(results),
        batch=plan.batch,
        pipeline=plan.pipeline,
    )


def run(target: Target, plan: Plan, on_progress: Callable[[int, float], None] | None = None) -> Report:
    """Fill the keyspace, run the plan over ``plan.processes`` processes, merge.

    ``on_progress(requests done, seconds elapsed)`` is called about ten times a
    second from this process. Ctrl-C stops the load and reports what was
    measured so far. LoadError when the server cannot be used."""
    if plan.get_share > 0:
        fill(target, plan)
    else:
        check(target)
    processes = max(1, min(plan.processes, plan.concurrency))
    shares = split(plan.concurrency, processes)
    budgets: list[int | None] = (
        [None] * processes if plan.requests is None
        # Each process gets requests in proportion to its connections.
        else [plan.requests * share // plan.concurrency for share in shares]
    )
    if plan.requests is not None:
        for i in range(plan.requests - sum(b or 0 for b in budgets)):
            budgets[i % processes] = (budgets[i % processes] or 0) + 1
    # fork where there is one: the children need nothing but this module's
    # code and start at once; the parent has no threads yet at this point.
    methods = multiprocessing.get_all_start_methods()
    context: Any = multiprocessing.get_context("fork" if "fork" in methods else "spawn")
    go = context.Event()
    start_time = context.Value("d", 0.0, lock=False)
    progress = context.Array("q", processes, lock=False)
    stop = context.Value("b", 0, lock=False)
    workers = []
    pipes = []
    for index in range(processes):
        receiver, sender = context.Pipe(duplex=False)
        process = context.Process(
            target=_worker_main, name=f"cachegrid-loadtest-{index}", daemon=True,
            args=(target, plan, shares[index], budgets[index], index, sender, go, start_time, progress, stop),
        )
        process.start()
        sender.close()
        workers.append(process)
        pipes.append(receiver)
    try:
        return _drive(target, plan, workers, pipes, go, start_time, progress, stop, on_progress)
    finally:
        stop.value = 1
        go.set()
        for process in workers:
            process.join(timeout=5)
            if process.is_alive():
                process.kill()
                process.join(timeout=5)
        for pipe in pipes:
            pipe.close()


def _drive(target: Target, plan: Plan, workers: list[Any], pipes: list[Any], go: Any, start_time: Any,
           progress: Any, stop: Any, on_progress: Callable[[int, float], None] | None) -> Report:
    """Wait until every worker is connected, start them together, follow their
    progress, collect their results."""
    deadline = time.monotonic() + START_TIMEOUT
    for index, pipe in enumerate(pipes):  # all connected, or the first reason why not
        message = _receive(pipe, workers[index], deadline)
        if message[0] != "ready":
            raise LoadError(f"load worker {index} failed: {message[1]}", "unavailable")
        if message[1] is not None:
            raise LoadError(message[1].problem, "unavailable")
    start_time.value = time.monotonic()
    go.set()
    results: list[WorkerResult | None] = [None] * len(pipes)
    # The workers stop by themselves (budget, deadline, idle timeout); this is
    # only for one that hangs in spite of that: no progress for a long time.
    stalled_after = IDLE_TIMEOUT * 3
    last_count, last_change = -1, time.monotonic()
    interrupted = False
    while any(result is None for result in results):
        try:
            for index, pipe in enumerate(pipes):
                if results[index] is None and pipe.poll(0.1 / len(pipes)):
                    kind, payload = _receive(pipe, workers[index], time.monotonic() + stalled_after)
                    if kind != "done":
                        raise LoadError(f"load worker {index} failed: {payload}", "unavailable")
                    results[index] = payload
            count, now = sum(progress), time.monotonic()
            if on_progress is not None:
                on_progress(count, now - start_time.value)
            if count != last_count:
                last_count, last_change = count, now
            elif now - last_change > stalled_after:
                raise LoadError(f"the load workers made no progress for {stalled_after:g} s", "unavailable")
        except KeyboardInterrupt:
            if interrupted:  # a second Ctrl-C: give up on the results
                raise
            interrupted = True
            stop.value = 1
    return merge(target, plan, plan.concurrency, [r for r in results if r is not None])


def _receive(pipe: Any, process: Any, deadline: float) -> tuple[str, Any]:
    while not pipe.poll(0.05):
        if not process.is_alive() and not pipe.poll(0):
            return ("crashed", f"exited with code {process.exitcode}")
        if time.monotonic() > deadline:
            return ("crashed", "no answer in time")
    try:
        return pipe.recv()
    except EOFError:
        return ("crashed", f"exited with code {process.exitcode}")


# --------------------------------------------------------------------------- plain HTTP calls


def request(target: Target, method: str, path: str, body: Any = None, timeout: float = 30.0) -> tuple[int, Any]:
    """One request over a fresh connection: (status, decoded JSON body).
    LoadError when no server answers or it refuses or fails."""
    connection = http.client.HTTPConnection(target.host, target.port, timeout=timeout)
    headers = target.headers()
    payload = None
    if body is not None:
        payload = json.dumps(body, separators=(",", ":")).encode()
        headers["Content-Type"] = "application/json"
    try:
        connection.request(method, path, body=payload, headers=headers)
        response = connection.getresponse()
        status, data = response.status, response.read()
    except OSError as error:
        reason = error.strerror or str(error) or type(error).__name__
        raise LoadError(f"no CacheGrid server answered at {target.url}: {reason}", "unavailable") from None
    except http.client.HTTPException as error:
        raise LoadError(f"{target.url} did not answer in HTTP ({type(error).__name__})", "unavailable") from None
    finally:
        connection.close()
    try:
        document = json.loads(data) if data else None
    except ValueError:
        document = None
    if status >= 400:
        detail = document.get("message") or document.get("error") if isinstance(document, dict) else None
        if status == 401:
            detail = "the server needs a bearer token (--token or CACHEGRID_AUTH_TOKEN)" if not target.token \
                else "the server did not accept the token"
        text = f"{method} {path}: HTTP {status}" + (f": {detail}" if detail else "")
        raise LoadError(text, "unauthorized" if status == 401 else "refused" if status < 500 else "server_error")
    return status, document


def check(target: Target) -> None:
    """LoadError unless the server answers and accepts the token."""
    request(target, "GET", "/stats", timeout=CONNECT_TIMEOUT * 2)


def fill(target: Target, plan: Plan) -> None:
    """Store every key of the keyspace (untimed), so that GETs hit."""
    value = json.loads(value_json(plan.value_size))
    # Batches of at most FILL_CHUNK items and about 4 MiB (the server's body limit is larger).
    chunk = max(1, min(FILL_CHUNK, (4 << 20) // (plan.value_size + 32)))
    first = 0
    while first < plan.keyspace:
        last = min(plan.keyspace, first + chunk)
        items = {f"key:{key}": value for key in range(first, last)}
        try:
            request(target, "POST", "/cache/batch/set", {"items": items})
        except LoadError as error:
            # A server with a smaller max_batch_size: use smaller batches.
            if "HTTP 413" in str(error) and chunk > 1:
                chunk = max(1, chunk // 4)
                continue
            raise
        first = last


def server_side(target: Target, operations: int, kind: str) -> dict[str, Any]:
    """The server's own engine load test (``POST /test/load``): its answer."""
    path = f"/test/load?num_operations={operations}&operation_type={kind}"
    # It runs on the server in the request: allow it time for a large count.
    return request(target, "POST", path, timeout=600.0)[1]


def default_processes() -> int:
    return os.cpu_count() or 1
