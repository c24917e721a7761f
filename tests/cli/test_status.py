"""status.py: the exit codes and the one HTTP status -> exit code translation."""

from __future__ import annotations

import pytest
import typer

from cachegrid.cli.status import ExitCode, exit_code_for, fail


@pytest.mark.parametrize(
    ("status", "code"),
    [
        (None, ExitCode.UNAVAILABLE),
        (401, ExitCode.UNAUTHORIZED),
        (400, ExitCode.REFUSED),
        (403, ExitCode.REFUSED),
        (404, ExitCode.REFUSED),  # a missing key is NOT_FOUND by the command's choice, not by the status
        (413, ExitCode.REFUSED),
        (507, ExitCode.REFUSED),  # full: the server declines, it does not fail
        (500, ExitCode.SERVER_ERROR),
        (503, ExitCode.SERVER_ERROR),
    ],
)
def test_each_http_status_has_one_exit_code(status: int | None, code: ExitCode) -> None:
    assert exit_code_for(status) is code


def test_ctrl_c_exits_as_a_shell_reports_sigint() -> None:
    assert ExitCode.INTERRUPTED == 130


def test_fail_prints_one_escaped_red_line_on_stderr_and_returns_the_exit(capsys: pytest.CaptureFixture[str]) -> None:
    exit_ = fail("no key '[bold]x'", ExitCode.NOT_FOUND)
    assert isinstance(exit_, typer.Exit) and exit_.exit_code == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err == "error: no key '[bold]x'\n"
