from __future__ import annotations

from typing import Iterator

import pytest

from cachegrid.testing import ServerProcess as Server
from cachegrid.testing import free_port, running


@pytest.fixture(scope="package")
def live() -> Iterator[Server]:
    """One real server shared by the client tests (each test uses its own keys)."""
    with running() as server:
        yield server


@pytest.fixture(params=["sync", "async"])
def kind(request: pytest.FixtureRequest) -> str:
    """Which client a test drives: each test runs with both."""
    return request.param


@pytest.fixture
def dead_host() -> str:
    """An address where nothing listens."""
    return f"127.0.0.1:{free_port()}"
