"""What the root group gives every command: boolean flags shown as plain
flags in the help, and a closed stdout pipe ending the command quietly with
141, as it ends a Unix tool (``cachegrid keys | head -2``)."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable

import pytest
import typer.main

from cachegrid.cli.main import app
from cachegrid.cli.status import ExitCode
from cachegrid.client import SyncCacheGridClient
from cachegrid.testing import CLI
from cachegrid.testing import ServerProcess as Server

from .conftest import runner_for

Key = Callable[..., str]


def every_command(command: object, path: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    found = [path]
    for name, child in getattr(command, "commands", {}).items():
        found += every_command(child, (*path, name))
    return found


@pytest.mark.parametrize("path", every_command(typer.main.get_command(app)), ids=" ".join)
def test_flags_are_shown_without_a_type(path: tuple[str, ...]) -> None:
    result = runner_for("http://127.0.0.1:1", COLUMNS="200")(*path, "--help")
    assert result.exit_code == 0, result.stderr
    assert "--help" in result.stdout and "<bool>" not in result.stdout, result.stdout


def test_a_flag_still_refuses_a_value() -> None:
    result = runner_for("http://127.0.0.1:1")("get", "--json=yes", "k")
    assert result.exit_code == ExitCode.USAGE and "does not take a value" in result.stderr


def run_with_stdout_closed(server: Server, *arguments: str) -> subprocess.CompletedProcess[bytes]:
    """``cachegrid ARGUMENTS`` whose stdout's reader is gone before it writes."""
    environment = {name: value for name, value in os.environ.items() if not name.startswith("CACHEGRID_")}
    process = subprocess.Popen(
        [CLI, "--url", server.url, *arguments],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=environment,
    )
    assert process.stdout is not None
    process.stdout.close()
    _, stderr = process.communicate(timeout=60)
    return subprocess.CompletedProcess(process.args, process.returncode, b"", stderr)


def test_a_closed_pipe_ends_quietly_with_141(cli_server: Server, key: Key) -> None:
    with SyncCacheGridClient([cli_server.url]) as client:
        client.set_multi({key(str(number)): number for number in range(50)})
    pattern = key("") + "*"
    for arguments in (["keys", "--pattern", pattern], ["--json", "keys", "--pattern", pattern], ["stats"]):
        result = run_with_stdout_closed(cli_server, *arguments)
        assert result.returncode == ExitCode.CLOSED_PIPE == 141, (arguments, result.stderr)
        assert result.stderr == b"", (arguments, result.stderr)  # no traceback, no "Exception ignored"
    # With nothing to write, a closed stdout changes nothing: a missing key is still 1.
    missing = run_with_stdout_closed(cli_server, "get", key("missing"))
    assert missing.returncode == ExitCode.NOT_FOUND and b"no key" in missing.stderr


def test_a_pipe_read_to_its_end_is_0(cli_server: Server, key: Key) -> None:
    with SyncCacheGridClient([cli_server.url]) as client:
        client.set(key("a"), 1)
    result = subprocess.run(
        ["bash", "-o", "pipefail", "-c", f'"{CLI}" --url {cli_server.url} keys --pattern "{key("")}" | head -2'],
        capture_output=True,
        timeout=60,
    )
    assert result.returncode == 0 and result.stdout.decode().split() == [key("a")], result.stderr
