"""The near cache as an option of each framework backend: Django's
``OPTIONS``, Flask's ``CACHE_CACHEGRID_NEAR_CACHE`` and dogpile's
arguments take ``True`` or a near cache's settings, and a hot read through
the backend is then served locally."""

from __future__ import annotations

import time
import uuid
from typing import Any

import pytest

from cachegrid.client import NearCache, SyncCacheGridClient
from cachegrid.testing import ServerProcess as Server
from tests.contrib.test_django import django_cache
from tests.contrib.test_dogpile import region
from tests.contrib.test_flask import backend, flask_app


def near_of(client: SyncCacheGridClient) -> NearCache:
    assert isinstance(client.near_cache, NearCache)
    return client.near_cache


@pytest.mark.parametrize("option", [True, {"max_entries": 7, "max_ttl": 5.0}])
def test_each_backend_takes_the_option(option: Any) -> None:
    clients = [
        django_cache("127.0.0.1:1", OPTIONS={"near_cache": option}).client,
        backend(*reversed(flask_app(CACHE_CACHEGRID_HOSTS="127.0.0.1:1", CACHE_CACHEGRID_NEAR_CACHE=option))).client,
        region(hosts="127.0.0.1:1", near_cache=option).backend.client,
    ]
    for client in clients:
        near = near_of(client)
        assert near.max_entries == (7 if option is not True else 10_000)
        near.close()


def test_without_the_option_there_is_no_near_cache() -> None:
    assert django_cache("127.0.0.1:1").client.near_cache is None


def test_a_hot_django_read_is_served_locally(live: Server) -> None:
    cache = django_cache(live.url, KEY_PREFIX=f"t{uuid.uuid4().hex[:8]}", OPTIONS={"near_cache": True})
    cache.set("k", {"a": [1]}, 60)
    near = near_of(cache.client)
    deadline = time.monotonic() + 5.0
    while near.stats()["entries"] == 0 and time.monotonic() < deadline:
        assert cache.get("k") == {"a": [1]}
        time.sleep(0.005)
    hits = near.stats()["hits"]
    assert cache.get("k") == {"a": [1]} and near.stats()["hits"] == hits + 1
    cache.set("k", "changed", 60)
    assert cache.get("k") == "changed"  # its own write: at once
    near.close()
