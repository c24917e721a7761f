"""The dogpile.cache backend beyond dogpile's suite: found by its entry
point name, its arguments (hosts, the client's options, ttl), what it
stores, and regions of two processes sharing one cluster."""

from __future__ import annotations

import importlib.metadata
import uuid
from collections.abc import Callable
from typing import Any

import pytest
from dogpile.cache import make_region
from dogpile.cache.api import NO_VALUE

from cachegrid.contrib.dogpile import CacheGridBackend
from cachegrid.testing import ServerProcess as Server
from tests.contrib.helpers import raw_entry, sent, server_keys


@pytest.fixture
def key() -> str:
    return f"dogpile:{uuid.uuid4().hex}"


def region(**arguments: Any) -> Any:
    return make_region().configure("cachegrid", expiration_time=300, arguments=arguments)


def test_the_entry_point_names_the_backend() -> None:
    (entry,) = [point for point in importlib.metadata.entry_points(group="dogpile.cache") if point.name == "cachegrid"]
    assert entry.load() is CacheGridBackend


def test_arguments_are_the_hosts_and_the_clients_options() -> None:
    backend = region(
        hosts=["127.0.0.1:8001", "127.0.0.1:8002"],
        token="secret",
        timeout=1.5,
        replicas=2,
        ttl=600,
        unrelated="ignored",
    ).backend
    assert backend.client.hosts == ["http://127.0.0.1:8001", "http://127.0.0.1:8002"]
    assert (backend.client.auth_token, backend.client.timeout, backend.client.replicas) == ("secret", 1.5, 2)
    assert backend.ttl == 600


@pytest.mark.parametrize(
    "arguments, problem",
    [
        ({"ttl": 0}, "ttl"),
        ({"max_key_length": 20}, "max_key_length"),
        ({"batch_size": 0}, "batch_size"),
        ({"replicas": 0}, "replicas"),
        ({"lock_timeout": 0}, "lock_timeout"),
    ],
)
def test_a_wrong_argument_is_named(arguments: dict[str, Any], problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        region(hosts="127.0.0.1:1", **arguments)


def test_values_are_binary_entries_and_ttl_is_the_servers(live: Server, key: str) -> None:
    cache = region(hosts=[live.url], ttl=600)
    cache.set(key, {"answer": 42})
    status, kind, _ = raw_entry(live, key)
    assert (status, kind) == (200, "application/octet-stream")
    assert 590 < cache.backend.client.ttl(key) <= 600
    assert region(hosts=[live.url]).get(key) == {"answer": 42}


def test_a_json_entry_under_the_key_reads_as_no_value(live: Server, key: str) -> None:
    cache = region(hosts=[live.url])
    cache.backend.client.set(key, "written by another client")
    assert cache.get(key) is NO_VALUE
    assert cache.get_or_create(key, lambda: "made") == "made"


def test_multi_operations_are_one_request_each(live: Server, key: str) -> None:
    cache = region(hosts=[live.url])
    keys = [f"{key}:{i}" for i in range(4)]
    with sent(cache.backend.client) as requests:
        cache.set_multi({k: k.upper() for k in keys})
        assert cache.get_multi(keys) == [k.upper() for k in keys]
        cache.delete_multi(keys)
    assert requests == [("POST", "/cache/batch/set"), ("POST", "/cache/batch/get"), ("POST", "/cache/batch/delete")]


def test_a_long_key_is_hashed(live: Server, key: str) -> None:
    cache = region(hosts=[live.url])
    cache.set(key + "x" * 400, "long")
    assert cache.get(key + "x" * 400) == "long"
    (stored,) = [k for k in server_keys(live) if k.startswith(key)]
    assert len(stored) == 250


def test_two_regions_share_a_replicated_cluster(start_server: Callable[..., Server], key: str) -> None:
    nodes = [start_server(), start_server()]
    hosts = [node.url for node in nodes]
    writer, reader = region(hosts=hosts, replicas=2), region(hosts=hosts, replicas=2)
    calls: list[int] = []

    def cached(cache: Any) -> Callable[[int], str]:
        @cache.cache_on_arguments(namespace=key)
        def value(n: int) -> str:
            calls.append(n)
            return f"value {n}"

        return value

    assert cached(writer)(7) == "value 7"
    assert [len(server_keys(node)) for node in nodes] == [1, 1]  # on both nodes: replicas=2
    nodes[0].stop()
    assert cached(reader)(7) == "value 7"  # the other process's value, from the node left
    assert calls == [7]
    for cache in (writer, reader):
        cache.backend.client.close()


def test_the_mutex_is_one_lock_for_every_process(live: Server, key: str) -> None:
    first, second = region(hosts=[live.url], lock_timeout=30), region(hosts=[live.url])
    held = first.backend.get_mutex(key)
    assert held.acquire(wait=False)
    other = second.backend.get_mutex(key)
    assert other.locked() and not other.acquire(wait=False)  # another process: the same lock
    assert second.backend.client.get(key) is None  # the lock is not a value
    held.release()
    assert not other.locked() and other.acquire(wait=False)
    other.release()
    with pytest.raises(RuntimeError, match="not held"):
        other.release()


def test_a_lock_ends_by_itself_after_lock_timeout(live: Server, key: str) -> None:
    mutex = region(hosts=[live.url], lock_timeout=0.5).backend.get_mutex(key)
    assert mutex.acquire(wait=False)
    waiting = region(hosts=[live.url], lock_sleep=0.05).backend.get_mutex(key)
    assert waiting.acquire(wait=True)  # within about half a second: the holder never released it
    waiting.release()


def test_distributed_lock_false_is_dogpiles_own_lock() -> None:
    backend = region(hosts="127.0.0.1:1", distributed_lock=False).backend
    assert backend.get_mutex("k") is None and backend.has_lock_timeout() is False
