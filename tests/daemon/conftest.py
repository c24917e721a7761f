from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from falcon import testing

from cachegrid.config import Settings
from cachegrid.daemon import build_cache, create_app
from cachegrid.engine import Cache
from cachegrid.testing import FakeClock


@pytest.fixture
def make_client(clock: FakeClock) -> Callable[..., tuple[testing.TestClient, Cache]]:
    """A TestClient over the real app and a real engine on a fake clock."""

    def make(**settings: Any) -> tuple[testing.TestClient, Cache]:
        config = Settings(node_id="test-node", **settings)
        cache = build_cache(config, clock)
        return testing.TestClient(create_app(config, cache=cache)), cache

    return make


@pytest.fixture
def client(make_client: Callable[..., tuple[testing.TestClient, Cache]]) -> testing.TestClient:
    return make_client()[0]


@pytest.fixture
def cache_and_client(make_client: Callable[..., tuple[testing.TestClient, Cache]]) -> tuple[Cache, testing.TestClient]:
    client, cache = make_client()
    return cache, client
