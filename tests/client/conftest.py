from __future__ import annotations

import itertools
import time
from collections.abc import Iterator

import pytest

from cachegrid.testing import ServerProcess as Server
from cachegrid.testing import free_port, running
from tests.client.callers import Call, address, make_caller

_unique = itertools.count()


@pytest.fixture(scope="package")
def live() -> Iterator[Server]:
    """One real server shared by the client tests (each test uses its own keys)."""
    with running(graceful=False) as server:
        yield server


@pytest.fixture(params=["sync", "async"])
def kind(request: pytest.FixtureRequest) -> str:
    """Which client a test drives: each test runs with both."""
    return request.param


@pytest.fixture
def dead_host() -> str:
    """An address where nothing listens."""
    return f"127.0.0.1:{free_port()}"


@pytest.fixture
def call(kind: str, live: Server) -> Call:
    """``kind``'s client on the shared server, as one callable (callers.py)."""
    return make_caller(kind, [address(live)])[0]


@pytest.fixture
def key(request: pytest.FixtureRequest) -> str:
    """A key no other test uses: the module's name, a counter and the clock."""
    return f"{request.module.__name__.rpartition('.')[2]}:{next(_unique)}:{time.monotonic_ns()}"
