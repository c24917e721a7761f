"""Both clients against a real server: every method, typed errors, failover.

The tests run once with the synchronous client and once with the async one
(through ``asyncio.run``), calling methods by name, so both are held to the
same behaviour."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from cachegrid.client import (
    CacheGridClient,
    NotFound,
    RequestError,
    SyncCacheGridClient,
    Unauthorized,
    Unavailable,
)
from cachegrid.testing import ServerProcess as Server
from tests.client.callers import Call, address, collect, make_caller
from tests.fixtures import Stub


@pytest.mark.parametrize("value", [{"name": "Alice", "age": 30}, [1, 2.5, None, True], "ключ", 0, None, 10**20])
def test_values_come_back_equal(call: Call, key: str, value: Any) -> None:
    assert call("set", key, value) is True
    assert call("get", key, "absent") == value


def test_get_of_a_missing_key_gives_the_default(call: Call, key: str) -> None:
    assert call("get", key) is None
    assert call("get", key, {"default": 1}) == {"default": 1}


def test_keys_with_any_character(call: Call, key: str) -> None:
    for suffix in ("a/b", "with space", "ключ", "q?#%"):
        assert call("set", key + suffix, suffix)
        assert call("get", key + suffix) == suffix


def test_ttl_touch_persist(call: Call, key: str) -> None:
    call("set", key, 1, ttl=100)
    assert 99 < call("ttl", key) <= 100
    assert call("touch", key, 500) is True
    assert 499 < call("ttl", key) <= 500
    assert call("persist", key) is True
    assert call("ttl", key) is None
    assert call("touch", key + "-missing", 5) is False
    assert call("persist", key + "-missing") is False
    with pytest.raises(NotFound):
        call("ttl", key + "-missing")


def test_a_short_ttl_expires(call: Call, key: str) -> None:
    call("set", key, "soon gone", ttl=0.2)
    time.sleep(0.3)
    assert call("get", key) is None


def test_conditional_set(call: Call, key: str) -> None:
    assert call("set", key, 1, only_if_present=True) is False
    assert call("set", key, 1, only_if_absent=True) is True
    assert call("set", key, 2, only_if_absent=True) is False
    assert call("set", key, 3, only_if_present=True) is True
    assert call("get", key) == 3


def test_delete_and_exists(call: Call, key: str) -> None:
    call("set", key, 1)
    assert call("exists", key) is True
    assert call("delete", key) is True
    assert call("delete", key) is False
    assert call("exists", key) is False


def test_multi_operations(call: Call, key: str) -> None:
    items = {f"{key}:{i}": {"n": i} for i in range(5)}
    assert call("set_multi", items, ttl=60) == 5
    assert call("get_multi", [*items, key + ":nope"]) == items
    assert call("delete_multi", [*list(items)[:3], key + ":nope"]) == 3
    assert call("get_multi", list(items)) == dict(list(items.items())[3:])


def test_counters(call: Call, key: str) -> None:
    assert call("incr", key) == 1
    assert call("incr", key, 9) == 10
    assert call("decr", key, 4) == 6
    call("set", key, "text")
    with pytest.raises(RequestError) as raised:
        call("incr", key)
    assert raised.value.status == 400 and raised.value.code == "not_an_integer"


def test_scan_pages_and_iteration(kind: str, live: Server, key: str) -> None:
    caller, client = make_caller(kind, [address(live)])
    caller("set_multi", {f"{key}:{i}": i for i in range(25)})
    page = caller("scan", f"{key}:", 10)
    assert page["count"] == 10 and page["cursor"]
    pages = [page]
    while pages[-1]["cursor"]:
        pages.append(caller("scan", f"{key}:", 10, pages[-1]["cursor"]))
    assert sorted(k for p in pages for k in p["keys"]) == sorted(f"{key}:{i}" for i in range(25))
    every = collect(kind, client, f"{key}:", page_size=7)
    assert sorted(every) == sorted(f"{key}:{i}" for i in range(25))


def test_clear_clears_and_confirm_false_refuses(kind: str, start_server: Callable[..., Server]) -> None:
    server = start_server()
    caller, _ = make_caller(kind, [address(server)])
    caller("set_multi", {"a": 1, "b": 2})
    with pytest.raises(ValueError):
        caller("clear", confirm=False)
    assert caller("get", "a") == 1
    assert caller("clear") == 2
    assert caller("get", "a") is None
    caller("set", "c", 3)
    assert caller("clear", confirm=True) == 1  # the earlier spelling still works
    assert caller("get", "c") is None


def test_stats_and_health(call: Call) -> None:
    assert call("stats")["current_size"] >= 0
    assert call("health")["status"] == "healthy"


def test_typed_errors(call: Call, key: str) -> None:
    with pytest.raises(RequestError) as raised:
        call("set", key, 1, ttl=-1)
    assert raised.value.code == "invalid_ttl" and raised.value.status == 400
    with pytest.raises(RequestError) as raised:
        call("set", "k" * 300, 1)
    assert raised.value.code == "key_too_long"
    with pytest.raises(TypeError):
        call("set", key, object())


def test_wrong_token_is_unauthorized(kind: str, start_server: Callable[..., Server]) -> None:
    server = start_server(env={"CACHEGRID_AUTH_TOKEN": "right"})
    caller, _ = make_caller(kind, [address(server)], auth_token="wrong")
    with pytest.raises(Unauthorized):
        caller("get", "k")
    caller, _ = make_caller(kind, [address(server)], auth_token="right")
    assert caller("set", "k", 1) and caller("get", "k") == 1


# -- failover (sharding=False: every host a copy of one cache) --------------------------


def test_fails_over_from_a_dead_host_to_a_live_one(kind: str, live: Server, dead_host: str, key: str) -> None:
    caller, client = make_caller(kind, [dead_host, address(live)], timeout=2.0, max_retries=3, sharding=False)
    assert caller("set", key, "via failover")
    assert caller("get", key) == "via failover"
    # The dead host cools down: the next calls go straight to the live one.
    assert client.pool.candidates()[0] == f"http://{address(live)}"


def test_every_host_dead_is_unavailable(kind: str, dead_host: str) -> None:
    caller, _ = make_caller(
        kind, [dead_host, f"127.0.0.1:{int(dead_host.split(':')[1]) ^ 1}"], timeout=1.0, max_retries=2
    )
    with pytest.raises(Unavailable) as raised:
        caller("get", "k")
    assert raised.value.errors


def test_a_host_that_comes_back_is_used_again(kind: str, start_server: Callable[..., Server]) -> None:
    first = start_server()
    second = start_server()
    caller, client = make_caller(kind, [address(first), address(second)], cooldown=0.5, max_retries=3, sharding=False)
    assert caller("set", "where", "first")
    port = first.port
    assert first.stop() == 0
    assert caller("set", "where", "second")  # the first is down: the second takes it
    assert json_stat(second, "sets") == 1
    back = start_server("--port", str(port))
    time.sleep(0.6)  # past the cool-down
    assert caller("set", "where", "back")
    assert json_stat(back, "sets") == 1  # preferred again once it answers


def json_stat(server: Server, name: str) -> Any:
    import json

    return json.loads(server.request("GET", "/stats")[2])[name]


def test_5xx_fails_over_and_4xx_is_never_retried(kind: str, live: Server, stub: Callable[..., Stub], key: str) -> None:
    broken = stub(500)
    caller, _ = make_caller(kind, [broken.host, address(live)], max_retries=2, sharding=False)
    assert caller("set", key, 1) and caller("get", key) == 1
    assert broken.requests == 1  # then it cooled down
    refusing = stub(400, b'{"error": "invalid_ttl", "message": "no"}')
    caller, _ = make_caller(kind, [refusing.host, address(live)], max_retries=3, sharding=False)
    with pytest.raises(RequestError) as raised:
        caller("get", key)
    assert raised.value.code == "invalid_ttl" and refusing.requests == 1


def test_a_full_cache_is_not_a_failover(kind: str, stub: Callable[..., Stub], live: Server) -> None:
    full = stub(507, b'{"error": "cache_full", "message": "full"}')
    caller, _ = make_caller(kind, [full.host, address(live)], max_retries=3, sharding=False)
    with pytest.raises(RequestError) as raised:
        caller("set", "k", 1)
    assert raised.value.status == 507 and full.requests == 1


def test_incr_is_not_retried_when_it_may_have_been_applied(kind: str, stub: Callable[..., Stub], live: Server) -> None:
    silent = stub(None)  # reads the request, then hangs up without answering
    caller, _ = make_caller(kind, [silent.host, address(live)], max_retries=3, sharding=False)
    with pytest.raises(Unavailable):
        caller("incr", "counter")
    assert silent.requests == 1


def test_sync_client_is_reusable_across_with_blocks(live: Server, key: str) -> None:
    client = SyncCacheGridClient([address(live)])
    for i in range(3):
        with client:
            client.set(key, i)
            assert client.get(key) == i
    assert client._session is None  # closed after the last block
    assert client.get(key) == 2  # and usable without one


@pytest.fixture
def each_loop_client(live: Server) -> Iterator[CacheGridClient]:
    yield CacheGridClient([address(live)])


def test_async_client_works_across_event_loops(each_loop_client: CacheGridClient, key: str) -> None:
    asyncio.run(each_loop_client.set(key, "one"))
    assert asyncio.run(each_loop_client.get(key)) == "one"
