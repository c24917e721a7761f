"""Fixtures and markers for the whole suite.

``make test`` runs everything. ``make test-fast`` runs what needs no other
process and takes no seconds by design (``-m "not process and not fuzz and
not slow"``), under a minute: the engine, the daemon in process, and the
client and CLI against in-process stubs. A test that takes seconds by
design is marked ``slow``, with a comment saying why. A test is marked
``process`` when it starts a real process (a server, gunicorn, a unit
checker, a browser): every test under tests/integration, tests/deploy and
tests/browser, every test that uses a fixture that starts one, every test
whose code starts one itself, and every test that uses a fixture of the
suite whose code does (a module- or package-scoped one is set up before the
guard below). In the fast run a test that starts a process anyway fails at
once, naming itself, so the marking cannot silently drift.
"""

from __future__ import annotations

import atexit
import inspect
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import pytest

# The shared fixtures (start_server, stub) and helpers, for every package.
pytest_plugins = ["tests.fixtures"]

PROCESS_DIRECTORIES = frozenset({"integration", "deploy", "browser"})
# Fixtures that start a real server (tests/fixtures.py, and the conftests
# and modules that build on cachegrid.testing).
PROCESS_FIXTURES = frozenset({"server", "start_server", "live", "cli_server", "token_server", "cli", "guarded"})
STARTS_A_PROCESS = ("Server(", "running(", "subprocess.", "Popen(")
FAST_RUN = "CACHEGRID_FAST_TESTS_ONLY"
TESTS = Path(__file__).resolve().parent
# The fast run selects no fuzz test (that module is all fuzz): it does not
# even collect it, which spares it importing schemathesis (seconds).
collect_ignore = ["daemon/test_openapi_fuzz.py"] if os.environ.get(FAST_RUN) == "1" else []

# `cachegrid serve` keeps snapshots under the user's state directory by
# default: a server any test starts (with cachegrid.testing, which turns
# them off, or by hand) writes them, if at all, into a directory of this run.
os.environ.pop("STATE_DIRECTORY", None)
os.environ["XDG_STATE_HOME"] = tempfile.mkdtemp(prefix="cachegrid-tests-state-")
atexit.register(shutil.rmtree, os.environ["XDG_STATE_HOME"], True)


# function -> whether its source starts a process: parametrized tests and
# shared fixtures would otherwise have the same source read again per item.
_read_sources: dict[Any, bool] = {}


def _source_starts_a_process(function: Any) -> bool:
    try:
        return _read_sources[function]
    except KeyError:
        pass
    except TypeError:  # not hashable: read it every time
        return _read_source_starts_a_process(function)
    _read_sources[function] = _read_source_starts_a_process(function)
    return _read_sources[function]


def _read_source_starts_a_process(function: Any) -> bool:
    try:
        source = inspect.getsource(function)
    except (AttributeError, OSError, TypeError):
        return False
    return any(marker in source for marker in STARTS_A_PROCESS)


def _suite_fixtures(item: pytest.Item) -> list[Any]:
    """The functions of the suite's own fixtures that ``item`` uses (directly
    or through other fixtures): a module- or package-scoped fixture is set up
    before the fast run's guard below could refuse it."""
    definitions = getattr(getattr(item, "_fixtureinfo", None), "name2fixturedefs", {})
    return [
        definition.func
        for chain in definitions.values()
        for definition in chain
        if Path(inspect.getfile(definition.func)).is_relative_to(TESTS)
        and inspect.getmodule(definition.func) is not sys.modules[__name__]
    ]  # not this module's guards


def _starts_a_process(item: pytest.Item) -> bool:
    if Path(str(item.fspath)).parent.name in PROCESS_DIRECTORIES:
        return True
    if PROCESS_FIXTURES.intersection(getattr(item, "fixturenames", ())):
        return True
    if any(_source_starts_a_process(function) for function in _suite_fixtures(item)):
        return True
    return _source_starts_a_process(getattr(item, "function", None))


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if _starts_a_process(item):
            item.add_marker(pytest.mark.process)
        if item.get_closest_marker("process") is not None:
            item.add_marker(pytest.mark.integration)  # the product description's name for them


@pytest.fixture(autouse=True)
def _no_process_in_the_fast_run(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    if os.environ.get(FAST_RUN) != "1" or request.node.get_closest_marker("process"):
        return

    def refuse(*args: Any, **kwargs: Any) -> None:
        raise AssertionError(
            f"{request.node.nodeid} starts a process: it belongs to the process tests "
            "(tests/conftest.py says how they are marked)"
        )

    monkeypatch.setattr(subprocess.Popen, "__init__", refuse)


@pytest.fixture(autouse=True)
def _no_ambient_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    """No CACHEGRID_* variable of the machine running the tests leaks into them."""
    for name in list(os.environ):
        if name.startswith("CACHEGRID_") and name != FAST_RUN:
            monkeypatch.delenv(name)
