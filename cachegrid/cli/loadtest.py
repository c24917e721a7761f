"""``cachegrid loadtest``: HTTP load on a server, like redis-benchmark.

A thin adapter: it checks the options, runs the load generator
(``cachegrid.loadgen``, which has the how and why of the measurement) or the
server's own engine load test (``--server-side``), and renders the result: a
table (plain lines when stdout is not a terminal) or one JSON object with
``--json``. A rich progress bar goes to stderr while it runs, when stderr is
a terminal.

A load test never touches the server's data (loadgen/keyspace.py has how):
its keys are ``<prefix><n>``, the prefix random per run or ``--prefix``; it
refuses a server that holds keys under the prefix, caps its keyspace at the
server's free room so that nothing is evicted (or refuses when too little
fits), and deletes its keys afterwards, also on an error, Ctrl-C or SIGTERM,
unless ``--keep``. The report says which prefix, keyspace, cleanup and how
many evictions the server counted during the run. A refusal exits with
REFUSED, as a server declining a write does: nothing was written.

The server and the token are the global ``--url`` and ``--token`` (with their
environment variables). ``loadtest --url/--token`` are aliases kept for the
scripts that give them after the command; given there, they win over the
global ones. A load test talks to one server: of several ``--url`` hosts, the
first.
"""

from __future__ import annotations

import math
import signal
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType
from typing import Annotated, Any

import typer
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from .. import loadgen
from .common import JsonFlag, options, print_fields, print_json, rate_text, wants_json
from .status import ExitCode, err, exit_code_for, fail

DEFAULT_REQUESTS = 100_000

app = typer.Typer()

# The options of a load test's own keys (loadgen/keyspace.py).
KeyspaceOption = Annotated[
    int,
    typer.Option(
        help="Keys <prefix>0 .. <prefix>K-1, filled first (untimed); capped at the server's free room, "
        "so that nothing is evicted."
    ),
]
PrefixOption = Annotated[
    str | None,
    typer.Option(
        metavar="PREFIX",
        show_default=False,
        help="Key prefix: 1 to 64 letters, digits and _ . : - (default: loadtest:<8 random hex digits>:, "
        "new each run). The run is refused when the server already holds a key under it.",
    ),
]
KeepOption = Annotated[
    bool, typer.Option("--keep", help="Leave the load test's keys on the server (default: delete them).")
]


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
    # Aliases of the global options, without an environment variable or a
    # default of their own: those are the global option's.
    url: Annotated[
        str | None,
        typer.Option(
            "--url", metavar="URL", show_default=False, help="The global --url, given after the command (wins over it)."
        ),
    ] = None,
    token: Annotated[
        str | None, typer.Option(show_default=False, help="The global --token, given after the command (wins over it).")
    ] = None,
    requests: Annotated[
        int | None,
        typer.Option("--requests", "-n", help=f"Requests to send (default {DEFAULT_REQUESTS}; not with --duration)."),
    ] = None,
    duration: Annotated[
        float | None,
        typer.Option("--duration", "-d", help="Run for this many seconds instead of a number of requests."),
    ] = None,
    concurrency: Annotated[int, typer.Option("--concurrency", "-c", help="Connections.")] = 32,
    mix: Annotated[str, typer.Option(help="GET:SET ratio of the requests.")] = "80:20",
    keyspace: KeyspaceOption = 10_000,
    prefix: PrefixOption = None,
    keep: KeepOption = False,
    value_size: Annotated[int, typer.Option(help="Characters of the JSON string value that is SET.")] = 32,
    batch: Annotated[int, typer.Option(help="Keys per request with batch get/set; 0: single-key requests.")] = 0,
    pipeline: Annotated[int, typer.Option(help="Requests in flight per connection (HTTP/1.1 pipelining).")] = 1,
    processes: Annotated[
        int | None, typer.Option(help="Load generator processes (default: the number of CPUs).", show_default=False)
    ] = None,
    as_json: JsonFlag = False,
    server_side: Annotated[
        bool, typer.Option("--server-side", help="Run the server's own engine load test (POST /test/load) instead.")
    ] = False,
    operations: Annotated[
        int | None, typer.Option(help="With --server-side: operations (default 1000).", show_default=False)
    ] = None,
    operation_type: Annotated[
        str | None, typer.Option(help="With --server-side: get, set or mixed (default mixed).", show_default=False)
    ] = None,
) -> None:
    """Put load on a server over HTTP and report requests/s, errors and latency.

    It never touches the server's own keys: it writes only keys of its own
    prefix (random per run, or --prefix), refuses a server that already holds
    keys under it, caps --keyspace at the room the server has free (items and
    memory, from /stats) so that nothing is evicted, or refuses when too
    little fits, and deletes its keys afterwards, also on an error, Ctrl-C or
    SIGTERM (--keep leaves them). The report gives the prefix, the keyspace
    and the server's evictions during the run. A refusal exits with 5.
    --server-side runs on a scratch engine of the server's instead."""
    target = _target(ctx, url, token)
    as_json = wants_json(ctx, as_json)
    if server_side:
        if prefix is not None or keep:
            raise fail("--prefix and --keep do not go with --server-side (it runs on a scratch engine)", ExitCode.USAGE)
        _server_side(target, operations, operation_type, as_json)
        return
    if operations is not None or operation_type is not None:
        raise fail("--operations and --operation-type go with --server-side", ExitCode.USAGE)
    plan = _plan(requests, duration, concurrency, mix, keyspace, value_size, batch, pipeline, processes, prefix)
    _client_side(target, plan, keep, as_json)


def _client_side(target: loadgen.Target, plan: loadgen.Plan, keep: bool, as_json: bool) -> None:
    """The load over HTTP on keys of its own: the report, or one red line."""
    try:
        with _sigterm_interrupts():
            report = _run(target, plan, keep)
    except loadgen.Refused as error:
        raise fail(str(error), ExitCode.REFUSED) from None
    except loadgen.LoadError as error:
        raise fail(str(error), exit_code_for(error.status)) from None
    except KeyboardInterrupt:  # a second Ctrl-C (the first one stops the load and reports)
        left = "kept (--keep)" if keep else "deleted"
        raise fail(f"interrupted; the keys under {plan.prefix!r} were {left}", ExitCode.INTERRUPTED) from None
    document = report.to_dict()
    if document["evictions_during_run"]:
        err.print(
            f"[yellow]warning:[/yellow] the server counted {document['evictions_during_run']} eviction(s) during "
            "the run (other clients' writes, or less room than /stats showed)",
            soft_wrap=True,
        )
    if as_json:
        print_json(document)
        return
    print_fields(_client_rows(document), f"cachegrid loadtest {target.url}", justify="right")


@contextmanager
def _sigterm_interrupts() -> Iterator[None]:
    """SIGTERM as a Ctrl-C for the block: the load stops, the keys are deleted."""

    def interrupt(number: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _target(ctx: typer.Context, url: str | None, token: str | None) -> loadgen.Target:
    """The server to load: the aliases when given, else the global options
    (which already fell back to the environment and the default)."""
    given = options(ctx)
    if url is None:
        # Failover hosts make no sense for a load test: the first one.
        url = given.urls[0].split(",")[0].strip()
    try:
        return loadgen.Target.parse(url, given.token if token is None else token)
    except ValueError as error:
        raise fail(f"--url {error}", ExitCode.USAGE) from None


def _plan(
    requests: int | None,
    duration: float | None,
    concurrency: int,
    mix: str,
    keyspace: int,
    value_size: int,
    batch: int,
    pipeline: int,
    processes: int | None,
    prefix: str | None,
) -> loadgen.Plan:
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
    try:
        prefix = loadgen.random_prefix() if prefix is None else loadgen.check_prefix(prefix)
    except ValueError as error:
        raise fail(f"--prefix {error}", ExitCode.USAGE) from None
    return loadgen.Plan(
        requests=DEFAULT_REQUESTS if requests is None and duration is None else requests,
        duration=duration,
        concurrency=concurrency,
        get_share=get_share,
        keyspace=keyspace,
        value_size=value_size,
        batch=batch,
        pipeline=pipeline,
        processes=processes or loadgen.default_processes(),
        prefix=prefix,
    )


def _run(target: loadgen.Target, plan: loadgen.Plan, keep: bool) -> loadgen.ApartReport:
    if not err.is_terminal:
        return loadgen.run_apart(target, plan, keep)
    by_time = plan.requests is None
    columns = [
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.fields[done]} requests"),
        TimeElapsedColumn(),
    ]
    # No auto-refresh: it would be a thread, and the workers are forked from
    # this process; the bar is redrawn from the ~10 updates a second instead.
    with Progress(*columns, console=err, transient=True, auto_refresh=False) as progress:
        task = progress.add_task("loadtest", total=plan.duration if by_time else plan.requests, done=0)

        def update(done: int, elapsed: float) -> None:
            progress.update(task, completed=elapsed if by_time else done, done=done)
            progress.refresh()

        return loadgen.run_apart(target, plan, keep, update)


def _server_side(target: loadgen.Target, operations: int | None, kind: str | None, as_json: bool) -> None:
    operations = 1000 if operations is None else operations
    kind = kind or "mixed"
    if operations < 1:
        raise fail(f"--operations {operations}: at least 1", ExitCode.USAGE)
    if kind not in loadgen.OPERATION_TYPES:
        raise fail(f"--operation-type {kind!r}: one of {', '.join(loadgen.OPERATION_TYPES)}", ExitCode.USAGE)
    try:
        answer = loadgen.server_side(target, operations, kind)
    except loadgen.LoadError as error:
        raise fail(str(error), exit_code_for(error.status)) from None
    if as_json:
        print_json(answer)
        return
    print_fields(_server_rows(answer), f"cachegrid server-side load test {target.url}", justify="right")


def _ms(value: Any) -> str:
    return "-" if value is None else f"{value:.3f}"


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
        ("requests/s", rate_text(document["requests_per_second"])),
    ]
    if document["batch"]:
        rows += [("keys", f"{document['keys']:,}"), ("keys/s", rate_text(document["keys_per_second"]))]
    rows += [(f"latency {name}", f"{_ms(latency[name])} ms") for name in ("p50", "p95", "p99", "max")]
    if document["generator_cpu_percent"] is not None:
        rows.append(("generator CPU", f"{document['generator_cpu_percent']:.0f} % of a core"))
    setup = (
        f"{document['concurrency']} over {document['processes']} process(es), "
        f"pipeline {document['pipeline']}, batch {document['batch']}"
    )
    rows.append(("connections", setup))
    prefix, keys = document["prefix"], document["keyspace"]
    rows.append(("keyspace", f"{prefix}0 .. {prefix}{keys - 1} ({keys:,} keys)"))
    if document["keyspace_capped"]:
        rows.append(("capped", document["keyspace_capped"]))
    if not document["room_checked"]:
        rows.append(("room", "not checked: the token may not read /stats (no metrics permission)"))
    evictions = document["evictions_during_run"]
    rows += [
        ("evictions", "unknown" if evictions is None else f"{evictions:,} during the run"),
        ("cleanup", "kept (--keep)" if document["kept"] else f"deleted {document['keys_deleted']:,} keys"),
    ]
    return rows


def _server_rows(answer: dict[str, Any]) -> list[tuple[str, str]]:
    latency_us = answer.get("latency_us") or {}
    rows = [
        ("operation type", str(answer.get("operation_type"))),
        ("operations", f"{answer.get('num_operations', 0):,}"),
        ("errors", f"{answer.get('errors', 0):,}"),
        ("duration", f"{answer.get('duration_seconds', 0):.3f} s"),
        ("operations/s", rate_text(answer.get("ops_per_second"))),
    ]
    for name in ("p50", "p95", "p99", "max"):
        value = latency_us.get(name)
        rows.append((f"latency {name}", f"{_ms(None if value is None else value / 1000)} ms"))
    rows.append(("policy", str(answer.get("policy"))))
    return rows
