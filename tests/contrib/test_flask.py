"""The Flask-Caching backend beyond cachelib's and Flask-Caching's suites:
configured by ``CACHE_TYPE`` in a Flask app (the ``CACHE_CACHEGRID_*``
settings, ``CACHE_KEY_PREFIX``, ``CACHE_OPTIONS``), cached views and
memoized functions, counters, ``clear()`` under a prefix, timeouts."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import flask
import pytest
from flask_caching import Cache

from cachegrid.client import Unauthorized
from cachegrid.contrib.flask import CacheGridCache
from cachegrid.testing import ServerProcess as Server
from tests.contrib.helpers import raw_entry, sent, server_keys

CACHE_TYPE = "cachegrid.contrib.flask.CacheGridCache"


def flask_app(**config: Any) -> tuple[flask.Flask, Cache]:
    app = flask.Flask(__name__)
    app.config.update(CACHE_TYPE=CACHE_TYPE, **config)
    return app, Cache(app)


def backend(cache: Cache, app: flask.Flask) -> CacheGridCache:
    return app.extensions["cache"][cache]


@pytest.fixture
def prefix() -> str:
    return f"f{uuid.uuid4().hex[:8]}:"


def test_cache_type_and_the_cachegrid_settings_configure_it() -> None:
    app, cache = flask_app(
        CACHE_CACHEGRID_HOSTS=["127.0.0.1:8001", "127.0.0.1:8002"],
        CACHE_CACHEGRID_TOKEN="secret",
        CACHE_CACHEGRID_TIMEOUT=1.5,
        CACHE_KEY_PREFIX="app:",
        CACHE_DEFAULT_TIMEOUT=60,
        CACHE_OPTIONS={"replicas": 2},
    )
    made = backend(cache, app)
    assert isinstance(made, CacheGridCache)
    assert made.client.hosts == ["http://127.0.0.1:8001", "http://127.0.0.1:8002"]
    assert (made.client.auth_token, made.client.timeout, made.client.replicas) == ("secret", 1.5, 2)
    assert (made.key_prefix, made.default_timeout) == ("app:", 60)


def test_an_unknown_option_is_named() -> None:
    with pytest.raises(TypeError, match="unknown CacheGrid option.*: replica "):
        flask_app(CACHE_OPTIONS={"replica": 2})


def test_timeouts_none_the_default_zero_forever_negative_at_once() -> None:
    cache = CacheGridCache("127.0.0.1:1", default_timeout=300)
    assert cache._ttl(None) == 300
    assert cache._ttl(0) is None
    assert cache._ttl(-1) == 0
    assert cache._ttl(7) == 7


def test_a_cached_view_is_served_from_cachegrid(live: Server, prefix: str) -> None:
    app, cache = flask_app(CACHE_CACHEGRID_HOSTS=live.url, CACHE_KEY_PREFIX=prefix)
    calls = []

    @app.route("/report")
    @cache.cached(timeout=60)
    def report() -> str:
        calls.append(1)
        return f"report #{len(calls)}"

    with app.test_client() as browser:
        assert browser.get("/report").text == "report #1"
        assert browser.get("/report").text == "report #1"
    assert len(calls) == 1
    assert [key for key in server_keys(live) if key.startswith(prefix)]  # held by the server, under the prefix


def test_a_memoized_function_is_computed_once_per_arguments(live: Server, prefix: str) -> None:
    app, cache = flask_app(CACHE_CACHEGRID_HOSTS=live.url, CACHE_KEY_PREFIX=prefix)
    calls = []

    @cache.memoize(60)
    def square(n: int) -> int:
        calls.append(n)
        return n * n

    with app.app_context():
        assert [square(3), square(3), square(4)] == [9, 9, 16]
        cache.delete_memoized(square, 3)
        assert square(3) == 9
    assert calls == [3, 4, 3]


def test_counters_are_json_numbers_and_atomic_on_the_server(live: Server, prefix: str) -> None:
    cache = CacheGridCache(live.url, key_prefix=prefix)
    with sent(cache.client) as requests:
        assert cache.inc("visits") == 1
        assert cache.inc("visits", 10) == 11
        assert cache.dec("visits", 2) == 9
    assert [method for method, _ in requests] == ["POST"] * 3
    assert raw_entry(live, prefix + "visits")[1:] == ("application/json", b"9")
    cache.set("name", "text")
    with pytest.raises(TypeError, match="not an integer"):
        cache.inc("name")


def test_clear_under_a_prefix_leaves_other_keys(live: Server, prefix: str) -> None:
    mine = CacheGridCache(live.url, key_prefix=prefix)
    other = CacheGridCache(live.url, key_prefix=prefix + "other*[x]:")
    mine.set_many({"a": 1, "b": 2})
    other.set("c", 3)
    assert other.clear() is True
    assert mine.get_many("a", "b") == [1, 2] and other.get("c") is None
    assert mine.clear() is True
    assert mine.get_many("a", "b") == [None, None]


def test_the_token_setting_authenticates(start_server: Callable[..., Server]) -> None:
    server = start_server(env={"CACHEGRID_AUTH_TOKEN": "right"})
    right = CacheGridCache(server.url, token="right")
    assert right.set("k", "v") and right.get("k") == "v"
    with pytest.raises(Unauthorized):
        CacheGridCache(server.url, token="wrong").get("k")
    right.client.close()
