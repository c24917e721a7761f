"""The framework backends' tests. The frameworks' own suites
(``test_*_suite.py``) need a server, and their sdists from the package
index: the fast run does not even collect them. ``live`` is a server for the
backends' own tests."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from cachegrid.testing import ServerProcess, running

collect_ignore_glob = ["test_*_suite.py"] if os.environ.get("CACHEGRID_FAST_TESTS_ONLY") == "1" else []


def pytest_configure(config: pytest.Config) -> None:
    # dogpile.testing.fixtures marks its slower tests so; the suite runs them all.
    config.addinivalue_line("markers", "time_intensive: dogpile.cache's mark of its slower backend tests")


@pytest.fixture(scope="package")
def live() -> Iterator[ServerProcess]:
    """One real server shared by the backends' own tests (each test uses its own keys)."""
    with running(graceful=False) as server:
        yield server
