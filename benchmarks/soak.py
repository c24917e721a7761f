"""Soak test: does the default server's memory stay flat under minutes of mixed load at full speed?

Run it on demand (it is not a test; it needs ``wrk``)::

    .venv/bin/python benchmarks/soak.py [--minutes 10] [--output docs/benchmarks-soak.md]

What it measures
----------------
``cachegrid serve`` as a user starts it (only ``--port``; the one setting
changed is ``CACHEGRID_MAX_SIZE``, raised so that the keyspace fits: at the
default of 10,000 items most GETs would miss and every PUT would evict),
preloaded with 100,000 keys ``user:NNNNNN`` -> ``{"name":"Alice","age":30}``
by batch set. Then, for ``--minutes``, 80% GET / 20% PUT over those keys at
full speed (``lua/mixed.lua``, ``wrk -t1 -c32``), in back-to-back wrk runs of
10 s; after each, the worker's RSS (``VmRSS`` of the gunicorn master's one
child), the requests so far and the errors wrk counted (connect, read, write,
timeout, and non-2xx/3xx answers).

The goal: RSS at the end ÷ RSS after the first minute <= 1.05, with no error.
The first minute is the warm-up (allocator pools, the caches of the first
requests); what grows after it grows with time, which a cache cannot shed by
restarting its worker (the restart empties the cache). The report is a
Markdown table of the samples and an SVG plot of RSS over time (plain SVG
text, no plotting library). Only one server runs and it is stopped at the end,
on errors and on Ctrl-C or SIGTERM; the server and wrk handling is shared with
the other HTTP benchmarks (``benchmarks/harness.py``).
"""

from __future__ import annotations

import argparse
import datetime
import json
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from harness import (
    MIB,
    Server,
    Workload,
    command_line,
    exit_on_sigterm,
    log,
    machine_section,
    port_only,
    preload,
    publish,
    ratio,
    require_tools,
    run_wrk,
    table,
)

KEYS = 100_000
GET_SHARE = 0.8
CONNECTIONS = 32
SAMPLE_SECONDS = 10
WARMUP_SECONDS = 60
GOAL_RSS_RATIO = 1.05
MIXED = Workload(
    "mixed", f"{GET_SHARE:.0%} GET / {1 - GET_SHARE:.0%} PUT", "/", "mixed.lua", args=(str(KEYS), str(GET_SHARE))
)


@dataclass
class Sample:
    seconds: float
    requests: int
    rate: float  # req/s over the last interval
    rss: int
    errors: int


def soak(minutes: float, work_dir: Path) -> tuple[list[Sample], int, dict[str, int], int]:
    """The samples, the RSS after the preload, the errors by kind, and the entries at the end."""
    server = Server.cachegrid("soak", [], work_dir, {"CACHEGRID_MAX_SIZE": str(2 * KEYS)}, bind=port_only)
    try:
        server.wait_ready()
        preload(server, KEYS)
        rss_loaded = server.worker_rss()
        log(f"{KEYS:,} keys stored; RSS {rss_loaded / MIB:.1f} MiB; {minutes:g} min of {MIXED.label}")
        samples: list[Sample] = []
        errors: dict[str, int] = {}
        requests = 0
        started = time.monotonic()
        while time.monotonic() - started < minutes * 60:
            run = run_wrk(server.url("/"), MIXED, CONNECTIONS, SAMPLE_SECONDS, threads=1)
            requests += run.requests
            for kind, count in run.errors.items():
                errors[kind] = errors.get(kind, 0) + count
            samples.append(
                Sample(time.monotonic() - started, requests, run.rps, server.worker_rss(), sum(errors.values()))
            )
            if len(samples) % 6 == 0:
                log(
                    f"{samples[-1].seconds:.0f} s: {requests:,} requests, RSS {samples[-1].rss / MIB:.1f} MiB, "
                    f"{samples[-1].errors} errors"
                )
        server.check_alive()
        entries = json.loads(server.request("GET", "/stats")[1])["current_size"]
        problems = server.log_problems()
        if problems:
            errors["server log error lines"] = problems
        return samples, rss_loaded, errors, entries
    finally:
        server.stop()


def reference(samples: list[Sample]) -> Sample:
    """The first sample at or after the warm-up minute (the first of all in a shorter run)."""
    return next((s for s in samples if s.seconds >= WARMUP_SECONDS - 1), samples[0])


def svg_plot(samples: list[Sample], width: int = 640, height: int = 280) -> str:
    """RSS (MiB) over time as a plain SVG line chart, the y axis starting at 0."""
    left, right, top, bottom = 56, 16, 24, 40
    plot_w, plot_h = width - left - right, height - top - bottom
    end = max(s.seconds for s in samples)
    peak = max(s.rss for s in samples) / MIB * 1.15
    peak = max(10.0, float(int(peak / 10 + 1) * 10))

    def x(seconds: float) -> float:
        return left + plot_w * seconds / end

    def y(mib: float) -> float:
        return top + plot_h * (1 - mib / peak)

    points = " ".join(f"{x(s.seconds):.1f},{y(s.rss / MIB):.1f}" for s in samples)
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="11">',
        '<rect width="100%" height="100%" fill="white"/>',
        f'<text x="{left}" y="15" font-size="13">Worker RSS (MiB) under {MIXED.label}, {KEYS:,} keys</text>',
    ]
    for i in range(6):
        mib = peak * i / 5
        parts.append(f'<line x1="{left}" x2="{left + plot_w}" y1="{y(mib):.1f}" y2="{y(mib):.1f}" stroke="#ddd"/>')
        parts.append(f'<text x="{left - 6}" y="{y(mib) + 4:.1f}" text-anchor="end">{mib:.0f}</text>')
    step = 60 if end > 240 else 30 if end > 90 else 10
    for tick in range(0, int(end) + 1, step):
        parts.append(
            f'<text x="{x(tick):.1f}" y="{top + plot_h + 16}" text-anchor="middle">{tick // 60}:{tick % 60:02d}</text>'
        )
    parts += [
        f'<text x="{left + plot_w / 2}" y="{height - 6}" text-anchor="middle">time (min:s)</text>',
        f'<line x1="{left}" x2="{left}" y1="{top}" y2="{top + plot_h}" stroke="black"/>',
        f'<line x1="{left}" x2="{left + plot_w}" y1="{top + plot_h}" y2="{top + plot_h}" stroke="black"/>',
        f'<polyline points="{points}" fill="none" stroke="#1f77b4" stroke-width="2"/>',
        "</svg>",
    ]
    return "\n".join(parts) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--minutes", type=float, default=10, help="minutes of load (default 10)")
    parser.add_argument("--output", type=Path, help="also write the Markdown here")
    parser.add_argument(
        "--plot", type=Path, help="the SVG plot (default: next to --output, with .svg; none without --output)"
    )
    args = parser.parse_args()
    exit_on_sigterm()
    require_tools()
    plot = args.plot or (args.output.with_suffix(".svg") if args.output else None)

    with tempfile.TemporaryDirectory(prefix="cachegrid-soak-") as scratch:
        samples, rss_loaded, errors, entries = soak(args.minutes, Path(scratch))

    base, last = reference(samples), samples[-1]
    growth = last.rss / base.rss
    error_count = sum(errors.values())
    met = growth <= GOAL_RSS_RATIO and error_count == 0
    rows = [
        [
            f"{int(s.seconds) // 60}:{int(s.seconds) % 60:02d}",
            f"{s.requests:,}",
            f"{s.rate:,.0f}",
            f"{s.rss / MIB:.2f}",
            str(s.errors),
        ]
        for s in samples
    ]
    label = f"{args.minutes:g}-minute run"
    parts = [
        f"# Soak: the default server under {args.minutes:g} minutes of mixed load ({label})",
        "",
        f"Measured by `{command_line()}` on {datetime.date.today().isoformat()}. "
        f"`cachegrid serve` with its defaults (only `CACHEGRID_MAX_SIZE` raised to {2 * KEYS:,}, so that the "
        f"{KEYS:,} keys fit), preloaded by batch set, then {MIXED.label} over those keys at full speed "
        f"(`wrk -t1 -c{CONNECTIONS}`, `benchmarks/lua/mixed.lua`) in back-to-back runs of {SAMPLE_SECONDS} s; "
        "after each, the worker's VmRSS (see the docstring of the script).",
        "",
        machine_section(),
        "",
        "## Goal",
        "",
        f"- **{'met' if met else 'NOT met'}**: RSS at the end ÷ RSS after the first minute ≤ {GOAL_RSS_RATIO} "
        f"with 0 errors: {last.rss / MIB:.1f} MiB ÷ {base.rss / MIB:.1f} MiB = {ratio(growth)} "
        f"({(last.rss - base.rss) / max(last.requests - base.requests, 1):.3f} B per request after the first "
        f"minute), {error_count} errors" + (f" ({errors})" if errors else ""),
        f"- {last.requests:,} requests in {last.seconds / 60:.1f} min ({last.requests / last.seconds:,.0f} req/s "
        f"on average); RSS after the preload {rss_loaded / MIB:.1f} MiB; {entries:,} entries at the end"
        + ("" if entries == KEYS else f" (expected {KEYS:,})"),
    ]
    if plot:
        parts += ["", f"![Worker RSS over time]({plot.name})"]
    parts += [
        "",
        "## Samples",
        "",
        table(["time", "requests so far", "req/s (last interval)", "RSS MiB", "errors so far"], rows),
    ]
    publish(parts, args.output)
    if plot:
        plot.parent.mkdir(parents=True, exist_ok=True)
        # The RSS after the preload is the line's start, at 0:00.
        plot.write_text(svg_plot([Sample(0.0, 0, 0.0, rss_loaded, 0), *samples]))
        log(f"plot written to {plot}")


if __name__ == "__main__":
    main()
