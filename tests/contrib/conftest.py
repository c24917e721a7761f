"""The framework backends' tests. The frameworks' own suites
(``test_*_suite.py``) need a server, and their sdists from the package
index: the fast run does not even collect them."""

from __future__ import annotations

import os

import pytest

collect_ignore_glob = ["test_*_suite.py"] if os.environ.get("CACHEGRID_FAST_TESTS_ONLY") == "1" else []


def pytest_configure(config: pytest.Config) -> None:
    # dogpile.testing.fixtures marks its slower tests so; the suite runs them all.
    config.addinivalue_line("markers", "time_intensive: dogpile.cache's mark of its slower backend tests")
