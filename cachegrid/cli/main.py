"""The ``cachegrid`` command: the root app, its global options and its entry point.

Following typer's "One File Per Command" layout, each command module owns its
own ``typer.Typer()`` and this module only composes them; none of them
imports this one. The global options (``--url``, ``--token``, ``--ca-file``,
``--timeout``, ``--json``) are parsed here, once, into a ``common.Globals`` in ``ctx.obj``,
which every command reads. How a command ends (exit codes, the red line) is
in status.py.
"""

from __future__ import annotations

from typing import Annotated

import typer

from .. import __version__
from . import (
    acl,
    batch,
    cluster,
    commands,
    config_show,
    dashboard,
    events,
    loadtest,
    serve,
    snapshot,
    stampede,
    stats_view,
    tags,
)
from .common import DEFAULT_URL, Globals
from .group import RootGroup

app = typer.Typer(
    name="cachegrid",
    cls=RootGroup,  # plain flags in every help; 141 on a closed pipe (group.py)
    help="CacheGrid: an in-memory key/value cache server with an HTTP/JSON API.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _version(value: bool) -> None:
    if value:
        print(f"cachegrid {__version__}")
        raise typer.Exit()


@app.callback()
def root(
    ctx: typer.Context,
    url: Annotated[
        list[str] | None,
        typer.Option(
            "--url",
            envvar="CACHEGRID_URL",
            metavar="URL",
            show_default=False,
            help=f"The server (default {DEFAULT_URL}). Give it several times, or comma-separated, "
            "for a cluster: keys spread over the nodes by a consistent-hash ring.",
        ),
    ] = None,
    replicas: Annotated[
        int, typer.Option(envvar="CACHEGRID_REPLICAS", help="With several --url: the nodes each key is written to.")
    ] = 1,
    ring: Annotated[
        str,
        typer.Option(
            envvar="CACHEGRID_RING",
            help="With several --url: ketama (memcached clients' ring) or nginx "
            "(the ring of nginx's hash ... consistent).",
        ),
    ] = "ketama",
    sharding: Annotated[
        bool,
        typer.Option(
            envvar="CACHEGRID_SHARDING", help="--no-sharding: several --url are copies of one cache, tried in order."
        ),
    ] = True,
    token: Annotated[
        str | None,
        typer.Option(
            envvar="CACHEGRID_AUTH_TOKEN",
            show_default=False,
            help="Bearer token, for a server started with an auth token.",
        ),
    ] = None,
    ca_file: Annotated[
        str | None,
        typer.Option(
            envvar="CACHEGRID_CA_FILE",
            metavar="PEM",
            show_default=False,
            help="CA bundle that verifies an https:// server's certificate (default: the system's).",
        ),
    ] = None,
    # Not CACHEGRID_TIMEOUT: that is the server's worker timeout setting.
    timeout: Annotated[
        float, typer.Option(envvar="CACHEGRID_CLIENT_TIMEOUT", help="Seconds to wait for each answer of the server.")
    ] = 5.0,
    json_output: Annotated[
        bool,
        typer.Option(
            "--json", help="Machine-readable output: one JSON document on stdout (also an option of each command)."
        ),
    ] = False,
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version and exit.")
    ] = False,
) -> None:
    """CacheGrid: an in-memory key/value cache server with an HTTP/JSON API."""
    ctx.obj = Globals(
        urls=list(url or [DEFAULT_URL]),
        token=token or None,
        timeout=timeout,
        ca_file=ca_file or None,
        json=json_output,
        replicas=replicas,
        ring=ring,
        sharding=sharding,
    )


# In the order `cachegrid --help` lists them. A module's Typer without a name
# adds its commands to the top level; a named one (batch, config) is a group.
app.add_typer(serve.app)
app.add_typer(loadtest.app)
app.add_typer(commands.app)
app.add_typer(stats_view.app)
app.add_typer(dashboard.app)
app.add_typer(batch.app)
app.add_typer(config_show.app)
app.add_typer(snapshot.app)
app.add_typer(cluster.app)
app.add_typer(cluster.single)
app.add_typer(tags.app)
app.add_typer(stampede.app)
app.add_typer(events.app)
app.add_typer(acl.app)


def main() -> None:
    app()
