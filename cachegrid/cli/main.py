"""The ``cachegrid`` command: the typer app, its global options and its entry point.

Commands are thin adapters (parse, call, render); user mistakes end in one
red line on stderr and an exit code from ``ExitCode``, never a traceback.
The global options (``--url``, ``--token``, ``--timeout``, ``--json``) are
parsed once here into a ``Globals`` in ``ctx.obj``; the client commands
(commands.py, stats_view.py) build their client from it.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape

from .. import __version__

app = typer.Typer(
    name="cachegrid",
    help="CacheGrid: an in-memory key/value cache server with an HTTP/JSON API.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
err = Console(stderr=True, highlight=False)

DEFAULT_URL = "http://127.0.0.1:8080"


class ExitCode(IntEnum):
    OK = 0
    NOT_FOUND = 1  # a key that does not exist (get, ttl, delete; batch get: one of the keys)
    USAGE = 2  # bad arguments or input (typer's own code for usage errors)
    CONFIG = 3  # a setting that cannot be used
    UNAVAILABLE = 4  # no server answered
    REFUSED = 5  # the server refused the request (4xx, or 507 when full)
    SERVER_ERROR = 6  # the server failed (5xx)
    UNHEALTHY = 7  # the server answered that it is unhealthy
    NOT_STORED = 8  # set --nx/--xx: the condition did not hold, nothing was written
    UNAUTHORIZED = 9  # the server needs a token (--token) and got none or a wrong one


def fail(message: str, code: ExitCode) -> typer.Exit:
    """Print one red line on stderr; return the Exit to raise."""
    # Escaped: a message quotes keys and values, and "[...]" in them is not markup.
    err.print(f"[red]error:[/red] {escape(message)}", soft_wrap=True)
    return typer.Exit(int(code))


@dataclass(frozen=True)
class Globals:
    """The global options, as given (checked when a command connects)."""

    urls: list[str]
    token: str | None
    timeout: float
    json: bool


def _version(value: bool) -> None:
    if value:
        print(f"cachegrid {__version__}")
        raise typer.Exit()


@app.callback()
def root(
    ctx: typer.Context,
    url: Annotated[list[str] | None, typer.Option(
        "--url", envvar="CACHEGRID_URL", metavar="URL", show_default=False,
        help=f"The server (default {DEFAULT_URL}). Give it several times, or comma-separated, "
             "for failover hosts, tried in order.")] = None,
    token: Annotated[str | None, typer.Option(
        envvar="CACHEGRID_AUTH_TOKEN", show_default=False,
        help="Bearer token, for a server started with an auth token.")] = None,
    # Not CACHEGRID_TIMEOUT: that is the server's worker timeout setting.
    timeout: Annotated[float, typer.Option(
        envvar="CACHEGRID_CLIENT_TIMEOUT", help="Seconds to wait for each answer of the server.")] = 5.0,
    json_output: Annotated[bool, typer.Option(
        "--json", help="Machine-readable output: one JSON document on stdout (also an option of each command).")
    ] = False,
    version: Annotated[bool, typer.Option(
        "--version", callback=_version, is_eager=True, help="Print the version and exit.")] = False,
) -> None:
    """CacheGrid: an in-memory key/value cache server with an HTTP/JSON API."""
    ctx.obj = Globals(urls=list(url or [DEFAULT_URL]), token=token or None, timeout=timeout, json=json_output)


from . import serve as _serve  # noqa: E402,F401  (registers its command)
from . import loadtest as _loadtest  # noqa: E402,F401
from . import commands as _commands  # noqa: E402,F401
from . import stats_view as _stats_view  # noqa: E402,F401
from . import config_show as _config_show  # noqa: E402,F401


def main() -> None:
    app()
