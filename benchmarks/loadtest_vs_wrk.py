"""Is ``cachegrid loadtest`` a bottleneck? Its GET requests/s against wrk's, as Markdown.

Run it on demand (it is not a test; it needs ``wrk``, e.g. ``apt-get install wrk``)::

    .venv/bin/python benchmarks/loadtest_vs_wrk.py [--duration S] [--connections C]
        [--threads T] [--rounds N] [--workers gthread,meinheld] [--processes P]

What it measures
----------------
For each server worker kind it starts ``cachegrid serve`` on 127.0.0.1 and a
free port, stores one key (``key:0``, a 32-character string) and then, for
``--rounds`` rounds, runs wrk (``-t T -c C -d S``, a GET of that key) and
the load generator behind ``cachegrid loadtest`` (``cachegrid.loadgen.run``
with the plan of ``--duration S --concurrency C --mix 100:0 --keyspace 1``,
the same GET) one after the other. The load generator is good
enough when its requests/s reach those of wrk (a C load generator, whose cost
per request is negligible) against the same server: the server is then the
bottleneck, not the generator.

How
---
The machine is shared and small (server and load generator compete for the
same cores), so no absolute number means much and nothing is compared across
runs: the two tools run interleaved, wrk, loadtest, wrk, loadtest, ... so a
slow spell hits both alike, and the median of each is reported with the
ratio loadtest/wrk of the medians. The server's access log goes to a file, as
it would in production.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
from pathlib import Path

from cachegrid import loadgen
from cachegrid.testing import ServerProcess

KEY = "key:0"
VALUE = "x" * 32


def run_wrk(url: str, duration: float, connections: int, threads: int) -> float:
    output = subprocess.run(
        ["wrk", "-t", str(threads), "-c", str(connections), "-d", f"{duration:g}s", f"{url}/cache/{KEY}"],
        capture_output=True,
        text=True,
        check=True,
        timeout=duration + 60,
    ).stdout
    match = re.search(r"Requests/sec:\s*([\d.]+)", output)
    if not match:
        raise SystemExit(f"cannot read wrk's output:\n{output}")
    errors = re.search(r"Non-2xx or 3xx responses:\s*(\d+)|Socket errors:.*", output)
    if errors:
        print(f"warning: wrk reported errors: {errors.group(0)}", file=sys.stderr)
    return float(match.group(1))


def run_loadtest(url: str, duration: float, connections: int, processes: int | None) -> dict:
    plan = loadgen.Plan(
        requests=None,
        duration=duration,
        concurrency=connections,
        get_share=1.0,
        keyspace=1,
        processes=processes or loadgen.default_processes(),
    )
    try:
        document = loadgen.run(loadgen.Target.parse(url), plan).to_dict()
    except loadgen.LoadError as error:
        raise SystemExit(f"loadtest: {error}") from None
    if document["errors"]:
        print(f"warning: loadtest reported errors: {document['errors_by_kind']}", file=sys.stderr)
    return document


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--duration", type=float, default=5.0, help="seconds per run (default 5)")
    parser.add_argument("--connections", type=int, default=32, help="connections (default 32)")
    parser.add_argument("--threads", type=int, default=2, help="wrk threads (default 2)")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds (default 3)")
    parser.add_argument("--workers", default="gthread,meinheld", help="server worker kinds (default gthread,meinheld)")
    parser.add_argument("--processes", type=int, default=None, help="loadtest processes (default: its own default)")
    parser.add_argument("--output", help="also write the Markdown to this file")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is not installed (apt-get install wrk)")

    rows = []
    for kind in args.workers.split(","):
        server = ServerProcess("--worker", kind)
        try:
            server.wait_healthy()
            if server.request("PUT", f"/cache/{KEY}", raw=json.dumps(VALUE).encode())[0] not in (200, 201):
                raise SystemExit(f"cannot store {KEY}")
            # One short warm-up of each, so neither tool pays the server's first-request costs.
            run_wrk(server.url, 1, args.connections, args.threads)
            run_loadtest(server.url, 1, args.connections, args.processes)
            wrk_rates, load_rates, p50s, p99s = [], [], [], []
            for round_ in range(args.rounds):
                wrk_rates.append(run_wrk(server.url, args.duration, args.connections, args.threads))
                document = run_loadtest(server.url, args.duration, args.connections, args.processes)
                load_rates.append(document["requests_per_second"])
                p50s.append(document["latency_ms"]["p50"])
                p99s.append(document["latency_ms"]["p99"])
                print(
                    f"{kind} round {round_ + 1}: wrk {wrk_rates[-1]:,.0f} req/s, loadtest {load_rates[-1]:,.0f} req/s",
                    file=sys.stderr,
                )
        finally:
            server.stop()
        wrk, load = statistics.median(wrk_rates), statistics.median(load_rates)
        rows.append(
            (kind, wrk, load, load / wrk, statistics.median(p50s), statistics.median(p99s), wrk_rates, load_rates)
        )

    lines = [
        "# `cachegrid loadtest` against wrk\n",
        f"GET of one key, {args.connections} connections, {args.duration:g} s per run, medians of "
        f"{args.rounds} interleaved rounds (wrk -t {args.threads}; loadtest "
        f"--processes {args.processes or os.cpu_count()}); {os.cpu_count()} CPUs, "
        f"Python {platform.python_version()}\n",
        "| worker | wrk req/s | loadtest req/s | loadtest/wrk | loadtest p50 ms | loadtest p99 ms "
        "| wrk runs | loadtest runs |",
        "|---|---:|---:|---:|---:|---:|---|---|",
    ]
    for kind, wrk, load, ratio, p50, p99, wrk_rates, load_rates in rows:
        lines.append(
            f"| {kind} | {wrk:,.0f} | {load:,.0f} | {ratio:.2f} | {p50:.2f} | {p99:.2f} "
            f"| {', '.join(f'{r:,.0f}' for r in wrk_rates)} | {', '.join(f'{r:,.0f}' for r in load_rates)} |"
        )
    document = "\n".join(lines) + "\n"
    print(document, end="")
    if args.output:
        Path(args.output).write_text(document, encoding="utf-8")


if __name__ == "__main__":
    main()
