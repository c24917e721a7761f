"""New ÷ before: an interleaved A/B of two builds of ``cachegrid serve`` with its defaults.

Run it on demand (it is not a test; it needs ``wrk``)::

    .venv/bin/python benchmarks/ab_fast_default.py --before main --after HEAD
        [--rounds 5] [--duration 5] [--warmup 1] [--seed 0] [--output ab.md]

What it compares
----------------
Two source trees of CacheGrid, *before* and *after*. Each is given as a git
revision of this repository (``main``, ``HEAD~3``, a commit), which is
exported with ``git archive`` into a scratch directory removed at the end, or
as the path of a source tree, used as it is (uncommitted changes included).
``--before`` defaults to ``main``, ``--after`` to the tree this script is in.

Both servers are started the way a user starts one, ``cachegrid serve
--port N`` and nothing else (so the worker is whatever the defaults choose,
meinheld where CacheGrid's build of it is installed), from the same
virtualenv (the interpreter running this script), each with ``PYTHONPATH``
set to its own tree so that each imports its own ``cachegrid`` package.
Before the first round this is checked: a one-off interpreter with the same
environment and directory must import ``cachegrid`` from that tree, and in
every round the worker process's environment (``/proc/<pid>/environ``) must
carry that ``PYTHONPATH``. The report also gives each tree's commit and a
digest of its ``cachegrid/`` package, and says so when the two are the same
code (an A/A run, which measures the noise).

The cells are GET hit of ``user:000042`` (stored once per server start) and
PUT of ``{"name":"Alice","age":30}`` to it, ``wrk -t1 -c32`` for
``--duration`` seconds each, the p99 latency as wrk reports it.

How
---
The machine is small and shared, so nothing is compared with another run:
each round starts both servers afresh, warms every (build, method) cell up
for ``--warmup`` seconds, then runs every cell once in a shuffled order (a
seeded shuffle per round, so a run can be repeated). Per method, the report
gives each round's req/s of both builds, the median of each, the ratio new ÷
before of the medians, and the spread of the per-round ratios (new ÷ before
within one round): min–max, and the interquartile range from 5 rounds on.
Everything listens on 127.0.0.1 on free ports, every wrk run and every wait
is bounded, and both servers are stopped at the end of each round, on errors
and on Ctrl-C or SIGTERM. The server and wrk handling is
``benchmarks/harness.py``'s.
"""

from __future__ import annotations

import argparse
import datetime
import hashlib
import os
import random
import re
import signal
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from harness import (
    HERE,
    VALUE,
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
    publish,
    require_tools,
    run_cells,
    table,
)

ROOT = HERE.parent
CONNECTIONS = 32
WRK_THREADS = 1
HIT_KEY = key(42)
GET = Workload("get", "GET hit", "/cache/" + HIT_KEY, "get.lua")
PUT = Workload("put", "PUT", "/cache/" + HIT_KEY, "put.lua")
WORKLOADS = (GET, PUT)
GIT_TIMEOUT = 120


# -- the two builds --------------------------------------------------------------


@dataclass
class Build:
    """One side of the comparison: a source tree and what was measured on it."""

    name: str  # "before" or "after"
    spec: str  # as given on the command line
    path: Path  # the tree's root, with cachegrid/ in it
    origin: str  # how the tree came to be, for the report
    digest: str = ""  # of the cachegrid/ package's files
    worker: str = "?"  # the worker the server said it ran
    server: Server | None = None
    runs: dict[str, list[Run]] = field(default_factory=lambda: {"get": [], "put": []})

    def median(self, method: str, attribute: str = "rps") -> float:
        return statistics.median(getattr(run, attribute) for run in self.runs[method])


def git(*arguments: str, cwd: Path = ROOT) -> str:
    result = subprocess.run(["git", *arguments], cwd=cwd, capture_output=True, text=True, timeout=GIT_TIMEOUT)
    if result.returncode != 0:
        raise SystemExit(f"git {' '.join(arguments)} failed: {result.stderr.strip()}")
    return result.stdout.strip()


def describe_path(path: Path) -> str:
    """The commit a source tree is at, and whether it has changes, when it is a git checkout."""
    probe = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], cwd=path, capture_output=True, text=True, timeout=GIT_TIMEOUT
    )
    # Named without the machine's paths: the reports are committed.
    tree = "this repository" if path.resolve() == ROOT.resolve() else f"the tree `{path.name}`"
    if probe.returncode != 0:
        return f"{tree} (not a git checkout)"
    changes = git("status", "--porcelain", "--untracked-files=no", "--", "cachegrid", cwd=path)
    state = "with uncommitted changes to cachegrid/" if changes else "no uncommitted changes to cachegrid/"
    return f"{tree} at commit {probe.stdout.strip()}, {state}"


def export_revision(revision: str, destination: Path) -> str:
    """Writes ``git archive`` of the revision into ``destination``; returns the commit's description."""
    probe = subprocess.run(
        ["git", "rev-parse", "--verify", "--quiet", f"{revision}^{{commit}}"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=GIT_TIMEOUT,
    )
    if probe.returncode != 0:
        raise SystemExit(f"{revision}: neither a directory nor a git revision of {ROOT}")
    commit = probe.stdout.strip()
    destination.mkdir(parents=True)
    archive = destination.parent / f"{destination.name}.tar"
    with archive.open("wb") as out:
        result = subprocess.run(
            ["git", "archive", "--format=tar", commit], cwd=ROOT, stdout=out, stderr=subprocess.PIPE, timeout=300
        )
    if result.returncode != 0:
        raise SystemExit(f"git archive {revision} failed: {result.stderr.decode(errors='replace').strip()}")
    with tarfile.open(archive) as tar:
        tar.extractall(destination, filter="data")
    archive.unlink()
    subject = git("log", "-1", "--format=%h %s", commit)
    return f"revision `{revision}` = commit {subject if len(subject) <= 90 else subject[:89] + '…'}"


def resolve(name: str, spec: str, scratch: Path) -> Build:
    """A path with a ``cachegrid`` package is used as it is; anything else must be a git revision."""
    candidate = Path(spec).expanduser()
    if candidate.is_dir():
        path = candidate.resolve()
        if not (path / "cachegrid" / "__init__.py").is_file():
            raise SystemExit(f"--{name} {spec}: no cachegrid/ package in that directory")
        build = Build(name, spec, path, describe_path(path))
    else:
        path = scratch / f"tree-{name}"
        log(f"{name}: exporting revision {spec}")
        build = Build(name, spec, path, export_revision(spec, path))
        if not (path / "cachegrid" / "__init__.py").is_file():
            raise SystemExit(f"--{name} {spec}: that revision has no cachegrid/ package")
    build.digest = package_digest(path)
    return build


def package_digest(root: Path) -> str:
    """SHA-256 of the cachegrid/ package's files (names and contents), compiled files left out."""
    digest = hashlib.sha256()
    package = root / "cachegrid"
    for path in sorted(package.rglob("*")):
        if path.is_file() and "__pycache__" not in path.parts and path.suffix not in (".pyc", ".pyo"):
            digest.update(str(path.relative_to(package)).encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()[:12]


def server_settings(build: Build) -> dict[str, str]:
    # No snapshots: both builds as they served before snapshots were kept by default.
    return {"PYTHONPATH": str(build.path), "CACHEGRID_SNAPSHOT_PATH": ""}


def verify_imports(build: Build, work_dir: Path) -> None:
    """A one-off interpreter with the server's environment and directory must import the build's own tree."""
    code = "import cachegrid, cachegrid.daemon.server as s; print(cachegrid.__file__); print(s.__file__)"
    environment = {k: v for k, v in os.environ.items() if not k.startswith("CACHEGRID_")}
    environment.update(server_settings(build))
    result = subprocess.run(
        [sys.executable, "-c", code], env=environment, cwd=work_dir, capture_output=True, text=True, timeout=60
    )
    files = [Path(line).resolve() for line in result.stdout.split()]
    if result.returncode != 0 or len(files) != 2 or not all(f.is_relative_to(build.path) for f in files):
        raise SystemExit(
            f"{build.name}: cachegrid is not imported from {build.path}: {result.stdout.strip()} "
            f"{result.stderr.strip()[-1000:]}"
        )
    log(f"{build.name}: cachegrid from {files[0]}")


def check_worker_environment(build: Build) -> None:
    """The worker process itself runs with the build's PYTHONPATH (read from /proc)."""
    assert build.server is not None
    pid = build.server.worker_pid()
    entries = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    wanted = f"PYTHONPATH={build.path}".encode()
    if wanted not in entries:
        found = [e for e in entries if e.startswith(b"PYTHONPATH=")]
        raise SystemExit(f"{build.name}: worker {pid} runs with {found or 'no PYTHONPATH'}, not {wanted.decode()}")


# -- the rounds ------------------------------------------------------------------


def worker_kind(server: Server) -> str:
    """The worker the server says at start that it runs."""
    match = re.search(r"CacheGrid node \S+ on \S+: worker (\w+)", server.log_path.read_text(errors="replace"))
    return match.group(1) if match else "?"


def start(build: Build, work_dir: Path) -> None:
    """A fresh ``cachegrid serve --port N`` of the build, ready, checked and holding the GET's key."""
    build.server = Server.cachegrid(build.name, [], work_dir, server_settings(build), bind=port_only)
    build.server.wait_ready()
    check_worker_environment(build)
    status, answer = build.server.request("PUT", PUT.path, VALUE)
    if status not in (200, 201):
        raise SystemExit(f"{build.name}: PUT {PUT.path} answered {status}: {answer[:200]!r}")
    status, answer = build.server.request("GET", GET.path)
    if status != 200 or b"Alice" not in answer:
        raise SystemExit(f"{build.name}: GET {GET.path} answered {status}: {answer[:200]!r}")
    build.worker = worker_kind(build.server)


def run_round(builds: list[Build], number: int, args: argparse.Namespace, work_dir: Path) -> None:
    """One round: both servers afresh, every cell warmed up, then every cell once in a shuffled order."""
    cells = [(build, workload) for build in builds for workload in WORKLOADS]
    try:
        for build in builds:
            start(build, work_dir)
        seconds, ran = run_cells(
            cells, random.Random(f"{args.seed}:{number}"), f"round {number}", args, CONNECTIONS, WRK_THREADS
        )
        order = ", ".join(f"{b.name} {w.name.upper()}" for b, w in ran)
        log(f"round {number}/{args.rounds} in {seconds:.0f} s ({order}), load average {args.loads[-1]:.1f}")
    finally:
        stop_all(builds)


def stop_all(builds: list[Build]) -> None:
    """Stops every server started, each even if another's stop fails; a second Ctrl-C or SIGTERM
    meanwhile would leave a server running, so both wait until the stops are done."""
    handlers = {number: signal.signal(number, signal.SIG_IGN) for number in (signal.SIGINT, signal.SIGTERM)}
    try:
        for build in builds:
            if build.server:
                try:
                    build.server.stop()
                except Exception as error:  # the next server must be stopped all the same
                    log(f"{build.name}: stopping its server failed: {error!r}")
                build.server = None
    finally:
        for number, handler in handlers.items():
            signal.signal(number, handler)


# -- the report ------------------------------------------------------------------


def times(value: float) -> str:
    return f"{value:.3f}×"


def ratio_spread(ratios: list[float]) -> str:
    """min–max of the per-round ratios, and their interquartile range from 5 rounds on."""
    text = f"{times(min(ratios))} – {times(max(ratios))}"
    if len(ratios) >= 5:
        # "inclusive": quartiles interpolated between the measured ratios, never beyond them.
        q1, _, q3 = statistics.quantiles(ratios, n=4, method="inclusive")
        text += f" (IQR {times(q1)} – {times(q3)})"
    return text


def method_section(before: Build, after: Build, workload: Workload) -> str:
    method = workload.name
    pairs = list(zip(before.runs[method], after.runs[method]))
    ratios = [new.rps / old.rps for old, new in pairs]
    rows = [
        [str(number), f"{old.rps:,.0f}", f"{new.rps:,.0f}", times(r), ms(old.p99_ms), ms(new.p99_ms)]
        for number, ((old, new), r) in enumerate(zip(pairs, ratios), start=1)
    ]
    old_rps, new_rps = before.median(method), after.median(method)
    old_p99, new_p99 = before.median(method, "p99_ms"), after.median(method, "p99_ms")
    rows.append(
        [
            "**median**",
            f"**{old_rps:,.0f}**",
            f"**{new_rps:,.0f}**",
            times(statistics.median(ratios)),
            ms(old_p99),
            ms(new_p99),
        ]
    )
    path = f"`{workload.path}`" + (' with `{"name":"Alice","age":30}`' if method == "put" else "")
    return "\n".join(
        [
            f"## {workload.label} {path}",
            "",
            table(["round", "before req/s", "after req/s", "new ÷ before", "before p99 ms", "after p99 ms"], rows),
            "",
            f"**new ÷ before, req/s (ratio of the medians): {times(new_rps / old_rps)}**; the per-round ratios "
            f"spread {ratio_spread(ratios)} (the median row's new ÷ before is their median). "
            f"p99 new ÷ before (ratio of the medians): {times(new_p99 / old_p99)}.",
        ]
    )


def summary_section(before: Build, after: Build) -> str:
    rows = []
    for workload in WORKLOADS:
        method = workload.name
        ratios = [new.rps / old.rps for old, new in zip(before.runs[method], after.runs[method])]
        old_rps, new_rps = before.median(method), after.median(method)
        rows.append(
            [
                workload.label,
                f"{old_rps:,.0f}",
                f"{new_rps:,.0f}",
                f"**{times(new_rps / old_rps)}**",
                ratio_spread(ratios),
                f"{ms(before.median(method, 'p99_ms'))} → {ms(after.median(method, 'p99_ms'))}",
            ]
        )
    header = ["cell", "before req/s", "after req/s", "new ÷ before", "per-round ratios", "p99 ms before → after"]
    return "\n".join(["## Summary (medians)", "", table(header, rows)])


def builds_section(before: Build, after: Build) -> str:
    lines = ["## Builds", ""]
    for build in (before, after):
        lines.append(
            f"- **{build.name}** (`--{build.name} {build.spec}`): {build.origin}; cachegrid/ digest "
            f"{build.digest}; worker {build.worker}"
        )
    return "\n".join(lines)


def report(before: Build, after: Build, args: argparse.Namespace, minutes: float) -> list[str]:
    if before.digest == after.digest:
        args.notes.append("Both builds have the same cachegrid/ code (an A/A run): the ratios measure the noise alone.")
    if before.worker != after.worker:
        args.notes.append(
            f"The builds ran different workers ({before.worker} before, {after.worker} after): both use this "
            "virtualenv's meinheld, which one of them may refuse as built from another patch set."
        )
    return [
        "# New ÷ before: `cachegrid serve` (defaults), an interleaved A/B",
        "",
        f"Measured by `{command_line()}` on {datetime.date.today().isoformat()} in {minutes:.1f} min. "
        f"{args.rounds} rounds; each starts both servers afresh (`cachegrid serve --port N`, the same "
        "virtualenv, each with PYTHONPATH on its own tree), warms every cell up for "
        f"{args.warmup} s, then runs every (build, method) cell once in a shuffled order (seed {args.seed}): "
        f"`wrk -t{WRK_THREADS} -c{CONNECTIONS} -d{args.duration}s`. new ÷ before: after's req/s ÷ before's "
        "(higher is better); per-round ratios: the same within each round, min – max and, from 5 rounds on, "
        "the interquartile range. The machine's 1-minute load average at the end of each round: "
        + ", ".join(f"{load:.1f}" for load in args.loads)
        + ".",
        "",
        machine_section(),
        "",
        builds_section(before, after),
        "",
        summary_section(before, after),
        *(part for workload in WORKLOADS for part in ("", method_section(before, after, workload))),
    ]


# -- main ------------------------------------------------------------------------


def arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--before", default="main", help="git revision or source tree (default main)")
    parser.add_argument(
        "--after", default=str(ROOT), help="git revision or source tree (default: the tree this script is in)"
    )
    parser.add_argument("--rounds", type=int, default=5, help="interleaved rounds (default 5)")
    parser.add_argument("--duration", type=int, default=5, help="seconds per measured wrk run (default 5)")
    parser.add_argument("--warmup", type=int, default=1, help="seconds of unmeasured wrk per cell (default 1)")
    parser.add_argument("--seed", type=int, default=0, help="of the shuffles of the cells (default 0)")
    parser.add_argument("--output", type=Path, help="also write the Markdown here")
    args = parser.parse_args()
    if args.rounds < 1 or args.duration < 1 or args.warmup < 0:
        parser.error("--rounds and --duration must be at least 1, --warmup at least 0")
    args.notes, args.loads = [], []
    return args


def main() -> None:
    args = arguments()
    exit_on_sigterm()
    require_tools()
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="cachegrid-ab-") as scratch:
        scratch_dir = Path(scratch)
        work_dir = scratch_dir / "run"  # the servers' directory: no etc/cachegrid.toml, no cachegrid/
        work_dir.mkdir()
        before = resolve("before", args.before, scratch_dir)
        after = resolve("after", args.after, scratch_dir)
        if before.path == after.path:
            raise SystemExit("--before and --after are the same directory: give two trees")
        for build in (before, after):
            verify_imports(build, work_dir)
        for number in range(1, args.rounds + 1):
            run_round([before, after], number, args, work_dir)
    if args.rounds < 5:
        args.notes.append(f"{args.rounds} rounds: fewer than the 5 a new ÷ before figure needs to be quoted.")
    publish(report(before, after, args, (time.monotonic() - started) / 60), args.output, args.notes)


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:
        log("interrupted; the servers are stopped")
        sys.exit(130)
