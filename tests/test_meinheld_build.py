"""The meinheld build step's exit status: a fallback by default, an error when required.

``make setup`` runs ``python -m cachegrid.meinheld_build``: without a compiler
(or when the build fails) it says why and exits 0, and the server runs on
gthread. The container image runs it with ``--require`` (or
``CACHEGRID_MEINHELD_REQUIRED=1``): then the same failures exit 1, so the
image build stops. Nothing here downloads or compiles: the steps that would
are replaced.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

import cachegrid.meinheld_build as build_step


@pytest.fixture(autouse=True)
def nothing_installed(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, ...]]:
    """No meinheld installed, pip calls recorded and not run."""
    monkeypatch.delenv(build_step.REQUIRED_ENV, raising=False)
    monkeypatch.setattr(build_step, "installed_version", lambda python=None: None)
    calls: list[tuple[str, ...]] = []
    monkeypatch.setattr(build_step, "_pip", lambda python, *args: calls.append(args))
    return calls


def no_compiler(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(build_step, "missing_tools", lambda: "no C compiler (cc or gcc) was found")


def failing_build(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(build_step, "missing_tools", lambda: None)

    def build(python: str, scratch: Path) -> Path:
        raise subprocess.CalledProcessError(1, ["pip", "wheel"])

    monkeypatch.setattr(build_step, "build", build)


@pytest.mark.parametrize("cause", [no_compiler, failing_build])
def test_without_require_a_failure_falls_back_to_gthread(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], cause
) -> None:
    cause(monkeypatch)
    assert build_step.main([]) == 0
    out = capsys.readouterr().out
    assert "meinheld not built:" in out and "the server will use the gthread worker" in out


@pytest.mark.parametrize("cause", [no_compiler, failing_build])
@pytest.mark.parametrize("how", ["flag", "environment"])
def test_when_required_a_failure_exits_1_and_says_why(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], cause, how: str
) -> None:
    cause(monkeypatch)
    if how == "environment":
        monkeypatch.setenv(build_step.REQUIRED_ENV, "1")
    assert build_step.main(["--require"] if how == "flag" else []) == 1
    captured = capsys.readouterr()
    assert "meinheld not built:" in captured.err and "it was required" in captured.err
    assert "gthread" not in captured.out + captured.err
    if cause is failing_build:
        assert "pip" in captured.err  # the failed command, below pip's own output


def test_required_and_built_exits_0(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, nothing_installed) -> None:
    monkeypatch.setattr(build_step, "missing_tools", lambda: None)
    monkeypatch.setattr(build_step, "build", lambda python, scratch: tmp_path / "meinheld-1.0.2-cp311.whl")
    assert build_step.main(["--require", "/some/python"]) == 0
    assert (
        nothing_installed[0][:2] == ("install", "--quiet") and build_step.GREENLET_REQUIREMENT in nothing_installed[0]
    )
    assert nothing_installed[-1][-1].endswith("meinheld-1.0.2-cp311.whl")


@pytest.mark.parametrize("value", ["0", "", "no"])
def test_the_environment_variable_off_is_not_required(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], value: str
) -> None:
    no_compiler(monkeypatch)
    monkeypatch.setenv(build_step.REQUIRED_ENV, value)
    assert build_step.main([]) == 0


@pytest.mark.parametrize("args", [["--frobnicate"], ["python3", "python3.11"]])
def test_unknown_arguments_exit_2(capsys: pytest.CaptureFixture[str], args: list[str]) -> None:
    assert build_step.main(args) == 2
    assert "usage: python -m cachegrid.meinheld_build [--require] [PYTHON]" in capsys.readouterr().err
