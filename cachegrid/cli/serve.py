"""``cachegrid serve``: run the server in the foreground."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ..acl_file import AclError, read_acl
from ..config import DEFAULT_POLICY, POLICIES, ConfigError, Settings, load_settings
from .status import ExitCode, fail

app = typer.Typer()


WORKER_HELP = (
    "auto (CacheGrid's meinheld build where installed, else gthread), meinheld or gthread "
    "(env CACHEGRID_WORKER; default auto)."
)
POLICY_HELP = (
    f"Eviction policy: {', '.join(sorted(POLICIES))} (env CACHEGRID_EVICTION_POLICY; default {DEFAULT_POLICY})."
)

ACL_HELP = "ACL file of scoped tokens, re-read when it changes (env CACHEGRID_ACL_FILE; docs/acl.md)."


@app.command()
def serve(
    host: Annotated[
        str | None, typer.Option(help="Address to listen on (env CACHEGRID_HOST; default 127.0.0.1).")
    ] = None,
    port: Annotated[int | None, typer.Option(help="TCP port (env CACHEGRID_PORT; default 8080).")] = None,
    config: Annotated[
        Path | None, typer.Option(help="TOML file (env CACHEGRID_CONFIG; default etc/cachegrid.toml if present).")
    ] = None,
    worker: Annotated[str | None, typer.Option(help=WORKER_HELP)] = None,
    threads: Annotated[
        int | None, typer.Option(help="Threads of the gthread worker (env CACHEGRID_THREADS; default 4).")
    ] = None,
    policy: Annotated[str | None, typer.Option(help=POLICY_HELP)] = None,
    max_size: Annotated[
        int | None, typer.Option(help="Maximum number of items (env CACHEGRID_MAX_SIZE; default 10000).")
    ] = None,
    max_memory_mb: Annotated[
        float | None, typer.Option(help="Maximum memory in MiB (env CACHEGRID_MAX_MEMORY_MB; default 512).")
    ] = None,
    log_level: Annotated[
        str | None, typer.Option(help="debug, info, warning, error, critical (env CACHEGRID_LOG_LEVEL).")
    ] = None,
    snapshot_path: Annotated[
        Path | None,
        typer.Option(
            help="Snapshot file for warm restarts (env CACHEGRID_SNAPSHOT_PATH; default "
            "$STATE_DIRECTORY/<node_id>.snap under systemd, else $XDG_STATE_HOME/cachegrid/<node_id>.snap, "
            "~/.local/state when unset; empty: none)."
        ),
    ] = None,
    no_snapshot: Annotated[
        bool, typer.Option("--no-snapshot", help='Keep no snapshots: start empty, as snapshot_path = "".')
    ] = False,
    snapshot_interval: Annotated[
        float | None,
        typer.Option(
            help="Seconds between background snapshots, 0: only at shutdown "
            "(env CACHEGRID_SNAPSHOT_INTERVAL; default 300)."
        ),
    ] = None,
    acl_file: Annotated[Path | None, typer.Option(help=ACL_HELP)] = None,
    workers: Annotated[
        int, typer.Option(help="Worker processes: only 1 is possible, each would hold its own cache.")
    ] = 1,
) -> None:
    """Run the CacheGrid server in the foreground (gunicorn, one worker)."""
    if workers != 1:
        raise fail(
            f"--workers {workers}: CacheGrid runs exactly one worker process, since each worker would "
            "hold a separate cache; run more nodes instead, one per port",
            ExitCode.USAGE,
        )
    if no_snapshot and snapshot_path is not None:
        raise fail("--no-snapshot and --snapshot-path exclude each other", ExitCode.USAGE)
    try:
        settings = load_settings(
            config,
            host=host,
            port=port,
            worker=worker,
            threads=threads,
            eviction_policy=policy,
            max_size=max_size,
            max_memory_mb=max_memory_mb,
            log_level=log_level,
            snapshot_path="" if no_snapshot else snapshot_path,
            snapshot_interval=snapshot_interval,
            acl_file=acl_file,
        )
    except ConfigError as error:
        raise fail(str(error), ExitCode.CONFIG) from None
    check_usable(settings)
    from ..daemon.server import serve as run_server  # the daemon is only imported to serve

    run_server(settings)


def check_usable(settings: Settings) -> None:
    """What the settings' own checks leave to the start, before gunicorn
    starts: the ACL file's tokens, the worker's availability (one line, exit 3)."""
    if settings.acl_file is not None:
        try:
            read_acl(settings.acl_file)
        except AclError as error:
            raise fail(f"invalid setting acl_file: {error}", ExitCode.CONFIG) from None
    from ..daemon.workers import choose

    try:
        choose(settings.worker)
    except ValueError as error:
        raise fail(str(error), ExitCode.CONFIG) from None
