"""``cachegrid stats``: every counter of the server, once or live (``--watch``).

The live view follows rich's ``examples/top_lite_simulator.py``: ``render``
is a pure function of the latest /stats document and a ``History`` of the
recent ones, and the loop only fetches, records and calls ``Live.update``.

Rates (operations, evictions and expirations per second) are counter
deltas between two consecutive documents divided by the difference of
their ``uptime_seconds``: the server's own clock, so the time a request
takes does not skew them, and a server that restarted (uptime going back,
counters back to 0) simply starts a new history. An operation is a hit, a
miss, a set or a delete.

When stdout is not a terminal, ``--watch`` prints one plain line per refresh
instead (one JSON object per line with ``--json``), for logs and scripts.

Against a cluster (several ``--url``) the document is the nodes' sum, and
the view adds a row per node (``node_rows``/``nodes_table``, which
``cachegrid cluster status`` prints too), each node with its own history.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Iterator
from itertools import pairwise
from typing import Annotated, Any

import typer
from rich.console import Group, RenderableType
from rich.live import Live
from rich.panel import Panel
from rich.progress_bar import ProgressBar
from rich.table import Table
from rich.text import Text

from ..client import SyncCacheGridClient
from ..config import MiB
from .common import (
    JsonFlag,
    connect,
    field_text,
    missing_words,
    node_name,
    print_fields,
    print_json,
    rate_text,
    short_reason,
    wants_json,
)
from .status import ExitCode, fail, out

OPERATIONS = ("hits", "misses", "sets", "deletes")
HISTORY_SIZE = 30  # refreshes kept for the ops/s sparkline
SPARK = "▁▂▃▄▅▆▇█"
BAR_WIDTH = 30

Stats = dict[str, Any]

app = typer.Typer()


class History:
    """The last ``size + 1`` /stats documents: ``size`` rates between them."""

    def __init__(self, size: int = HISTORY_SIZE) -> None:
        self.samples: deque[Stats] = deque(maxlen=size + 1)

    def add(self, stats: Stats) -> None:
        if self.samples and stats["uptime_seconds"] < self.samples[-1]["uptime_seconds"]:
            self.samples.clear()  # the server restarted: its counters start again from 0
        self.samples.append(stats)

    def rate(self, *fields: str) -> float | None:
        """Per second, between the last two documents; None before there are two."""
        if len(self.samples) < 2:
            return None
        return _rate(self.samples[-2], self.samples[-1], fields)

    def hit_ratio(self) -> float | None:
        """Hits per lookup between the last two documents; None without lookups."""
        if len(self.samples) < 2:
            return None
        before, after = self.samples[-2], self.samples[-1]
        hits = after["hits"] - before["hits"]
        lookups = hits + after["misses"] - before["misses"]
        return hits / lookups if lookups > 0 else None

    def series(self, *fields: str) -> list[float]:
        """The rate between each two consecutive documents, oldest first."""
        samples = list(self.samples)
        rates = (_rate(before, after, fields) for before, after in pairwise(samples))
        return [rate for rate in rates if rate is not None]


def _rate(before: Stats, after: Stats, fields: tuple[str, ...]) -> float | None:
    elapsed = after["uptime_seconds"] - before["uptime_seconds"]
    if elapsed <= 0:
        return None
    delta = sum(after[field] - before[field] for field in fields)
    return max(delta, 0) / elapsed


def rates(history: History) -> dict[str, float | None]:
    return {
        "ops_per_second": history.rate(*OPERATIONS),
        "evictions_per_second": history.rate("evictions"),
        "expirations_per_second": history.rate("expired"),
    }


def sparkline(values: list[float]) -> str:
    """One block character per value, scaled to the largest."""
    top = max(values, default=0)
    if top <= 0:
        return SPARK[0] * len(values)
    return "".join(SPARK[round(value / top * (len(SPARK) - 1))] for value in values)


def size_text(count: float) -> str:
    """Bytes in the largest binary unit that keeps at least 1 of it."""
    for unit, scale in (("GiB", 1024**3), ("MiB", MiB), ("KiB", 1024)):
        if count >= scale:
            return f"{count / scale:,.1f} {unit}"
    return f"{count:,.0f} B"


def _duration(seconds: float) -> str:
    minutes, second = divmod(int(seconds), 60)
    hours, minute = divmod(minutes, 60)
    days, hour = divmod(hours, 24)
    if days:
        return f"{days}d {hour:02}h {minute:02}m"
    if hours:
        return f"{hours}h {minute:02}m {second:02}s"
    return f"{minutes}m {second:02}s"


def _bar(used: float, limit: float, label: str) -> Table:
    row = Table.grid(padding=(0, 1))
    row.add_row(ProgressBar(total=max(limit, 1), completed=min(used, limit), width=BAR_WIDTH), Text(label))
    return row


Histories = dict[str, History]


def record(document: Stats, nodes: Histories) -> None:
    """Add each node's document of a cluster's /stats to its history."""
    for url, stats in document.get("nodes", {}).items():
        if not stats.get("down"):
            nodes.setdefault(url, History()).add(stats)


def node_rows(document: Stats, nodes: Histories) -> list[dict[str, Any]]:
    """One row per node of a cluster's /stats (rates from ``nodes``)."""
    rows: list[dict[str, Any]] = []
    for url, stats in document.get("nodes", {}).items():
        if stats.get("down"):
            rows.append({"node": url, "up": False, "error": short_reason(str(stats.get("error")))})
            continue
        history = nodes.get(url) or History()
        rows.append(
            {
                "node": url,
                "up": True,
                "items": stats["current_size"],
                "max_items": stats["max_size"],
                "memory_bytes": stats["memory_usage_bytes"],
                "max_memory_bytes": stats["max_memory_bytes"],
                "hit_ratio": stats["hit_ratio"],
                "ops_per_second": history.rate(*OPERATIONS),
                "uptime_seconds": stats["uptime_seconds"],
            }
        )
    return rows


def nodes_table(document: Stats, nodes: Histories, total_ops: float | None = None) -> Table:
    """The rows of ``node_rows`` and the cluster's totals, as a table.

    A node is its short name (``host:port``), and its column never wraps
    nor shrinks below the longest name: two nodes cut to the same prefix
    could not be told apart, so on a narrow terminal the other columns
    wrap instead."""
    rows = node_rows(document, nodes)
    table = Table(title="nodes", title_justify="left")
    names = [node_name(row["node"]) for row in rows]
    table.add_column("node", no_wrap=True, min_width=max(map(len, ["total", *names])))
    for name, justify in (
        ("state", "left"),
        ("items", "right"),
        ("memory", "right"),
        ("hit ratio", "right"),
        ("ops/s", "right"),
        ("uptime", "right"),
    ):
        table.add_column(name, justify=justify)  # type: ignore[arg-type]
    for row, name in zip(rows, names, strict=True):
        if not row["up"]:
            table.add_row(Text(name), Text("down", style="red"), "-", "-", "-", "-", "-")
            continue
        table.add_row(
            Text(name),
            Text("up", style="green"),
            f"{row['items']:,} / {row['max_items']:,}",
            _memory(row["memory_bytes"], row["max_memory_bytes"]),
            f"{row['hit_ratio'] * 100:.1f} %",
            rate_text(row["ops_per_second"]),
            _duration(row["uptime_seconds"]),
        )
    up, down = document.get("nodes_up", 0), document.get("nodes_down", 0)
    table.add_row(
        Text("total", style="bold"),
        f"{up} up, {down} down",
        f"{document['current_size']:,} / {document['max_size']:,}",
        _memory(document["memory_usage_bytes"], document["max_memory_bytes"]),
        f"{document['hit_ratio'] * 100:.1f} %",
        rate_text(total_ops),
        "",
        style="bold",
    )
    return table


def _memory(used: float, limit: float) -> str:
    return f"{size_text(used)} / {size_text(limit)} ({used / limit * 100 if limit else 0:.0f} %)"


def render(stats: Stats, history: History, nodes: Histories | None = None) -> RenderableType:
    """The live view of one /stats document (rates from ``history``; a
    cluster's nodes from ``nodes``)."""
    per_second = rates(history)
    used, limit = stats["memory_usage_bytes"], stats["max_memory_bytes"]
    size, max_size = stats["current_size"], stats["max_size"]
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold", no_wrap=True)
    grid.add_column()
    recent = history.hit_ratio()
    grid.add_row(
        "hit ratio",
        f"{stats['hit_ratio'] * 100:.1f} % since start"
        + ("" if recent is None else f", {recent * 100:.1f} % last refresh")
        + f"  (hits {stats['hits']:,}, misses {stats['misses']:,})",
    )
    ops = Text(f"{rate_text(per_second['ops_per_second'])}  ")
    ops.append(sparkline(history.series(*OPERATIONS)), style="cyan")
    grid.add_row("ops/s", ops)
    grid.add_row(
        "memory",
        _bar(used, limit, f"{size_text(used)} / {size_text(limit)} ({used / limit * 100 if limit else 0:.1f} %)"),
    )
    grid.add_row("items", _bar(size, max_size, f"{size:,} / {max_size:,}"))
    grid.add_row("evictions/s", f"{rate_text(per_second['evictions_per_second'])}  ({stats['evictions']:,} in all)")
    grid.add_row("expirations/s", f"{rate_text(per_second['expirations_per_second'])}  ({stats['expired']:,} in all)")
    grid.add_row("rejected", f"{stats['rejected_full']:,} full, {stats['rejected_too_large']:,} too large")
    # A cluster's document is the nodes' sum, whose node_id is null once the
    # nodes have ids of their own: the title names the cluster instead.
    where = f"cluster of {len(stats['nodes'])} nodes" if "nodes" in stats else stats.get("node_id") or ""
    title = Text(f"cachegrid {where} · {stats.get('policy') or '-'} · up {_duration(stats['uptime_seconds'])}")
    footer = Text("ops/s: hits + misses + sets + deletes per second · Ctrl-C to quit", style="dim")
    parts: list[RenderableType] = [grid]
    if "nodes" in stats:
        parts.append(nodes_table(stats, nodes or {}, per_second["ops_per_second"]))
    return Panel(Group(*parts, footer), title=title, title_align="left", expand=False)


def line(stats: Stats, history: History) -> str:
    """One refresh as a plain line of name=value (stdout not a terminal)."""
    per_second = {name: "-" if value is None else f"{value:.1f}" for name, value in rates(history).items()}
    return (
        f"uptime={stats['uptime_seconds']:.1f} ops/s={per_second['ops_per_second']} "
        f"hit_ratio={stats['hit_ratio']:.4f} memory_mb={stats['memory_usage_bytes'] / MiB:.3f}"
        f"/{stats['max_memory_bytes'] / MiB:.3f} items={stats['current_size']}/{stats['max_size']} "
        f"evictions/s={per_second['evictions_per_second']} "
        f"expirations/s={per_second['expirations_per_second']}"
        + (f" nodes_up={stats['nodes_up']}/{len(stats['nodes'])}" if "nodes" in stats else "")
    )


@app.command()
def stats(
    ctx: typer.Context,
    watch: Annotated[bool, typer.Option("--watch", "-w", help="Refresh a live view until Ctrl-C.")] = False,
    interval: Annotated[float, typer.Option(help="With --watch: seconds between refreshes.")] = 1.0,
    iterations: Annotated[int | None, typer.Option(hidden=True, help="With --watch: stop after N refreshes.")] = None,
    as_json: JsonFlag = False,
) -> None:
    """Print every counter of the server, or watch them live (--watch).

    A table, or the raw /stats document with --json. With --watch: hit ratio,
    ops/s, memory against its limit, evictions and expirations per second,
    refreshed every --interval seconds until Ctrl-C (one line per refresh when
    stdout is not a terminal; one JSON object per line with --json).
    """
    as_json = wants_json(ctx, as_json)
    if not watch:
        with connect(ctx, name_down=False) as client:
            document = client.stats()
        down = nodes_down(document)
        if as_json:
            print_json(document)
        else:
            print_fields([(name, field_text(value)) for name, value in document.items()], title="stats")
        if down:
            raise fail(
                f"partial result: the totals are those of {len(document['nodes']) - len(down)} of "
                f"{len(document['nodes'])} nodes; {missing_words(down)}",
                ExitCode.PARTIAL,
            )
        return
    if not interval > 0:
        raise fail(f"--interval {interval}: more than 0 seconds", ExitCode.USAGE)
    if iterations is not None and iterations < 1:
        raise fail(f"--iterations {iterations}: at least 1", ExitCode.USAGE)
    with connect(ctx, name_down=False) as client:
        try:
            _watch(client, interval, iterations, as_json)
        except KeyboardInterrupt:  # Ctrl-C is how a watch ends: exit 0
            pass


def _watch(client: SyncCacheGridClient, interval: float, iterations: int | None, as_json: bool) -> None:
    history, nodes = History(), Histories()
    frames = _samples(client, history, interval, iterations)
    if as_json or not out.is_terminal:
        for stats in frames:
            record(stats, nodes)
            if as_json:
                print_json({**stats, **rates(history)})
            else:
                print(line(stats, history), flush=True)
        return
    with Live(console=out, auto_refresh=False) as live:
        for stats in frames:
            record(stats, nodes)
            live.update(render(stats, history, nodes), refresh=True)


def _samples(client: SyncCacheGridClient, history: History, interval: float, iterations: int | None) -> Iterator[Stats]:
    """Each refresh's /stats document, recorded in ``history`` first."""
    count = 0
    while True:
        document = client.stats()
        history.add(document)
        yield document
        count += 1
        if iterations is not None and count >= iterations:
            return
        time.sleep(interval)


def nodes_down(document: Stats) -> dict[str, str]:
    """The nodes of a cluster's /stats that did not answer, and why in a
    few words (which the document then holds too, instead of the client's
    own long text)."""
    down = {}
    for url, stats in document.get("nodes", {}).items():
        if stats.get("down"):
            stats["error"] = down[url] = short_reason(str(stats.get("error")))
    return down
