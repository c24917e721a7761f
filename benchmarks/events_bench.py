"""With ÷ without: the default server's GET latency while 100 ``GET /events`` streams are open.

Run it on demand (it is not a test; it needs ``wrk``)::

    .venv/bin/python benchmarks/events_bench.py [--rounds 5] [--duration 5] [--warmup 1]
        [--subscribers 100] [--get-share 0.9] [--seed 0] [--output docs/benchmarks-events.md]

What it measures
----------------
The goal of the change stream: a server with readers of ``/events`` serves
every other request about as fast as one without (GET p99 with 100 open
streams ÷ without, the medians of an interleaved run, at most 1.2×). Two
conditions of the same server:

- **without**: ``cachegrid serve --port N`` with its defaults (the worker
  the defaults choose, meinheld where CacheGrid's build of it is installed;
  snapshots off, as every benchmark runs), no subscriber;
- **with**: the same, plus ``--subscribers`` (100) streams, each a raw socket
  on 127.0.0.1 that sent ``GET /events HTTP/1.1``. One thread of this script
  drains all of them (``selectors``, a pass every 10 ms), so that no queue
  ever overflows and every subscriber stays connected; it counts the events
  each one gets. ``--subscribers 0`` makes an A/A run (no stream on either
  server), whose ratios measure the noise.

and two cells, each ``wrk -t1 -c32 --latency`` for ``--duration`` seconds:

- **GET hit** of ``user:000042``: no change, so no event flows; this is the
  cost of the streams merely being open (the engine's change hook installed,
  100 greenlets suspended, their heartbeats);
- **mix**: GETs and PUTs (``--get-share`` GETs, the rest PUTs of the same
  value) over 1,000 stored keys (``lua/mixed.lua``); every PUT is an event
  sent to all the subscribers, so this is the cost of the stream at work.
  Its p99 covers both methods.

How
---
The machine is small and shared, so nothing is compared with another run.
Each round starts two fresh servers of the same tree and settings, one for
each condition (the streams cannot be opened and closed on one server
between runs: a closed stream is noticed at its next write, up to a
heartbeat later), stores the keys in both, opens the streams on the "with"
one (and checks each was answered 200 and got its opening ``reset``), warms
every (condition, cell) pair up for ``--warmup`` seconds, then runs every
pair once in a shuffled order (a seeded shuffle per round, so a run can be
repeated), so that a cell's two conditions are measured close in time.
Before each run, and after each run on "with", the benchmark waits until
the streams have read every event sent (none for 0.3 s), so that a mix's
events still on their way do not fall into the next run. While one server
is measured the other idles (the "with" one with its streams open: a timer
tick per stream a second, a heartbeat every 5 s). After the runs, every
stream must still be open and have been sent no second reset (a subscriber
that falls behind is sent one and cut off), and each worker must be the same
process. Per cell the report gives each round's req/s and p99 of both
conditions, their medians, the ratios of the medians (with ÷ without) and
the spread of the per-round ratios (min–max, and the interquartile range
from 5 rounds on).

``events_max_subscribers`` (cachegrid/config.py) must allow the streams: when
its default is below ``--subscribers`` the run sets
``CACHEGRID_EVENTS_MAX_SUBSCRIBERS`` for both conditions and the report says
so. Everything listens on 127.0.0.1 on free ports, every wrk run and every
wait is bounded, and the streams and the server are closed at the end of each
condition, on errors and on Ctrl-C or SIGTERM. The server and wrk handling is
``benchmarks/harness.py``'s, the tree checks ``ab_fast_default.py``'s.
"""

from __future__ import annotations

import argparse
import datetime
import os
import random
import selectors
import signal
import socket
import statistics
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from ab_fast_default import (
    Build,
    check_worker_environment,
    describe_path,
    package_digest,
    ratio_spread,
    times,
    verify_imports,
    worker_kind,
)
from harness import (
    HERE,
    Run,
    Server,
    Workload,
    command_line,
    exit_on_sigterm,
    key,
    log,
    machine_section,
    ms,
    port_only,
    preload,
    publish,
    require_tools,
    run_wrk,
    table,
)

from cachegrid.config import Settings

ROOT = HERE.parent
CONNECTIONS = 32
WRK_THREADS = 1
KEYSPACE = 1000  # keys stored for the mix (the GET's key is one of them)
HIT_KEY = key(42)
OPEN_TIMEOUT = 20.0  # seconds for all the streams to be answered
CONDITIONS = ("without", "with")
PAUSE = 0.01  # seconds between two passes of the draining thread


# -- the subscribers -------------------------------------------------------------


@dataclass
class Stream:
    """One subscriber's socket and what it has read."""

    sock: socket.socket
    head: bytes = b""  # the status line and headers, until they are complete
    status: int = 0
    events: int = 0  # "event: " lines read (the opening reset included)
    resets: int = 0
    ended: bool = False  # the server closed it
    tail: bytes = b""  # the last bytes read, so that a line split across reads is still counted


EVENT = b"\nevent: "
RESET = b"\nevent: reset"


class Subscribers:
    """``count`` open ``GET /events`` streams, drained by one thread."""

    def __init__(self, port: int, count: int) -> None:
        self.port = port
        self.streams: list[Stream] = []
        self.selector = selectors.DefaultSelector()
        self.stop_flag = threading.Event()
        self.lock = threading.Lock()  # the counters, read by the main thread
        self.cpu_seconds = 0.0  # of the draining thread
        self.thread = threading.Thread(target=self._drain, name="events-drain", daemon=True)
        request = f"GET /events HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nAccept: text/event-stream\r\n\r\n".encode()
        try:
            for _ in range(count):
                sock = socket.create_connection(("127.0.0.1", port), timeout=10)
                stream = Stream(sock)
                self.streams.append(stream)
                sock.sendall(request)
                sock.setblocking(False)
                self.selector.register(sock, selectors.EVENT_READ, stream)
            self.thread.start()
            self._wait_open(count)
        except BaseException:
            self.close()
            raise

    def _wait_open(self, count: int) -> None:
        deadline = time.monotonic() + OPEN_TIMEOUT
        while time.monotonic() < deadline:
            with self.lock:
                ready = sum(1 for s in self.streams if s.status and s.resets)
                refused = [s.status for s in self.streams if s.status not in (0, 200)]
                ended = sum(1 for s in self.streams if s.ended)
            if refused or ended:
                raise SystemExit(f"/events: {len(refused)} streams answered {sorted(set(refused))}, {ended} closed")
            if ready == count:
                return
            time.sleep(0.05)
        raise SystemExit(f"/events: only {ready} of {count} streams were answered within {OPEN_TIMEOUT:g} s")

    def _drain(self) -> None:
        started = time.thread_time()
        try:
            while not self.stop_flag.is_set():
                for selector_key, _ in self.selector.select(timeout=0.1):
                    self._read(selector_key.data)
                # A pause lets a few events gather in each socket, so that one recv
                # reads several: this thread takes less of the CPU the server needs.
                # (A stream's queue holds thousands: none overflows meanwhile.)
                time.sleep(PAUSE)
        finally:
            self.cpu_seconds = time.thread_time() - started

    def _read(self, stream: Stream) -> None:
        try:
            data = stream.sock.recv(262144)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            data = b""
        with self.lock:
            if not data:
                stream.ended = True
                self.selector.unregister(stream.sock)
                return
            if not stream.status:
                stream.head += data
                if b"\r\n\r\n" not in stream.head:
                    return
                head, _, data = stream.head.partition(b"\r\n\r\n")
                stream.status = int(head.split(b" ", 2)[1])
                stream.head = b""
                data = b"\n" + data  # the first event line starts the body
            # Chunked framing only adds lines of hex sizes: counting the
            # event lines of what came (with the last few bytes before it) is enough.
            window = stream.tail + data
            stream.events += window.count(EVENT)
            stream.resets += window.count(RESET)
            stream.tail = data[-(len(RESET) - 1) :]

    def settle(self, quiet: float = 0.3, timeout: float = 15.0) -> None:
        """Returns once no event has come for ``quiet`` seconds (at most ``timeout`` seconds)."""
        deadline = time.monotonic() + timeout
        seen = self.counts()[0]
        while time.monotonic() < deadline:
            time.sleep(quiet)
            now = self.counts()[0]
            if now == seen:
                return
            seen = now
        raise SystemExit(f"the streams were still receiving events after {timeout:g} s")

    def counts(self) -> tuple[int, int, int]:
        """Events read by all the streams, streams with more than one reset, streams ended."""
        with self.lock:
            return (
                sum(s.events for s in self.streams),
                sum(1 for s in self.streams if s.resets > 1),
                sum(1 for s in self.streams if s.ended),
            )

    def close(self) -> None:
        self.stop_flag.set()
        if self.thread.is_alive():
            self.thread.join(timeout=5)
        for stream in self.streams:
            try:
                stream.sock.close()
            except OSError:
                pass
        self.selector.close()


# -- the rounds ------------------------------------------------------------------


@dataclass
class Cell:
    workload: Workload
    runs: dict[str, list[Run]] = field(default_factory=lambda: {c: [] for c in CONDITIONS})
    events: list[int] = field(default_factory=list)  # events read per stream, in each "with" run

    def median(self, condition: str, attribute: str) -> float:
        return statistics.median(getattr(run, attribute) for run in self.runs[condition])

    def ratios(self, attribute: str) -> list[float]:
        return [getattr(w, attribute) / getattr(o, attribute) for o, w in zip(self.runs["without"], self.runs["with"])]


def start_server(build: Build, work_dir: Path, name: str, settings: dict[str, str]) -> Server:
    """A fresh ``cachegrid serve --port N``, ready, checked, holding the keys."""
    server = Server.cachegrid(name, [], work_dir, settings, bind=port_only)
    try:
        server.wait_ready()
        build.server = server
        check_worker_environment(build)
        preload(server, KEYSPACE)
        status, answer = server.request("GET", "/cache/" + HIT_KEY)
        if status != 200 or b"Alice" not in answer:
            raise SystemExit(f"GET /cache/{HIT_KEY} answered {status}: {answer[:200]!r}")
        build.worker = worker_kind(server)
    except BaseException:
        stop_server(server)
        raise
    return server


def stop_server(server: Server) -> None:
    """Stops it even when a second Ctrl-C or SIGTERM comes meanwhile."""
    handlers = {number: signal.signal(number, signal.SIG_IGN) for number in (signal.SIGINT, signal.SIGTERM)}
    try:
        server.stop()
    finally:
        for number, handler in handlers.items():
            signal.signal(number, handler)


def run_round(cells: list[Cell], number: int, args: argparse.Namespace) -> None:
    """One round: both servers afresh (the streams open on one), every (condition, cell) warmed up,
    then each run once in a shuffled order."""
    servers: dict[str, Server] = {}
    subscribers = None
    started = time.monotonic()
    try:
        for condition in CONDITIONS:
            servers[condition] = start_server(args.build, args.work_dir, f"{condition}-{number}", args.settings)
        pids = {condition: server.worker_pid() for condition, server in servers.items()}
        subscribers = Subscribers(servers["with"].port, args.subscribers)
        pairs = [(condition, cell) for condition in CONDITIONS for cell in cells]
        for condition, cell in pairs if args.warmup else ():
            run_wrk(servers[condition].url(cell.workload.path), cell.workload, CONNECTIONS, args.warmup, WRK_THREADS)
        random.Random(f"{args.seed}:{number}").shuffle(pairs)
        for condition, cell in pairs:
            # The events of a mix on "with" may still be on their way: every run starts when they are all read.
            subscribers.settle()
            before = subscribers.counts()[0]
            server = servers[condition]
            run = run_wrk(server.url(cell.workload.path), cell.workload, CONNECTIONS, args.duration, WRK_THREADS)
            if run.errors:
                args.notes.append(f"{condition} {cell.workload.label}, round {number}: wrk errors {run.errors}")
            cell.runs[condition].append(run)
            if condition == "with":
                subscribers.settle()
                cell.events.append(round((subscribers.counts()[0] - before) / max(1, args.subscribers)))
        _, dropped, ended = subscribers.counts()
        if dropped or ended:
            raise SystemExit(f"round {number}: {dropped} streams were sent a second reset, {ended} were closed")
        for condition, server in servers.items():
            server.check_alive()
            if server.worker_pid() != pids[condition]:
                raise SystemExit(f"round {number}, {condition}: the worker was restarted")
            problems = server.log_problems()
            if problems:
                args.notes.append(f"{condition}, round {number}: the server's log reported {problems} error lines.")
    finally:
        if subscribers:
            subscribers.close()
            args.drain_cpu.append(subscribers.cpu_seconds)
        for server in servers.values():
            stop_server(server)
    args.loads.append(os.getloadavg()[0])
    order = ", ".join(f"{condition} {cell.workload.name}" for condition, cell in pairs)
    log(
        f"round {number}/{args.rounds} in {time.monotonic() - started:.0f} s ({order}), "
        f"load average {args.loads[-1]:.1f}"
    )


# -- the report ------------------------------------------------------------------


def cell_section(cell: Cell, args: argparse.Namespace) -> str:
    without, with_ = cell.runs["without"], cell.runs["with"]
    rps_ratios, p99_ratios = cell.ratios("rps"), cell.ratios("p99_ms")
    rows = [
        [
            str(n),
            f"{o.rps:,.0f}",
            f"{w.rps:,.0f}",
            times(r),
            ms(o.p99_ms),
            ms(w.p99_ms),
            times(p),
            f"{e:,}",
        ]
        for n, (o, w, r, p, e) in enumerate(zip(without, with_, rps_ratios, p99_ratios, cell.events), start=1)
    ]
    medians = {(c, a): cell.median(c, a) for c in CONDITIONS for a in ("rps", "p99_ms")}
    rows.append(
        [
            "**median**",
            f"**{medians['without', 'rps']:,.0f}**",
            f"**{medians['with', 'rps']:,.0f}**",
            times(statistics.median(rps_ratios)),
            f"**{ms(medians['without', 'p99_ms'])}**",
            f"**{ms(medians['with', 'p99_ms'])}**",
            times(statistics.median(p99_ratios)),
            f"{statistics.median(cell.events):,.0f}",
        ]
    )
    header = [
        "round",
        "without req/s",
        "with req/s",
        "req/s with ÷ without",
        "without p99 ms",
        "with p99 ms",
        "p99 with ÷ without",
        "events per stream",
    ]
    p99_of_medians = medians["with", "p99_ms"] / medians["without", "p99_ms"]
    rps_of_medians = medians["with", "rps"] / medians["without", "rps"]
    return "\n".join(
        [
            f"## {cell.workload.label}",
            "",
            table(header, rows),
            "",
            f"**p99 with ÷ without (ratio of the medians): {times(p99_of_medians)}**; the per-round ratios spread "
            f"{ratio_spread(p99_ratios)}. **req/s with ÷ without (ratio of the medians): {times(rps_of_medians)}**; "
            f"the per-round ratios spread {ratio_spread(rps_ratios)}. (The median row's ratios are the medians of "
            "the per-round ratios.) Events per stream: what each subscriber read during the measured run, on "
            "average.",
        ]
    )


def summary_section(cells: list[Cell]) -> str:
    rows = []
    for cell in cells:
        p99 = cell.median("with", "p99_ms") / cell.median("without", "p99_ms")
        rps = cell.median("with", "rps") / cell.median("without", "rps")
        rows.append(
            [
                cell.workload.label,
                f"{ms(cell.median('without', 'p99_ms'))} → {ms(cell.median('with', 'p99_ms'))}",
                f"**{times(p99)}**",
                ratio_spread(cell.ratios("p99_ms")),
                f"{cell.median('without', 'rps'):,.0f} → {cell.median('with', 'rps'):,.0f}",
                f"**{times(rps)}**",
                ratio_spread(cell.ratios("rps")),
            ]
        )
    header = [
        "cell",
        "p99 ms without → with",
        "p99 with ÷ without",
        "per-round p99 ratios",
        "req/s without → with",
        "req/s with ÷ without",
        "per-round req/s ratios",
    ]
    get = cells[0]
    goal = get.median("with", "p99_ms") / get.median("without", "p99_ms")
    verdict = "met" if goal <= 1.2 else "not met"
    return "\n".join(
        [
            "## Summary (medians)",
            "",
            table(header, rows),
            "",
            f"Goal (issue 23): GET p99 with 100 open streams ÷ without ≤ 1.2×: **{times(goal)}, {verdict}** "
            + ("" if len(get.runs["with"]) >= 5 else "(fewer than 5 rounds: not to be quoted)"),
        ]
    )


def report(cells: list[Cell], args: argparse.Namespace, minutes: float) -> list[str]:
    build: Build = args.build
    subscribers_note = (
        f"`events_max_subscribers` defaults to {args.default_max}, which allows {args.subscribers} streams: "
        "the servers ran with every setting at its default (snapshots off)."
        if args.default_max >= args.subscribers
        else f"`events_max_subscribers` defaults to {args.default_max}, below {args.subscribers}: both conditions "
        f"ran with `CACHEGRID_EVENTS_MAX_SUBSCRIBERS={args.subscribers}`, every other setting at its default "
        "(snapshots off)."
    )
    share = f"{args.get_share:.0%}"
    return [
        "# `GET /events`: the default server with 100 open streams ÷ without",
        "",
        f"Measured by `{command_line()}` on {datetime.date.today().isoformat()} in {minutes:.1f} min. "
        f"{args.rounds} rounds; each starts two fresh `cachegrid serve --port N` holding 1,000 keys: "
        f"**without** (no subscriber) and **with** ({args.subscribers} `GET /events` streams open on raw "
        "sockets, all drained by one thread of the benchmark, a pass every 10 ms), warms every "
        "(condition, cell) pair up for "
        f"{args.warmup} s, then runs every pair once in a shuffled order (seed {args.seed}): `wrk -t{WRK_THREADS} "
        f"-c{CONNECTIONS} -d{args.duration}s --latency`, each run started once the streams had read every "
        f"event sent. Cells: **GET hit** of `/cache/{HIT_KEY}` (no event flows: the cost of open streams) and "
        f"**mix**, {share} GET / the rest PUT over the 1,000 keys (`lua/mixed.lua`; every PUT is an event to "
        "every stream: the cost of the stream at work; its p99 covers both methods). with ÷ without: lower is "
        "better for p99, higher for req/s. Per-round ratios: with ÷ without within one round, min – max and, "
        "from 5 rounds on, the interquartile range. After each round every stream was still open and had been "
        "sent no reset but its opening one (none fell behind). The draining thread used "
        + ", ".join(f"{seconds:.1f}" for seconds in args.drain_cpu)
        + " s of CPU in each round (it shares the 2 cores with the servers and wrk). The machine's "
        "1-minute load average at the end of each round: " + ", ".join(f"{load:.1f}" for load in args.loads) + ".",
        "",
        machine_section(
            [
                f"Server: {build.origin}; cachegrid/ digest {build.digest}; worker {build.worker}",
                subscribers_note,
            ]
        ),
        "",
        summary_section(cells),
        *(part for cell in cells for part in ("", cell_section(cell, args))),
    ]


# -- main ------------------------------------------------------------------------


def arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=5, help="interleaved rounds (default 5)")
    parser.add_argument("--duration", type=int, default=5, help="seconds per measured wrk run (default 5)")
    parser.add_argument("--warmup", type=int, default=1, help="seconds of unmeasured wrk per cell (default 1)")
    parser.add_argument(
        "--subscribers", type=int, default=100, help="open /events streams (default 100; 0: an A/A run, for the noise)"
    )
    parser.add_argument("--get-share", type=float, default=0.9, help="GETs in the mix (default 0.9)")
    parser.add_argument("--seed", type=int, default=0, help="of the shuffles (default 0)")
    parser.add_argument("--output", type=Path, help="also write the Markdown here")
    args = parser.parse_args()
    if args.rounds < 1 or args.duration < 1 or args.warmup < 0 or args.subscribers < 0:
        parser.error("--rounds and --duration must be at least 1, --warmup and --subscribers at least 0")
    if not 0 <= args.get_share < 1:
        parser.error("--get-share must be at least 0 and below 1")
    args.notes, args.loads, args.drain_cpu = [], [], []
    return args


def main() -> None:
    args = arguments()
    exit_on_sigterm()
    require_tools()
    args.default_max = Settings.model_fields["events_max_subscribers"].default
    # The server imports this tree's cachegrid; snapshots off (as harness.clean_environment does anyway).
    args.settings = {"PYTHONPATH": str(ROOT), "CACHEGRID_SNAPSHOT_PATH": ""}
    if args.default_max < args.subscribers:
        args.settings["CACHEGRID_EVENTS_MAX_SUBSCRIBERS"] = str(args.subscribers)
        log(f"events_max_subscribers defaults to {args.default_max}: set to {args.subscribers} for this run")
    args.build = Build("server", str(ROOT), ROOT, describe_path(ROOT), package_digest(ROOT))
    get = Workload("get", f"GET hit `/cache/{HIT_KEY}`", "/cache/" + HIT_KEY, "get.lua")
    mix = Workload(
        "mix",
        f"mix: {args.get_share:.0%} GET / {1 - args.get_share:.0%} PUT over {KEYSPACE:,} keys",
        "/",
        "mixed.lua",
        (str(KEYSPACE), str(args.get_share)),
    )
    cells = [Cell(get), Cell(mix)]
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="cachegrid-events-") as scratch:
        args.work_dir = Path(scratch)  # the servers' directory: no etc/cachegrid.toml, no cachegrid/
        verify_imports(args.build, args.work_dir)
        for number in range(1, args.rounds + 1):
            run_round(cells, number, args)
    if args.subscribers == 0:
        args.notes.append(
            "--subscribers 0: an A/A run (both conditions without streams); the ratios measure the noise."
        )
    if args.rounds < 5:
        args.notes.append(f"{args.rounds} rounds: fewer than the 5 a with ÷ without figure needs to be quoted.")
    publish(report(cells, args, (time.monotonic() - started) / 60), args.output, args.notes)


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:
        log("interrupted; the streams and the server are closed")
        sys.exit(130)
