"""What the HTTP benchmarks share: servers on free ports, wrk runs, worker RSS, report helpers.

Not a benchmark itself: ``http_bench.py``, ``fast_default.py`` and
``soak.py`` import it (they run as scripts from this directory, so it is on
their import path).

- ``Server``: one gunicorn master (``cachegrid serve``, the hello-world app,
  or any gunicorn command) on 127.0.0.1 and a free port, in a session of its
  own, with the caller's ``CACHEGRID_*`` variables dropped and its current
  directory a scratch directory (so no ``etc/cachegrid.toml`` is read);
  ``stop`` kills the master and its worker, whatever state they are in.
- ``run_wrk``: one wrk run with a script of ``lua/``, whose ``done()``
  (``lua/report.lua``) prints one line of JSON that is read instead of wrk's
  human-readable report.
- ``rss_bytes`` of the worker (the master's one child), the machine section
  of a report, and the Markdown formatting of tables and ratios.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import platform
import random
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Protocol

from cachegrid.testing import CLI, children, end_group, free_port

HERE = Path(__file__).resolve().parent
LUA = HERE / "lua"
HELLO_APP = HERE / "hello_app.py"

VALUE = b'{"name":"Alice","age":30}'
FILL_CHUNK = 1000  # items per batch set when filling (the server's default max_batch_size)
MIB = 1024 * 1024


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def key(i: int) -> str:
    return f"user:{i:06d}"


def require_tools() -> None:
    """Exits with what to do when wrk or the project's ``cachegrid`` command is missing."""
    if shutil.which("wrk") is None:
        raise SystemExit(
            "wrk is not installed; install it with `apt-get install -y wrk` (run `apt-get update` "
            "first if apt cannot find it), or build it from https://github.com/wg/wrk"
        )
    if not Path(CLI).exists():
        raise SystemExit(f"{CLI} is missing: run this with the project's virtualenv (.venv/bin/python)")


def exit_on_sigterm() -> None:
    """Turn SIGTERM into SystemExit, so that the ``finally`` blocks stop the servers."""
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))


# -- servers ---------------------------------------------------------------------


def clean_environment(settings: dict[str, str] | None = None) -> dict[str, str]:
    """The caller's environment without its ``CACHEGRID_*`` variables, plus
    ``settings``. Snapshots off unless ``settings`` say otherwise: the
    measurements compare with servers that keep none, and a benchmark never
    writes into the home directory's state (``cachegrid serve`` keeps them
    there by default)."""
    environment = {k: v for k, v in os.environ.items() if not k.startswith("CACHEGRID_")}
    environment["CACHEGRID_SNAPSHOT_PATH"] = ""
    environment.update(settings or {})
    return environment


def cachegrid_bind(port: int) -> list[str]:
    return ["--host", "127.0.0.1", "--port", str(port)]


def port_only(port: int) -> list[str]:
    """``cachegrid serve --port P``: the address as a user gives it (the host is the default, 127.0.0.1)."""
    return ["--port", str(port)]


def gunicorn_bind(port: int) -> list[str]:
    return ["--bind", f"127.0.0.1:{port}"]


class Server:
    """One gunicorn master on a free port; ``stop`` kills it and its worker."""

    def __init__(
        self,
        name: str,
        command: list[str],
        health_path: str,
        work_dir: Path,
        settings: dict[str, str] | None = None,
        bind: Callable[[int], list[str]] = cachegrid_bind,
    ) -> None:
        self.name = name
        self.port = free_port()
        self.health_path = health_path
        self.requests_sent = 0  # by wrk, to relate the worker's RSS growth to requests
        self.rss_start = 0
        self.log_path = work_dir / f"{name}.log"
        self.log = self.log_path.open("wb")
        # cwd is the scratch directory, so no etc/cachegrid.toml of the caller is read;
        # a new session, so that stop() can kill the worker too if the master hangs.
        self.process = subprocess.Popen(
            [*command, *bind(self.port)],
            stdout=self.log,
            stderr=subprocess.STDOUT,
            env=clean_environment(settings),
            cwd=work_dir,
            start_new_session=True,
        )

    @classmethod
    def cachegrid(
        cls,
        name: str,
        options: list[str],
        work_dir: Path,
        settings: dict[str, str] | None = None,
        bind: Callable[[int], list[str]] = cachegrid_bind,
    ) -> Server:
        """``cachegrid serve [options]`` with the address added."""
        return cls(name, [CLI, "serve", *options], "/health", work_dir, settings, bind)

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def request(self, method: str, path: str, body: bytes | None = None, timeout: float = 30) -> tuple[int, bytes]:
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            connection.request(method, path, body=body, headers={"Content-Type": "application/json"})
            response = connection.getresponse()
            return response.status, response.read()
        finally:
            connection.close()

    def wait_ready(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise SystemExit(
                    f"{self.name} exited with {self.process.returncode}; see its log:\n"
                    + self.log_path.read_text(errors="replace")[-2000:]
                )
            try:
                if self.request("GET", self.health_path)[0] == 200:
                    return
            except OSError:
                pass
            time.sleep(0.1)
        raise SystemExit(f"{self.name} did not answer within {timeout:g} s")

    def worker_pid(self, timeout: float = 10.0) -> int:
        """The gunicorn worker: the one child of the master."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            workers = children(self.process.pid)
            if len(workers) == 1:
                return workers[0]
            time.sleep(0.1)
        raise SystemExit(f"{self.name}: cannot find its one worker process")

    def worker_rss(self) -> int:
        return rss_bytes(self.worker_pid())

    def check_alive(self) -> None:
        if self.process.poll() is not None:
            raise SystemExit(
                f"{self.name} died during the benchmark (exit {self.process.returncode}); see {self.log_path}"
            )

    def stop(self) -> None:
        try:
            end_group(self.process, timeout=10)  # the session started for this server only
        finally:
            self.log.close()

    def log_problems(self) -> int:
        """Lines of its log that report errors (tracebacks, ERROR, CRITICAL)."""
        text = self.log_path.read_text(errors="replace")
        return sum(1 for line in text.splitlines() if re.search(r"Traceback|\[ERROR\]|\[CRITICAL\]", line))


def rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise SystemExit(f"no VmRSS for process {pid}")


def preload(server: Server, count: int) -> None:
    """Stores key(0) .. key(count - 1) with batch set, FILL_CHUNK items a request."""
    fill_by_batch(server.port, [key(i) for i in range(count)])


def fill_by_batch(port: int, names: list[str]) -> None:
    """Batch sets of FILL_CHUNK items over one keep-alive connection."""
    item = json.loads(VALUE)
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    try:
        for start in range(0, len(names), FILL_CHUNK):
            body = json.dumps({"items": dict.fromkeys(names[start : start + FILL_CHUNK], item)}).encode()
            connection.request("POST", "/cache/batch/set", body=body, headers={"Content-Type": "application/json"})
            response = connection.getresponse()
            answer = response.read()
            if response.status != 200:
                raise SystemExit(f"a batch set answered {response.status}: {answer[:200]!r}")
    finally:
        connection.close()


# -- wrk -------------------------------------------------------------------------


@dataclass(frozen=True)
class Workload:
    name: str
    label: str
    path: str
    script: str
    args: tuple[str, ...] = ()  # after "--": they reach the script's init(args)
    keys: int = 0  # keys per request (batches), for keys/s
    hello: bool = False  # runs against the hello-world app, not CacheGrid
    expect_status: int = 200  # what a sanity check of one request must answer


@dataclass
class Run:
    requests: int
    rps: float
    p50_ms: float
    p99_ms: float
    max_ms: float
    errors: dict[str, int]


def run_wrk(url: str, workload: Workload, connections: int, duration: int, threads: int | None = None) -> Run:
    """One wrk run; ``threads`` defaults to 1 for one connection, else 2."""
    if threads is None:
        threads = 1 if connections == 1 else 2
    command = [
        "wrk",
        "-t",
        str(threads),
        "-c",
        str(connections),
        "-d",
        f"{duration}s",
        "--latency",
        "--timeout",
        "10s",
        "-s",
        str(LUA / workload.script),
        url,
        "--",
        *workload.args,
    ]
    # subprocess.run kills wrk if it overruns the timeout.
    result = subprocess.run(command, capture_output=True, text=True, timeout=duration + 30)
    match = re.search(r"^BENCH_JSON (.*)$", result.stdout, re.MULTILINE)
    if result.returncode != 0 or not match:
        raise SystemExit(f"wrk failed ({result.returncode}): {' '.join(command)}\n{result.stdout}\n{result.stderr}")
    report = json.loads(match.group(1))
    errors = {kind: count for kind, count in report["errors"].items() if count}
    if workload.expect_status != 200:
        errors.pop("status", None)  # e.g. the answers to a GET miss are all 404: expected
    return Run(
        requests=report["requests"],
        rps=report["requests"] / (report["duration_us"] / 1e6),
        p50_ms=report["p50_us"] / 1000,
        p99_ms=report["p99_us"] / 1000,
        max_ms=report["max_us"] / 1000,
        errors=errors,
    )


class Cell(Protocol):
    """A row of an interleaved table: a named server and its runs per workload."""

    name: str
    server: Server | None
    runs: dict[str, list[Run]]


def run_cells(
    cells: Sequence[tuple[Cell, Workload]],
    order: random.Random,
    label: str,
    args: argparse.Namespace,
    connections: int,
    threads: int,
) -> tuple[float, list[tuple[Cell, Workload]]]:
    """One round of an interleaved table, its servers already started: every
    cell warmed up (``args.warmup`` seconds), then run once (``args.duration``)
    in an order ``order`` shuffles, so that a slow spell of the machine lands
    on no one cell alike every round. wrk errors, the load average
    (``args.loads``) and error lines of each server's log are noted
    (``args.notes``); a server that died stops the benchmark. Returns the
    seconds the measured runs took and the order they ran in."""
    if args.warmup:
        for cell, workload in cells:
            assert cell.server is not None
            run_wrk(cell.server.url(workload.path), workload, connections, args.warmup, threads)
    shuffled = list(cells)
    order.shuffle(shuffled)
    started = time.monotonic()
    for cell, workload in shuffled:
        assert cell.server is not None
        run = run_wrk(cell.server.url(workload.path), workload, connections, args.duration, threads)
        if run.errors:
            args.notes.append(f"{cell.name} {workload.label}, {label}: wrk errors {run.errors}")
        cell.runs[workload.name].append(run)
    args.loads.append(os.getloadavg()[0])
    for cell in {id(cell): cell for cell, _ in cells}.values():
        assert cell.server is not None
        cell.server.check_alive()
        problems = cell.server.log_problems()
        if problems:
            args.notes.append(f"{cell.name}'s log reported {problems} error lines in {label}.")
    return time.monotonic() - started, shuffled


# -- the report ------------------------------------------------------------------


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "not installed"


def wrk_version() -> str:
    # `wrk -v` prints its version line and the usage, and exits with 1.
    output = subprocess.run(["wrk", "-v"], capture_output=True, text=True, timeout=10).stdout
    return output.splitlines()[0].split(" Copyright")[0].removeprefix("wrk ").strip() if output else "?"


def table(header: list[str], rows: list[list[str]], text_columns: int = 1) -> str:
    """A Markdown table; the first ``text_columns`` columns left-aligned, the rest right-aligned."""
    align = ["---"] * text_columns + ["---:"] * (len(header) - text_columns)
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(align) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def ms(value: float) -> str:
    return f"{value:.2f}"


def ratio(value: float) -> str:
    return f"{value:.2f}x"


def machine_section(extra: list[str] | None = None) -> str:
    affinity = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return "\n".join(
        [
            "## Machine",
            "",
            f"- CPU: {cpu_model()}, {os.cpu_count()} cores ({affinity} usable by this process); the servers and "
            "wrk share them",
            f"- {platform.system()} {platform.release()}, Python {platform.python_version()} "
            f"({platform.python_implementation()})",
            f"- falcon {version('falcon')}, gunicorn {version('gunicorn')}, meinheld {version('meinheld')}, "
            f"greenlet {version('greenlet')}, wrk {wrk_version()}",
            *(f"- {line}" for line in extra or []),
        ]
    )


def command_line() -> str:
    """How this script was run, for a report: its path in the repository and its options but the output file."""
    script = Path(sys.argv[0]).resolve()
    name = script.relative_to(HERE.parent) if script.is_relative_to(HERE.parent) else script.name
    options = [arg for arg in sys.argv[1:] if not arg.startswith("--output") and not arg.endswith(".md")]
    return " ".join([str(name), *options])


def publish(parts: list[str], output: Path | None, notes: list[str] | None = None) -> None:
    """Prints the report (its sections, then the notes, if any) and writes it to ``output``."""
    if notes:
        parts = [*parts, "", "## Notes", "", *(f"- {note}" for note in notes)]
    document = "\n".join(parts) + "\n"
    print(document)
    if output:
        output.parent.mkdir(parents=True, exist_ok=True)
        output.write_text(document)
        log(f"written to {output}")
