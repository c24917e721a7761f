"""The root command group of ``cachegrid``: what every command shares in how
its help reads and how it ends on a closed pipe.

Flags in the help: typer shows each option's type after its name, and for
a boolean flag that reads as if it took a value (``--json <bool>``,
``--help <bool>``). A flag takes none, so the root group walks the command
tree once, when it is built, and gives every flag (the help options
included) an empty metavar, which the help shows instead of the type.

A closed pipe: ``cachegrid keys | head -2`` closes the pipe under the
command while it writes. A Unix tool is ended by SIGPIPE there and the shell
reports 141 (128 + 13), which ``set -o pipefail`` scripts see; Python
ignores SIGPIPE and raises BrokenPipeError instead, which click would turn
into exit 1, the code of "no such key". The group ends such a command as
the Unix tool does: quietly, with CLOSED_PIPE (141). Its stdout is pointed
at /dev/null first, so the interpreter's last flush of the data still
buffered cannot fail again on the way out.
"""

from __future__ import annotations

import io
import os
import sys
from typing import Any

import typer
from typer.core import TyperGroup, TyperOption

from .status import ExitCode

# typer vendors click; its Command and Context are the ones the tree holds.
Command = Any


class RootGroup(TyperGroup):
    """``cachegrid`` itself: plain flags in every help, 141 on a closed pipe."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        plain_flags(self)

    def invoke(self, ctx: Any) -> Any:
        try:
            try:
                return super().invoke(ctx)
            finally:
                # The data's last bytes: a pipe closed under them fails here,
                # where it can still choose the exit code, not at exit.
                sys.stdout.flush()
        except BrokenPipeError:
            silence_stdout()
            raise typer.Exit(ExitCode.CLOSED_PIPE) from None


def plain_flags(command: Command) -> None:
    """Give every boolean flag of ``command`` and of the commands under it an
    empty metavar: the help then shows ``--json``, not ``--json <bool>``."""
    # The help option is made on first use and kept (click caches it): made
    # here, it is the one every later help and parse uses.
    help_option = command.get_help_option(command.context_class(command))
    for param in [*command.params, help_option]:
        if isinstance(param, TyperOption) and param.is_flag and param.metavar is None:
            param.metavar = ""
    for child in getattr(command, "commands", {}).values():
        plain_flags(child)


def silence_stdout() -> None:
    """Point the process's stdout at /dev/null (a real file descriptor only:
    a test runner's capture has none and needs nothing)."""
    try:
        descriptor = sys.stdout.fileno()
    except (AttributeError, ValueError, io.UnsupportedOperation):
        return
    null = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(null, descriptor)
    finally:
        os.close(null)
