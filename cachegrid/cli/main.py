"""The ``cachegrid`` command: the typer app and its entry point.

Commands are thin adapters (parse, call, render); user mistakes end in one
red line on stderr and an exit code from ``ExitCode``, never a traceback.
"""

from __future__ import annotations

from enum import IntEnum

import typer
from rich.console import Console

from .. import __version__

app = typer.Typer(
    name="cachegrid",
    help="CacheGrid: an in-memory key/value cache server with an HTTP/JSON API.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
err = Console(stderr=True, highlight=False)


class ExitCode(IntEnum):
    OK = 0
    NOT_FOUND = 1  # a key that does not exist
    USAGE = 2  # bad arguments (typer's own code for usage errors)
    CONFIG = 3  # a setting that cannot be used
    UNAVAILABLE = 4  # no server answered
    REFUSED = 5  # the server refused the request (4xx)
    SERVER_ERROR = 6  # the server failed (5xx)
    UNHEALTHY = 7  # the server answered that it is unhealthy


def fail(message: str, code: ExitCode) -> typer.Exit:
    """Print one red line on stderr; return the Exit to raise."""
    err.print(f"[red]error:[/red] {message}", soft_wrap=True)
    return typer.Exit(int(code))


def _version(value: bool) -> None:
    if value:
        print(f"cachegrid {__version__}")
        raise typer.Exit()


@app.callback()
def root(
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True,
                                 help="Print the version and exit."),
) -> None:
    """CacheGrid: an in-memory key/value cache server with an HTTP/JSON API."""


from . import serve as _serve  # noqa: E402,F401  (registers its command)


def main() -> None:
    app()
