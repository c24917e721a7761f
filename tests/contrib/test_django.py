"""``cachegrid.contrib.django.CacheGridCache`` beyond Django's own suite:
how it is configured (LOCATION, a cluster, OPTIONS), what it stores on the
server, batches as single requests, refusals, long keys. The caches are
made by Django's ``CacheHandler`` from a CACHES setting, as in a project."""

from __future__ import annotations

import pickle
import threading
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from django.core.cache import CacheHandler
from django.core.exceptions import ImproperlyConfigured

from cachegrid.client import CacheGridConnectionError, RequestError, Unauthorized
from cachegrid.contrib.common import MAX_TTL
from cachegrid.contrib.django import CacheGridCache
from cachegrid.testing import ServerProcess as Server
from cachegrid.testing import free_port
from tests.contrib.helpers import raw_entry, sent, server_keys

BACKEND = "cachegrid.contrib.django.CacheGridCache"


def django_cache(location: Any, **settings: Any) -> CacheGridCache:
    """The cache a project with this CACHES["default"] gets."""
    return CacheHandler({"default": {"BACKEND": BACKEND, "LOCATION": location, **settings}})["default"]


@pytest.fixture
def make_cache(start_server: Callable[..., Server]) -> Iterator[Callable[..., CacheGridCache]]:
    """``django_cache``, each cache's connections closed when the test ends
    (before its servers stop: a server waits for open connections)."""
    made: list[CacheGridCache] = []

    def make(location: Any, **settings: Any) -> CacheGridCache:
        made.append(django_cache(location, **settings))
        return made[-1]

    yield make
    for cache in made:
        cache.client.close()


@pytest.fixture
def prefix() -> str:
    return f"t{uuid.uuid4().hex[:8]}"


@pytest.fixture
def cache(live: Server, prefix: str) -> CacheGridCache:
    return django_cache(live.url, KEY_PREFIX=prefix)


# -- configuration (no server needed) --------------------------------------------------


def test_location_is_a_url_a_separated_string_or_a_list() -> None:
    assert django_cache("http://127.0.0.1:8080").client.hosts == ["http://127.0.0.1:8080"]
    for location in (
        "127.0.0.1:8001;127.0.0.1:8002",
        "127.0.0.1:8001,127.0.0.1:8002",
        ["127.0.0.1:8001", "127.0.0.1:8002"],
    ):
        client = django_cache(location, OPTIONS={"replicas": 2}).client
        assert client.hosts == ["http://127.0.0.1:8001", "http://127.0.0.1:8002"]
        assert client.replicas == 2


def test_options_are_the_clients_in_either_case() -> None:
    client = django_cache("127.0.0.1:1", OPTIONS={"TOKEN": "secret", "timeout": 0.5, "MAX_RETRIES": 0}).client
    assert (client.auth_token, client.timeout, client.pool.max_retries) == ("secret", 0.5, 0)


@pytest.mark.parametrize(
    "options, named",
    [({"tokn": "x"}, "tokn"), ({"max_key_length": 10}, "max_key_length"), ({"batch_size": 0}, "batch_size")],
)
def test_a_wrong_option_is_improperly_configured_and_named(options: dict[str, Any], named: str) -> None:
    with pytest.raises(ImproperlyConfigured, match=named):
        django_cache("127.0.0.1:1", OPTIONS=options)


def test_timeouts_none_forever_zero_or_less_at_once_else_seconds_capped() -> None:
    cache = django_cache("127.0.0.1:1", TIMEOUT=60)
    assert cache.get_backend_timeout() == 60
    assert cache.get_backend_timeout(None) is None
    assert cache.get_backend_timeout(0) == 0 and cache.get_backend_timeout(-5) == 0
    assert cache.get_backend_timeout(1.5) == 1.5
    assert cache.get_backend_timeout(10**12) == MAX_TTL
    assert django_cache("127.0.0.1:1", TIMEOUT=None).get_backend_timeout() is None


# -- what the server holds -------------------------------------------------------------


def test_integers_are_json_numbers_and_other_values_pickled_bytes(cache: CacheGridCache, live: Server) -> None:
    cache.set("n", 41)
    cache.set("obj", {"a": [1, 2]})
    status, kind, body = raw_entry(live, cache.make_key("n"))
    assert (status, kind.split(";")[0], body) == (200, "application/json", b"41")
    status, kind, body = raw_entry(live, cache.make_key("obj"))
    assert (status, kind) == (200, "application/octet-stream") and pickle.loads(body) == {"a": [1, 2]}


def test_incr_is_one_atomic_operation_on_the_server(cache: CacheGridCache) -> None:
    cache.set("hits", 0)
    with sent(cache.client) as requests:
        assert cache.incr("hits", 5) == 5
    assert [method for method, _ in requests] == ["HEAD", "POST"]  # the existence check, then the increment
    threads = [threading.Thread(target=lambda: [cache.incr("hits") for _ in range(50)]) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert cache.get("hits") == 5 + 8 * 50


def test_incr_of_a_value_that_is_no_integer_is_a_type_error(cache: CacheGridCache) -> None:
    cache.set("text", "abc")
    with pytest.raises(TypeError, match="not an integer"):
        cache.incr("text")
    assert cache.get("text") == "abc"


def test_a_json_value_another_client_wrote_is_read_as_it_is(cache: CacheGridCache) -> None:
    cache.client.set(cache.make_key("shared"), {"from": "curl"})
    assert cache.get("shared") == {"from": "curl"}


def test_a_key_longer_than_the_server_takes_is_hashed_and_works(
    cache: CacheGridCache, live: Server, prefix: str
) -> None:
    long_key = "k" * 400
    with pytest.warns(Warning, match="longer than 250"):  # Django's CacheKeyWarning, as its own backends
        cache.set(long_key, "value")
    with pytest.warns(Warning):
        assert cache.get(long_key) == "value"
    stored = [key for key in server_keys(live) if key.startswith(f"{prefix}:1:kkk")]
    assert len(stored) == 1 and len(stored[0].encode()) == 250 and "#" in stored[0]


# -- batches ---------------------------------------------------------------------------


def test_get_many_set_many_delete_many_are_one_request_each(cache: CacheGridCache) -> None:
    data = {f"key{i}": i for i in range(5)}
    with sent(cache.client) as requests:
        assert cache.set_many(data, timeout=60) == []
        assert cache.get_many(list(data) + ["absent"]) == data
        cache.delete_many(list(data))
    assert requests == [("POST", "/cache/batch/set"), ("POST", "/cache/batch/get"), ("POST", "/cache/batch/delete")]
    assert cache.get_many(list(data)) == {}


def test_a_batch_larger_than_batch_size_is_one_request_per_batch_size(live: Server, prefix: str) -> None:
    cache = django_cache(live.url, KEY_PREFIX=prefix, OPTIONS={"batch_size": 2})
    data = {f"key{i}": i for i in range(5)}
    with sent(cache.client) as requests:
        cache.set_many(data)
        assert cache.get_many(list(data)) == data
    assert [path for _, path in requests] == ["/cache/batch/set"] * 3 + ["/cache/batch/get"] * 3


def test_set_many_returns_the_keys_of_a_refused_batch_and_stores_none_of_them(
    start_server: Callable[..., Server], make_cache: Callable[..., CacheGridCache], prefix: str
) -> None:
    server = start_server(env={"CACHEGRID_MAX_VALUE_SIZE": "1000"})
    cache = make_cache(server.url, KEY_PREFIX=prefix, OPTIONS={"batch_size": 2})
    failed = cache.set_many({"a": "small", "b": "x" * 5000, "c": "small"})
    assert failed == ["a", "b"]  # the batch of a and b was refused whole
    assert cache.get_many(["a", "b", "c"]) == {"c": "small"}


def test_a_refused_set_raises_and_leaves_no_stale_value(
    start_server: Callable[..., Server], make_cache: Callable[..., CacheGridCache], prefix: str
) -> None:
    server = start_server(env={"CACHEGRID_MAX_VALUE_SIZE": "1000"})
    cache = make_cache(server.url, KEY_PREFIX=prefix)
    cache.set("session", "old")
    with pytest.raises(RequestError) as refused:
        cache.set("session", "x" * 5000)
    assert refused.value.status == 413
    assert cache.get("session") is None


# -- token, cluster, outages --------------------------------------------------------------


def test_the_token_option_authenticates(
    start_server: Callable[..., Server], make_cache: Callable[..., CacheGridCache], prefix: str
) -> None:
    server = start_server(env={"CACHEGRID_AUTH_TOKEN": "right"})
    cache = make_cache(server.url, KEY_PREFIX=prefix, OPTIONS={"token": "right"})
    cache.set("k", "v")
    assert cache.get("k") == "v"
    with pytest.raises(Unauthorized):
        make_cache(server.url, KEY_PREFIX=prefix, OPTIONS={"token": "wrong"}).get("k")


def test_a_list_of_locations_is_a_cluster(
    start_server: Callable[..., Server], make_cache: Callable[..., CacheGridCache], prefix: str
) -> None:
    nodes = [start_server(), start_server()]
    cache = make_cache([node.url for node in nodes], KEY_PREFIX=prefix)
    data = {f"user:{i}": {"id": i} for i in range(40)}
    assert cache.set_many(data) == []
    assert cache.get_many(list(data)) == data
    cache.set("count", 1)
    assert cache.incr("count") == 2
    held = [len(server_keys(node)) for node in nodes]
    assert all(held) and sum(held) == 41  # spread over both nodes, each key on one


def test_an_outage_raises_unless_fail_open() -> None:
    dead = f"127.0.0.1:{free_port()}"
    strict = django_cache(dead, OPTIONS={"timeout": 0.5, "max_retries": 0})
    with pytest.raises(CacheGridConnectionError):
        strict.get("k")
    lenient = django_cache(dead, OPTIONS={"timeout": 0.5, "max_retries": 0, "fail_open": True})
    assert lenient.get("k", "default") == "default"
    assert lenient.get_many(["k"]) == {}


# -- key checks ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "key",
    [":1:" + "k" * 300, ":1:with space", ":1:tab\there", ":1:del\x7f", ":1:" + "é" * 300 + " ", ":1:\x00"],
)
def test_a_key_memcached_would_refuse_warns_every_time_as_django_does(key: str) -> None:
    from django.core.cache.backends.base import BaseCache

    cache = django_cache(f"127.0.0.1:{free_port()}")  # the check sends nothing
    with pytest.warns(Warning) as expected:
        BaseCache.validate_key(cache, key)
    for _ in range(3):  # never remembered: each use warns again, in Django's words
        with pytest.warns(Warning) as ours:
            cache.validate_key(key)
        assert [(w.category, str(w.message)) for w in ours] == [(w.category, str(w.message)) for w in expected]


def test_a_clean_key_is_checked_once(monkeypatch: pytest.MonkeyPatch) -> None:
    import cachegrid.contrib.django as backend

    checks: list[str] = []
    original = backend.memcache_key_warnings
    monkeypatch.setattr(backend, "memcache_key_warnings", lambda key: checks.append(key) or original(key))
    cache = django_cache(f"127.0.0.1:{free_port()}")
    for _ in range(3):
        assert cache.make_and_validate_key("user:42") == ":1:user:42"
        cache.make_and_validate_key("user:43", version=2)
    assert checks == [":1:user:42", ":2:user:43"]
    monkeypatch.setattr(backend, "MAX_CHECKED_KEYS", 2)
    cache.make_and_validate_key("user:44")  # full: the remembered keys are forgotten
    cache.make_and_validate_key("user:42")
    assert checks[2:] == [":1:user:44", ":1:user:42"]
