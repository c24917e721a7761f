"""Compression's goals table (docs/compression.md): the same server with
compression on (the defaults) and off (``compress_threshold = 0``), in one run.

The value is the issue's: a 20 KB JSON list of 100 user objects
(compression_values.py). Measured, each as a ratio of "on" to "off" (today):

- memory charged for the value ÷ its size (/stats, before and after one PUT);
- GET c32 with ``Accept-Encoding: gzip`` (on: the held gzip bytes, as they
  are) ÷ a GET of the value uncompressed (off);
- GET c32 without Accept-Encoding (on: decompressed per request) ÷ off;
- PUT c32 of it (on: compressed per request) ÷ off;
- a 64 KB gzip body that inflates to 64 MiB: its status and the worker's
  peak RSS growth (VmHWM) against ``max_value_size``.

The two servers run side by side and the wrk runs alternate between them
(``--rounds`` of each cell; the median is reported), so that the shared
machine's load falls on both alike. The small-value cost is fast_default.py's
(interleaved A/B of the seed's value), not this script's.

With ``--before TREE`` (a directory holding another build's ``cachegrid``
package, such as a checkout of main) a third server runs that build with
compression on, in the same alternation, and the table gains its column:
a change to compression measured against the build before it and against
compression off, in one run.

    python benchmarks/compression_bench.py [--rounds 3] [--duration 5] [--before TREE] [--output FILE]
"""

from __future__ import annotations

import argparse
import gzip
import http.client
import json
import statistics
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from compression_values import users_json
from harness import (
    Server,
    Workload,
    command_line,
    exit_on_sigterm,
    log,
    machine_section,
    publish,
    ratio,
    require_tools,
    run_wrk,
    table,
)

KEY = "users:page1"
CONNECTIONS = 32
MAX_VALUE_SIZE = 1024 * 1024  # the default


def request(server: Server, method: str, path: str, body: bytes | None = None, **headers: str) -> tuple[int, bytes]:
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=60)
    try:
        connection.request(method, path, body=body, headers={"Content-Type": "application/json", **headers})
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


def charged(server: Server, value: bytes) -> float:
    """Memory charged for one PUT of ``value`` ÷ its size."""
    before = json.loads(request(server, "GET", "/stats")[1])["memory_usage_bytes"]
    status, answer = request(server, "PUT", "/cache/charge", value)
    if status not in (200, 201):
        raise SystemExit(f"{server.name}: PUT answered {status}: {answer[:200]!r}")
    after = json.loads(request(server, "GET", "/stats")[1])["memory_usage_bytes"]
    request(server, "DELETE", "/cache/charge")
    return (after - before) / len(value)


def peak_rss(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise SystemExit(f"no VmHWM for process {pid}")


@dataclass
class Cell:
    label: str
    on: Workload
    off: Workload
    on_rps: list[float] = field(default_factory=list)
    off_rps: list[float] = field(default_factory=list)
    before_rps: list[float] = field(default_factory=list)  # with --before: that build, compression on
    on_bytes: int = 0  # body bytes of one answer (GET) or request (PUT)
    off_bytes: int = 0


def cells(value_file: Path, accept_gzip: bool = True) -> list[Cell]:
    path = f"/cache/{KEY}"
    get_gzip = Workload("get-gzip", "GET, Accept-Encoding: gzip", path, "get_encoded.lua", ("gzip",))
    get_plain = Workload("get-plain", "GET, no Accept-Encoding", path, "get_encoded.lua", ("",))
    put = Workload("put", "PUT", "/cache/users:put", "put_file.lua", (str(value_file),))
    return [
        Cell("GET c32 with `Accept-Encoding: gzip` ÷ GET uncompressed today", get_gzip, get_plain),
        Cell("GET c32 without `Accept-Encoding` ÷ today", get_plain, get_plain),
        Cell("PUT c32 ÷ today", put, put),
    ]


def bomb(server: Server) -> tuple[int, int]:
    """(status, peak RSS growth of the worker) for a 64 KB body inflating to 64 MiB."""
    body = gzip.compress(bytes(64 * 1024 * 1024), compresslevel=9)
    worker = server.worker_pid()
    before = peak_rss(worker)
    status, _ = request(server, "PUT", "/cache/bomb", body, **{"Content-Encoding": "gzip"})
    return status, peak_rss(worker) - before


def before_server(tree: Path | None, options: list[str], work_dir: Path) -> Server | None:
    """With ``--before``: a server of that tree's build, compression on."""
    if tree is None:
        return None
    if not (tree / "cachegrid" / "__init__.py").is_file():
        raise SystemExit(f"--before {tree}: no cachegrid/ package in that directory")
    settings = {"PYTHONPATH": str(tree.resolve()), "CACHEGRID_MEMORY_TRIM_INTERVAL": "0"}
    return Server.cachegrid("before", options, work_dir, settings)


def goal_rows(
    charges: dict[str, float], table_cells: list[Cell], with_before: bool, status: int, growth: int
) -> list[list[str]]:
    """The table's rows: each measure off, before (with ``--before``), on, and its goal."""
    middle = [f"{charges['before']:.2f}x"] if with_before else []
    rows = [["memory charged for it ÷ its size", f"{charges['off']:.2f}x", *middle, f"{charges['on']:.2f}x", "≤ 0.30x"]]
    for cell in table_cells:
        off_rps, on_rps = statistics.median(cell.off_rps), statistics.median(cell.on_rps)
        if with_before:
            before_rps = statistics.median(cell.before_rps)
            middle = [f"{before_rps:,.0f}/s ({ratio(before_rps / off_rps)})"]
        rows.append(
            [
                cell.label,
                f"{off_rps:,.0f}/s",
                *middle,
                f"{on_rps:,.0f}/s ({ratio(on_rps / off_rps)})",
                "≥ 1.0x" if "gzip" in cell.label else ("≥ 0.6x" if cell.label.startswith("PUT") else "≥ 0.7x"),
            ]
        )
    middle = ["(not run)"] if with_before else []
    rows.append(
        [
            "a 64 KB gzip body that inflates to 64 MiB",
            "400 (not read as gzip)",
            *middle,
            f"{status}, peak RSS +{growth / 1024 / 1024:.1f} MiB ({growth / MAX_VALUE_SIZE:.2f}x max_value_size)",
            "413, ≤ 2x",
        ]
    )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds of each cell (median)")
    parser.add_argument("--duration", type=int, default=5, help="seconds per wrk run")
    parser.add_argument("--worker", default="meinheld", choices=("meinheld", "gthread"))
    parser.add_argument("--before", type=Path, help="also run this tree's build, compression on, for its column")
    parser.add_argument("--output", type=Path, help="also write the Markdown here")
    args = parser.parse_args()
    exit_on_sigterm()
    require_tools()
    value = users_json()
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="cachegrid-compression-") as scratch:
        work_dir = Path(scratch)
        value_file = work_dir / "users.json"
        value_file.write_bytes(value)
        options = ["--worker", args.worker]
        on = Server.cachegrid("on", options, work_dir, {"CACHEGRID_MEMORY_TRIM_INTERVAL": "0"})
        off = Server.cachegrid(
            "off", options, work_dir, {"CACHEGRID_COMPRESS_THRESHOLD": "0", "CACHEGRID_MEMORY_TRIM_INTERVAL": "0"}
        )
        before = before_server(args.before, options, work_dir)
        servers = [on, off] + ([before] if before else [])
        try:
            for server in servers:
                server.wait_ready()
            charges = {server.name: charged(server, value) for server in servers}
            for server in servers:
                request(server, "PUT", f"/cache/{KEY}", value)
            table_cells = cells(value_file)
            for number in range(args.rounds):
                for cell in table_cells:
                    sides = [("off", off, cell.off, cell.off_rps)]
                    if before:
                        sides.append(("before", before, cell.on, cell.before_rps))
                    sides.append(("on", on, cell.on, cell.on_rps))
                    for name, server, workload, results in sides:
                        run = run_wrk(server.url(workload.path), workload, CONNECTIONS, args.duration)
                        if run.errors:
                            raise SystemExit(f"{name} {workload.name}: errors {run.errors}")
                        results.append(run.rps)
                        log(f"round {number + 1}: {name:6} {workload.name:9} {run.rps:9.0f}/s")
            gzip_answer = request(on, "GET", f"/cache/{KEY}", **{"Accept-Encoding": "gzip"})[1]
            inflated = json.loads(request(on, "GET", "/stats")[1]).get("inflated_cache_hits")
            status, growth = bomb(on)
            for server in servers:
                server.check_alive()
        finally:
            for server in servers:
                server.stop()
    rows = goal_rows(charges, table_cells, before is not None, status, growth)
    against = "" if before is None else f" (before: the tree `{args.before.name}`)"
    parts = [
        "# Compression: the goals table",
        "",
        f"`{command_line()}`, {args.worker} worker{against}, {args.rounds} alternating rounds of {args.duration} s "
        f"per cell (median), {CONNECTIONS} connections, {time.monotonic() - started:.0f} s in all.",
        "",
        f"The value: {len(value):,} bytes of JSON (100 user objects); held gzip-compressed in "
        f"{len(gzip_answer):,} bytes.",
        "",
        table(["measure", "off (today)", *(["before (on)"] if before else []), "on", "goal"], rows),
        "",
        f"Identity reads answered from the inflated values kept: {inflated}."
        if inflated is not None
        else "This build keeps no inflated values.",
        "",
        machine_section(),
    ]
    publish(parts, args.output)


if __name__ == "__main__":
    main()
