"""``cachegrid cluster``: a cluster's nodes at a glance, and nginx in front of them.

``status`` asks every ``--url`` node for its /stats twice, ``--sample``
seconds apart (for ops/s), and prints a row per node (up or down, items,
memory against its limit, hit ratio, ops/s, uptime) and the totals; it exits
UNHEALTHY when a node is down, UNAVAILABLE when none answered.

``nginx-config`` prints an nginx configuration routing each key to its node
(cachegrid.cluster.nginx says what each endpoint does through it).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import typer

from ..cluster.nginx import parse_node
from ..cluster.nginx import render as render_nginx
from .common import JsonFlag, connect, hosts, missing_words, options, print_json, wants_json
from .stats_view import OPERATIONS, Histories, History, node_rows, nodes_down, nodes_table, record
from .status import ExitCode, fail, out

app = typer.Typer(
    name="cluster", help="A cluster of nodes: their status, and an nginx configuration for them.", no_args_is_help=True
)


@app.command()
def status(
    ctx: typer.Context,
    sample: Annotated[float, typer.Option(help="Seconds between the two samples that give ops/s (0: none).")] = 1.0,
    as_json: JsonFlag = False,
) -> None:
    """One row per node of the --url cluster, and the totals."""
    if sample < 0:
        raise fail(f"--sample {sample}: 0 or more seconds", ExitCode.USAGE)
    nodes, totals = Histories(), History()
    with connect(ctx, name_down=False) as client:
        document = _cluster_stats(client.stats(), client.hosts[0])
        record(document, nodes)
        totals.add(document)
        if sample > 0:
            time.sleep(sample)
            document = _cluster_stats(client.stats(), client.hosts[0])
            record(document, nodes)
            totals.add(document)
    down = nodes_down(document)
    total_ops = totals.rate(*OPERATIONS)
    if wants_json(ctx, as_json):
        print_json(
            {
                "nodes": node_rows(document, nodes),
                "total": {name: value for name, value in document.items() if name != "nodes"}
                | {"ops_per_second": total_ops},
            }
        )
    elif out.is_terminal:
        out.print(nodes_table(document, nodes, total_ops))
    else:
        for row in node_rows(document, nodes):
            if row["up"]:
                print(
                    f"{row['node']}  up  items={row['items']}/{row['max_items']} "
                    f"memory_bytes={row['memory_bytes']}/{row['max_memory_bytes']} "
                    f"hit_ratio={row['hit_ratio']:.4f} ops/s={_rate(row['ops_per_second'])} "
                    f"uptime={row['uptime_seconds']:.1f}"
                )
            else:
                print(f"{row['node']}  down  {row['error']}")
        print(
            f"total  {document['nodes_up']} up {document['nodes_down']} down  "
            f"items={document['current_size']}/{document['max_size']} hit_ratio={document['hit_ratio']:.4f} "
            f"ops/s={_rate(total_ops)}"
        )
    if down:
        raise fail(f"not every node is up: {missing_words(down)}", ExitCode.UNHEALTHY)


def _rate(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


def _cluster_stats(document: dict, host: str) -> dict:
    """A lone server's /stats in the cluster's shape (one node, up)."""
    if "nodes" in document:
        return document
    return {**document, "nodes": {host: document}, "nodes_up": 1, "nodes_down": 0}


@app.command("nginx-config")
def nginx_config(
    ctx: typer.Context,
    node: Annotated[
        list[str] | None,
        typer.Option(
            "--node",
            metavar="HOST:PORT[=WEIGHT]",
            show_default=False,
            help="A node (repeat for each). Default: the --url nodes.",
        ),
    ] = None,
    listen: Annotated[str, typer.Option(help="Where nginx listens (nginx's listen syntax).")] = "127.0.0.1:8080",
    runtime_dir: Annotated[
        Path | None,
        typer.Option(help="Put nginx's pid file, logs and temporary files here (for an nginx run as a user)."),
    ] = None,
    fail_timeout: Annotated[int, typer.Option(help="Seconds a failed node is left out.")] = 10,
) -> None:
    """Print an nginx configuration for the cluster: each key routed to its
    node with hash ... consistent (the Python client's ring="nginx"), failover
    to the next node, keep-alive; batch and admin endpoints answered 421."""
    given = node or [url.split("://", 1)[1] for url in hosts(options(ctx).urls)]
    if fail_timeout < 1:
        raise fail(f"--fail-timeout {fail_timeout}: at least 1 second", ExitCode.USAGE)
    try:
        text = render_nginx(
            [parse_node(text) for text in given], listen, runtime_dir.resolve() if runtime_dir else None, fail_timeout
        )
    except ValueError as error:
        raise fail(f"--node: {error}", ExitCode.USAGE) from None
    print(text, end="")
