"""``cachegrid cluster``: a cluster's nodes at a glance, and nginx in front of them.

``status`` asks every ``--url`` node for its /stats twice, ``--sample``
seconds apart (for ops/s), and prints a row per node (up or down, items,
memory against its limit, hit ratio, ops/s, uptime) and the totals; it exits
UNHEALTHY when a node is down, UNAVAILABLE when none answered.

``nginx-config`` prints an nginx configuration routing each key to its node
(cachegrid.cluster.nginx says what each endpoint does through it); the
top-level ``cachegrid nginx-config`` (``single``) one for a lone server. With
``--tls-cert`` and ``--tls-key`` either listens with TLS (docs/tls.md).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import typer

from ..cluster.nginx import Tls, parse_node, render_single
from ..cluster.nginx import render as render_nginx
from .common import JsonFlag, connect, hosts, missing_words, options, print_json, wants_json
from .stats_view import OPERATIONS, Histories, History, node_rows, nodes_down, nodes_table, record
from .status import ExitCode, fail, out

app = typer.Typer(
    name="cluster", help="A cluster of nodes: their status, and an nginx configuration for them.", no_args_is_help=True
)
single = typer.Typer()  # `cachegrid nginx-config`: the front of one server

ListenOption = Annotated[
    str | None,
    typer.Option(
        help="Where nginx listens (nginx's listen syntax). Default 127.0.0.1:8080, with TLS 127.0.0.1:8443.",
        show_default=False,
    ),
]
RuntimeDirOption = Annotated[
    Path | None,
    typer.Option(help="Put nginx's pid file, logs and temporary files here (for an nginx run as a user)."),
]
TlsCertOption = Annotated[
    Path | None,
    typer.Option(
        metavar="PEM",
        show_default=False,
        help="Listen with TLS: the server's certificate (then any intermediate ones), in PEM. With --tls-key.",
    ),
]
TlsKeyOption = Annotated[
    Path | None, typer.Option(metavar="PEM", show_default=False, help="The private key of --tls-cert, in PEM.")
]


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
    listen: ListenOption = None,
    runtime_dir: RuntimeDirOption = None,
    fail_timeout: Annotated[int, typer.Option(help="Seconds a failed node is left out.")] = 10,
    tls_cert: TlsCertOption = None,
    tls_key: TlsKeyOption = None,
) -> None:
    """Print an nginx configuration for the cluster: each key routed to its
    node with hash ... consistent (the Python client's ring="nginx"), failover
    to the next node, keep-alive; batch and admin endpoints answered 421.
    With --tls-cert and --tls-key it listens with TLS (docs/tls.md)."""
    given = node or [_host_port(url) for url in hosts(options(ctx).urls)]
    if fail_timeout < 1:
        raise fail(f"--fail-timeout {fail_timeout}: at least 1 second", ExitCode.USAGE)
    tls = _tls(tls_cert, tls_key)
    try:
        nodes = [parse_node(text) for text in given]
        text = render_nginx(nodes, _listen(listen, tls), _runtime(runtime_dir), fail_timeout, tls=tls)
    except ValueError as error:
        raise fail(f"--node: {error}", ExitCode.USAGE) from None
    print(text, end="")


@single.command("nginx-config")
def single_nginx_config(
    ctx: typer.Context,
    node: Annotated[
        str | None,
        typer.Option("--node", metavar="HOST:PORT", show_default=False, help="The server. Default: the first --url."),
    ] = None,
    listen: ListenOption = None,
    runtime_dir: RuntimeDirOption = None,
    tls_cert: TlsCertOption = None,
    tls_key: TlsKeyOption = None,
) -> None:
    """Print an nginx configuration in front of one server: every request
    passed to it over kept-alive HTTP/1.1, /events unbuffered; with
    --tls-cert and --tls-key nginx listens with TLS (docs/tls.md). For a
    cluster: cachegrid cluster nginx-config."""
    given = node or _host_port(hosts(options(ctx).urls)[0])
    tls = _tls(tls_cert, tls_key)
    try:
        server = parse_node(given)
    except ValueError as error:
        raise fail(f"--node: {error}", ExitCode.USAGE) from None
    if server.weight != 1:
        raise fail(f"--node {given!r}: one server has no weight", ExitCode.USAGE)
    print(render_single(server, _listen(listen, tls), _runtime(runtime_dir), tls), end="")


def _host_port(url: str) -> str:
    return url.split("://", 1)[1]


def _runtime(runtime_dir: Path | None) -> Path | None:
    return runtime_dir.resolve() if runtime_dir else None


def _listen(listen: str | None, tls: Tls | None) -> str:
    if listen is not None:
        return listen
    return "127.0.0.1:8443" if tls else "127.0.0.1:8080"


def _tls(cert: Path | None, key: Path | None) -> Tls | None:
    """The TLS files, as absolute paths (nginx reads them from its own
    directory); a usage error for one without the other or a missing file."""
    if cert is None and key is None:
        return None
    if cert is None or key is None:
        raise fail("give --tls-cert and --tls-key together", ExitCode.USAGE)
    for option, path in (("--tls-cert", cert), ("--tls-key", key)):
        if not path.is_file():
            raise fail(f"{option} {str(path)!r}: no such file", ExitCode.USAGE)
    return Tls(cert.resolve(), key.resolve())
