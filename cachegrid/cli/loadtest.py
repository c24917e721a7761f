"""``cachegrid loadtest``: HTTP load on a server, like redis-benchmark.

A thin adapter: it checks the options, runs the load generator (loadgen.py,
which has the how and why of the measurement) or the server's own engine load
test (``--server-side``), and renders the result: a table (plain lines when
stdout is not a terminal) or one JSON object with ``--json``. A rich progress
bar goes to stderr while it runs, when stderr is a terminal.

``--url``, ``--token`` and ``--json`` are options of this command; when the
app also has them as global options (``cachegrid --url ... loadtest``, kept in
``ctx.obj``), those apply unless the command's own are given.
"""

from __future__ import annotations

import json
import math
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from . import loadgen
from .status import ExitCode, err, fail

DEFAULT_URL = "http://127.0.0.1:8080"
DEFAULT_REQUESTS = 100_000
OPERATION_TYPES = ("get", "set", "mixed")
EXIT_CODES = {
    "unavailable": ExitCode.UNAVAILABLE,
    "refused": ExitCode.REFUSED,
    # A missing or wrong token has a code of its own where the app defines one.
    "unauthorized": getattr(ExitCode, "UNAUTHORIZED", ExitCode.REFUSED),
    "server_error": ExitCode.SERVER_ERROR,
}

app = typer.Typer()


def parse_mix(text: str) -> float:
    """``"80:20"`` -> 0.8, the share of GETs; ValueError when it is not GET:SET."""
    parts = text.split(":")
    if len(parts) != 2 or not all(part.strip().isdigit() for part in parts):
        raise ValueError(f"--mix {text!r}: give GET:SET as two whole numbers, like 80:20")
    gets, sets = (int(part) for part in parts)
    if gets + sets == 0:
        raise ValueError(f"--mix {text!r}: at least one side must be above 0")
    return gets / (gets + sets)


@app.command()
def loadtest(
    ctx: typer.Context,
    url: Annotated[str, typer.Option(envvar="CACHEGRID_URL", show_default=True,
                                     help="The server.")] = DEFAULT_URL,
    token: Annotated[str | None, typer.Option(envvar="CACHEGRID_AUTH_TOKEN", show_default=False,
                                              help="Bearer token, for a server started with one.")] = None,
    requests: Annotated[int | None, typer.Option(
        "--requests", "-n", help=f"Requests to send (default {DEFAULT_REQUESTS}; not with --duration).")] = None,
    duration: Annotated[float | None, typer.Option(
        "--duration", "-d", help="Run for this many seconds instead of a number of requests.")] = None,
    concurrency: Annotated[int, typer.Option("--concurrency", "-c", help="Connections.")] = 32,
    mix: Annotated[str, typer.Option(help="GET:SET ratio of the requests.")] = "80:20",
    keyspace: Annotated[int, typer.Option(help="Keys key:0 .. key:K-1, filled first (untimed).")] = 10_000,
    value_size: Annotated[int, typer.Option(help="Characters of the JSON string value that is SET.")] = 32,
    batch: Annotated[int, typer.Option(help="Keys per request with batch get/set; 0: single-key requests.")] = 0,
    pipeline: Annotated[int, typer.Option(help="Requests in flight per connection (HTTP/1.1 pipelining).")] = 1,
    processes: Annotated[int | None, typer.Option(
        help="Load generator processes (default: the number of CPUs).", show_default=False)] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
    server_side: Annotated[bool, typer.Option(
        "--server-side", help="Run the server's own engine load test (POST /test/load) instead.")] = False,
    operations: Annotated[int | None, typer.Option(
        help="With --server-side: operations (default 1000).", show_default=False)] = None,
    operation_type: Annotated[str | None, typer.Option(
        help="With --server-side: get, set or mixed (default mixed).", show_default=False)] = None,
) -> None:
    """Put load on a server over HTTP and report requests/s, errors and latency."""
    url, token, as_json = _connection(ctx, url, token, as_json)
    try:
        target = loadgen.Target.parse(url, token)
    except ValueError as error:
        raise fail(f"--url {error}", ExitCode.USAGE) from None
    if server_side:
        _server_side(target, operations, operation_type, as_json)
        return
    if operations is not None or operation_type is not None:
        raise fail("--operations and --operation-type go with --server-side", ExitCode.USAGE)
    plan = _plan(requests, duration, concurrency, mix, keyspace, value_size, batch, pipeline, processes)
    try:
        report = _run(target, plan)
    except loadgen.LoadError as error:
        raise fail(str(error), EXIT_CODES[error.kind]) from None
    except KeyboardInterrupt:  # a second Ctrl-C (the first one stops the load and reports)
        err.print("[red]error:[/red] interrupted")
        raise typer.Exit(130) from None
    document = report.to_dict()
    if as_json:
        print(json.dumps(document))
        return
    _render(f"cachegrid loadtest {target.url}", _client_rows(document))


def _connection(ctx: typer.Context, url: str, token: str | None, as_json: bool) -> tuple[str, str | None, bool]:
    """The command's own --url/--token when given on its command line, else
    the app's global ones (which already fell back to the environment)."""
    globals_ = ctx.obj
    if not _on_command_line(ctx, "url"):
        urls = getattr(globals_, "urls", None)
        if urls:  # failover hosts make no sense for a load test: the first one
            url = str(urls[0]).split(",")[0].strip() or url
    if not _on_command_line(ctx, "token"):
        token = getattr(globals_, "token", None) or token
    return url, token, as_json or bool(getattr(globals_, "json", False))


def _on_command_line(ctx: typer.Context, name: str) -> bool:
    # By name: typer may use its own copy of click, with its own ParameterSource.
    return getattr(ctx.get_parameter_source(name), "name", None) == "COMMANDLINE"


def _plan(requests: int | None, duration: float | None, concurrency: int, mix: str, keyspace: int,
          value_size: int, batch: int, pipeline: int, processes: int | None) -> loadgen.Plan:
    """The plan, or one red line for an option that cannot be used."""
    if requests is not None and duration is not None:
        raise fail("give --requests or --duration, not both", ExitCode.USAGE)
    checks = [
        (requests is None or requests >= 1, f"--requests {requests}: at least 1"),
        (duration is None or 0 < duration < math.inf, f"--duration {duration}: a number of seconds above 0"),
        (concurrency >= 1, f"--concurrency {concurrency}: at least 1"),
        (keyspace >= 1, f"--keyspace {keyspace}: at least 1"),
        (value_size >= 0, f"--value-size {value_size}: 0 or more"),
        (batch >= 0, f"--batch {batch}: 0 (single keys) or more"),
        (batch <= keyspace, f"--batch {batch}: no more than the --keyspace ({keyspace}), the keys are distinct"),
        (pipeline >= 1, f"--pipeline {pipeline}: at least 1"),
        (processes is None or processes >= 1, f"--processes {processes}: at least 1"),
    ]
    for ok, message in checks:
        if not ok:
            raise fail(message, ExitCode.USAGE)
    try:
        get_share = parse_mix(mix)
    except ValueError as error:
        raise fail(str(error), ExitCode.USAGE) from None
    return loadgen.Plan(
        requests=DEFAULT_REQUESTS if requests is None and duration is None else requests,
        duration=duration, concurrency=concurrency, get_share=get_share, keyspace=keyspace,
        value_size=value_size, batch=batch, pipeline=pipeline,
        processes=processes or loadgen.default_processes(),
    )


def _run(target: loadgen.Target, plan: loadgen.Plan) -> loadgen.Report:
    if not err.is_terminal:
        return loadgen.run(target, plan)
    by_time = plan.requests is None
    columns = [TextColumn("{task.description}"), BarColumn(), TextColumn("{task.fields[done]} requests"),
               TimeElapsedColumn()]
    # No auto-refresh: it would be a thread, and the workers are forked from
    # this process; the bar is redrawn from the ~10 updates a second instead.
    with Progress(*columns, console=err, transient=True, auto_refresh=False) as progress:
        task = progress.add_task("loadtest", total=plan.duration if by_time else plan.requests, done=0)

        def update(done: int, elapsed: float) -> None:
            progress.update(task, completed=elapsed if by_time else done, done=done)
            progress.refresh()

        return loadgen.run(target, plan, update)


def _server_side(target: loadgen.Target, operations: int | None, kind: str | None, as_json: bool) -> None:
    operations = 1000 if operations is None else operations
    kind = kind or "mixed"
    if operations < 1:
        raise fail(f"--operations {operations}: at least 1", ExitCode.USAGE)
    if kind not in OPERATION_TYPES:
        raise fail(f"--operation-type {kind!r}: one of {', '.join(OPERATION_TYPES)}", ExitCode.USAGE)
    try:
        answer = loadgen.server_side(target, operations, kind)
    except loadgen.LoadError as error:
        raise fail(str(error), EXIT_CODES[error.kind]) from None
    if as_json:
        print(json.dumps(answer))
        return
    _render(f"cachegrid server-side load test {target.url}", _server_rows(answer))


def _ms(value: Any) -> str:
    return "-" if value is None else f"{value:.3f}"


def _rate(value: Any) -> str:
    return "-" if value is None else f"{value:,.1f}"


def _client_rows(document: dict[str, Any]) -> list[tuple[str, str]]:
    latency = document["latency_ms"]
    errors = f"{document['errors']:,}"
    if document["errors_by_kind"]:
        errors += " (" + ", ".join(f"{kind}: {n:,}" for kind, n in document["errors_by_kind"].items()) + ")"
    rows = [
        ("requests", f"{document['requests']:,}"),
        ("gets / sets", f"{document['gets']:,} / {document['sets']:,}"),
        ("errors", errors),
        ("duration", f"{document['duration_seconds']:.3f} s"),
        ("requests/s", _rate(document["requests_per_second"])),
    ]
    if document["batch"]:
        rows += [("keys", f"{document['keys']:,}"), ("keys/s", _rate(document["keys_per_second"]))]
    rows += [(f"latency {name}", f"{_ms(latency[name])} ms") for name in ("p50", "p95", "p99", "max")]
    if document["generator_cpu_percent"] is not None:
        rows.append(("generator CPU", f"{document['generator_cpu_percent']:.0f} % of a core"))
    setup = (f"{document['concurrency']} over {document['processes']} process(es), "
             f"pipeline {document['pipeline']}, batch {document['batch']}")
    rows.append(("connections", setup))
    return rows


def _server_rows(answer: dict[str, Any]) -> list[tuple[str, str]]:
    latency_us = answer.get("latency_us") or {}
    rows = [
        ("operation type", str(answer.get("operation_type"))),
        ("operations", f"{answer.get('num_operations', 0):,}"),
        ("errors", f"{answer.get('errors', 0):,}"),
        ("duration", f"{answer.get('duration_seconds', 0):.3f} s"),
        ("operations/s", _rate(answer.get("ops_per_second"))),
    ]
    for name in ("p50", "p95", "p99", "max"):
        value = latency_us.get(name)
        rows.append((f"latency {name}", f"{_ms(None if value is None else value / 1000)} ms"))
    rows.append(("policy", str(answer.get("policy"))))
    return rows


def _render(title: str, rows: list[tuple[str, str]]) -> None:
    """A table on a terminal; plain ``name  value`` lines otherwise."""
    out = Console(highlight=False)
    if not out.is_terminal:
        width = max(len(name) for name, _ in rows)
        for name, value in rows:
            print(f"{name.ljust(width)}  {value}")
        return
    table = Table(title=title, show_header=False, title_justify="left", min_width=len(title))
    table.add_column(style="bold")
    table.add_column(justify="right")
    for name, value in rows:
        table.add_row(name, value)
    out.print(table)
