"""How a ``cachegrid`` command ends: its exit codes, the one red line of a
failure, and the two consoles (data on stdout, messages on stderr).

Every command ends through here: ``fail`` prints the message and returns the
``typer.Exit`` to raise, and ``exit_code_for`` is the one translation of an
HTTP status the server refused or failed a request with into an exit code,
for the client commands and ``loadtest`` alike.
"""

from __future__ import annotations

from enum import IntEnum

import typer
from rich.console import Console
from rich.markup import escape

out = Console(highlight=False)  # data: stdout
err = Console(stderr=True, highlight=False)  # messages and errors: stderr


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
    HELD = 10  # lock: another caller holds the lock
    PARTIAL = 11  # a cluster-wide command: some nodes did not answer, the result lacks theirs
    INTERRUPTED = 130  # Ctrl-C that ended a command early: 128 + SIGINT, as a shell reports it
    CLOSED_PIPE = 141  # stdout's reader went away (`cachegrid keys | head`): 128 + SIGPIPE, as for any Unix tool


def exit_code_for(status: int | None) -> ExitCode:
    """The exit code of a request the server refused or failed with HTTP
    ``status``; None when no server answered at all.

    A 404 is REFUSED here: a key that does not exist is a result that each
    command turns into NOT_FOUND itself, not a property of the status.
    """
    if status is None:
        return ExitCode.UNAVAILABLE
    if status == 401:
        return ExitCode.UNAUTHORIZED
    # 507 is the server declining a write because it is full, not failing.
    if status >= 500 and status != 507:
        return ExitCode.SERVER_ERROR
    return ExitCode.REFUSED


def fail(message: str, code: ExitCode) -> typer.Exit:
    """Print one red line on stderr; return the Exit to raise."""
    # Escaped: a message quotes keys and values, and "[...]" in them is not markup.
    err.print(f"[red]error:[/red] {escape(message)}", soft_wrap=True)
    return typer.Exit(int(code))
