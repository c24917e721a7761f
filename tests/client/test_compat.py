"""The earlier CacheGrid client's API, on both clients: ``api_key=``,
``connect()``/``close()``, ``clear()``, ``increment``/``decrement``/``expire``,
``exists``, ``keys()`` as a list next to ``scan()``'s pages, the exceptions
``CacheGridConnectionError``/``CacheGridTimeoutError`` and ``fail_open``.

Against a real server, a port where nothing listens, a socket that accepts
connections and never answers (a timeout), and a host answering 500."""

from __future__ import annotations

import asyncio
import logging
import socket
import time
from collections.abc import Callable, Iterator

import pytest

from cachegrid.client import (
    CacheGridClient,
    CacheGridConnectionError,
    CacheGridError,
    CacheGridTimeoutError,
    RequestError,
    SyncCacheGridClient,
    Unauthorized,
    Unavailable,
)
from cachegrid.testing import ServerProcess as Server
from tests.client.callers import address, collect, make_caller
from tests.fixtures import Stub


@pytest.fixture
def silent_host() -> Iterator[str]:
    """A socket that accepts connections (the kernel's backlog) and never answers."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(64)
        yield f"127.0.0.1:{listener.getsockname()[1]}"


# -- api_key --------------------------------------------------------------------------------


def test_api_key_is_the_token(kind: str, start_server: Callable[..., Server]) -> None:
    server = start_server(env={"CACHEGRID_AUTH_TOKEN": "right"})
    caller, client = make_caller(kind, [address(server)], api_key="right")
    assert client.auth_token == "right"
    assert caller("set", "k", 1) is True and caller("get", "k") == 1
    caller, _ = make_caller(kind, [address(server)], api_key="wrong")
    with pytest.raises(Unauthorized):
        caller("get", "k")
    caller, _ = make_caller(kind, [address(server)], api_key="right", auth_token="right")  # the same: fine
    assert caller("get", "k") == 1


def test_api_key_and_a_different_auth_token_is_an_error(kind: str) -> None:
    client_class = SyncCacheGridClient if kind == "sync" else CacheGridClient
    with pytest.raises(ValueError, match="api_key"):
        client_class(["127.0.0.1:1"], auth_token="one", api_key="two")


# -- connect() and close() ------------------------------------------------------------------


def test_sync_connect_and_close_are_safe_twice(live: Server, key: str) -> None:
    client = SyncCacheGridClient([address(live)])
    client.connect()
    session = client._session
    assert session is not None
    client.connect()
    assert client._session is session  # the same pool, not a second one
    assert client.set(key, "connected") and client.get(key) == "connected"
    client.close()
    client.close()
    assert client._session is None
    assert client.get(key) == "connected"  # reopened on use
    client.close()


def test_sync_connect_then_with_blocks_keep_working(live: Server, key: str) -> None:
    client = SyncCacheGridClient([address(live)])
    client.connect()
    for i in range(2):
        with client:
            client.set(key, i)
    assert client._session is None  # the last block closed it, as without connect()
    assert client.get(key) == 1


def test_async_connect_and_close_are_safe_twice(live: Server, key: str) -> None:
    async def scenario() -> None:
        client = CacheGridClient([address(live)])
        await client.connect()
        pool = client._client
        assert pool is not None and not pool.is_closed
        await client.connect()
        assert client._client is pool
        assert await client.set(key, "connected") and await client.get(key) == "connected"
        await client.close()
        await client.close()
        assert client._client is None and pool.is_closed
        assert await client.get(key) == "connected"
        await client.close()

    asyncio.run(scenario())


# -- the methods ------------------------------------------------------------------------------


def test_increment_and_decrement_are_incr_and_decr(kind: str, live: Server, key: str) -> None:
    caller, _ = make_caller(kind, [address(live)])
    assert caller("increment", key) == 1
    assert caller("increment", key, delta=5) == 6
    assert caller("incr", key) == 7  # the same counter
    assert caller("decrement", key, delta=2) == 5
    assert caller("decrement", key) == 4
    caller("set", key + ":text", "text")
    with pytest.raises(RequestError) as raised:
        caller("increment", key + ":text")
    assert raised.value.code == "not_an_integer"


def test_expire_is_touch(kind: str, live: Server, key: str) -> None:
    caller, _ = make_caller(kind, [address(live)])
    caller("set", key, "v")
    assert caller("ttl", key) is None
    assert caller("expire", key, 50) is True
    assert 49 < caller("ttl", key) <= 50
    assert caller("expire", key + ":missing", 5) is False
    assert caller("expire", key, 0.2) is True
    time.sleep(0.3)
    assert caller("exists", key) is False and caller("get", key) is None


def test_exists(kind: str, live: Server, key: str) -> None:
    caller, _ = make_caller(kind, [address(live)])
    assert caller("exists", key) is False
    caller("set", key, None)  # a stored null exists
    assert caller("exists", key) is True
    caller("delete", key)
    assert caller("exists", key) is False


# -- keys() as a list, scan() as pages --------------------------------------------------------


def test_keys_is_a_list(kind: str, live: Server, key: str) -> None:
    caller, _ = make_caller(kind, [address(live)])
    names = {f"{key}:{i}" for i in range(25)}
    caller("set_multi", dict.fromkeys(names, 1))
    listed = caller("keys", f"{key}:")
    assert isinstance(listed, list) and sorted(listed) == sorted(names)
    assert sorted(caller("keys", f"{key}:*", limit=None)) == sorted(names)  # a glob, every key
    some = caller("keys", f"{key}:", limit=10)
    assert len(some) == len(set(some)) == 10 and set(some) <= names
    assert set(caller("keys", f"{key}:1?")) == {f"{key}:1{i}" for i in range(10)}
    assert caller("keys", f"{key}:nothing-here") == []
    for bad in (0, -1, 2.5):
        with pytest.raises(ValueError):
            caller("keys", f"{key}:", limit=bad)


def test_keys_follows_the_cursor_over_short_pages(kind: str, start_server: Callable[..., Server]) -> None:
    # Each request examines at most 7 slots: pages are short (some empty) long
    # before the end, and keys() must keep going through the cursor.
    server = start_server(env={"CACHEGRID_KEYS_SCAN_COUNT": "7"})
    caller, client = make_caller(kind, [address(server)])
    names = {f"short:{i}" for i in range(60)}
    caller("set_multi", {name: i for i, name in enumerate(names)})
    caller("set_multi", {f"other:{i}": i for i in range(60)})
    first = caller("scan", "short:", 50)
    assert first["count"] < 50 and first["cursor"]  # a short page that is not the last
    assert sorted(caller("keys", "short:", limit=None)) == sorted(names)
    assert len(caller("keys", "short:", limit=45)) == 45
    assert sorted(collect(kind, client, "short:", page_size=5)) == sorted(names)


def test_scan_is_one_page_and_its_cursor(kind: str, live: Server, key: str) -> None:
    caller, client = make_caller(kind, [address(live)])
    names = {f"{key}:{i}" for i in range(12)}
    caller("set_multi", dict.fromkeys(names, 1))
    page = caller("scan", f"{key}:", limit=5)
    assert set(page) >= {"keys", "count", "cursor"} and page["count"] == len(page["keys"]) == 5
    seen = list(page["keys"])
    while page["cursor"]:
        page = caller("scan", f"{key}:", limit=5, cursor=page["cursor"])
        assert page["count"] <= 5
        seen.extend(page["keys"])
    assert sorted(seen) == sorted(names)
    assert sorted(collect(kind, client, f"{key}:", page_size=4)) == sorted(names)


# -- the exceptions -----------------------------------------------------------------------------


def test_a_dead_port_is_a_connection_error_and_unavailable(kind: str, dead_host: str) -> None:
    caller, _ = make_caller(kind, [dead_host], timeout=2.0, max_retries=1)
    with pytest.raises(CacheGridConnectionError) as raised:
        caller("get", "k")
    error = raised.value
    assert isinstance(error, Unavailable) and isinstance(error, CacheGridError)
    assert not isinstance(error, CacheGridTimeoutError)
    assert list(error.errors) == [f"http://{dead_host}"]
    for name, args in (("set", ("k", 1)), ("stats", ()), ("keys", ()), ("clear", ())):
        with pytest.raises(CacheGridConnectionError):
            caller(name, *args)


def test_a_host_that_never_answers_is_a_timeout_error(kind: str, silent_host: str) -> None:
    caller, _ = make_caller(kind, [silent_host], timeout=0.3, max_retries=1)
    for name, args in (("get", ("k",)), ("set", ("k", 1))):
        with pytest.raises(CacheGridTimeoutError) as raised:
            caller(name, *args)
        assert isinstance(raised.value, Unavailable) and not isinstance(raised.value, CacheGridConnectionError)


def test_a_timeout_and_a_refusal_together_are_a_connection_error(kind: str, silent_host: str, dead_host: str) -> None:
    caller, _ = make_caller(kind, [silent_host, dead_host], timeout=0.3, max_retries=1, sharding=False)
    with pytest.raises(CacheGridConnectionError) as raised:
        caller("get", "k")
    assert not isinstance(raised.value, CacheGridTimeoutError) and len(raised.value.errors) == 2


def test_server_errors_are_unavailable_but_no_connection_error(kind: str, stub: Callable[..., Stub]) -> None:
    broken = stub(500)
    caller, _ = make_caller(kind, [broken.host], max_retries=1)
    with pytest.raises(Unavailable) as raised:
        caller("get", "k")
    assert not isinstance(raised.value, (CacheGridConnectionError, CacheGridTimeoutError))
    assert broken.requests == 2


@pytest.mark.parametrize("replicas", [1, 2])
def test_a_cluster_of_dead_nodes_is_a_connection_error(kind: str, dead_host: str, replicas: int) -> None:
    other = f"127.0.0.1:{int(dead_host.split(':')[1]) ^ 1}"
    caller, _ = make_caller(kind, [dead_host, other], timeout=2.0, max_retries=1, replicas=replicas)
    for name, args in (
        ("get", ("k",)),
        ("set", ("k", 1)),
        ("get_multi", (["a", "b"],)),
        ("stats", ()),
        ("keys", ()),
        ("scan", ()),
        ("clear", ()),
    ):
        with pytest.raises(CacheGridConnectionError):
            caller(name, *args)


# -- fail_open ----------------------------------------------------------------------------------


def test_fail_open_on_a_dead_port_answers_the_absent_value(kind: str, dead_host: str, key: str) -> None:
    caller, client = make_caller(kind, [dead_host], timeout=2.0, max_retries=0, fail_open=True)
    assert caller("get", key) is None
    assert caller("get", key, "fallback") == "fallback"
    assert caller("set", key, 1) is False
    assert caller("set", key, 1, ttl=5, only_if_absent=True) is False
    assert caller("stats") == {}
    assert caller("delete", key) is False
    assert caller("exists", key) is False
    assert caller("get_multi", [key, key + ":2"]) == {}
    assert caller("set_multi", {key: 1}) == 0
    assert caller("delete_multi", [key]) == 0
    assert caller("touch", key, 5) is False and caller("expire", key, 5) is False
    assert caller("persist", key) is False
    assert caller("keys") == []
    assert caller("scan", "p:") == {"keys": [], "count": 0, "cursor": None, "pattern": "p:"}
    assert collect(kind, client, "p:") == []
    # No answer to invent: a counter's value, a TTL, a clear, the health check.
    for name, args in (
        ("incr", (key,)),
        ("increment", (key,)),
        ("decr", (key,)),
        ("ttl", (key,)),
        ("clear", ()),
        ("health", ()),
    ):
        with pytest.raises(CacheGridConnectionError):
            caller(name, *args)


def test_fail_open_on_a_dead_cluster(kind: str, dead_host: str, key: str) -> None:
    other = f"127.0.0.1:{int(dead_host.split(':')[1]) ^ 1}"
    caller, _ = make_caller(kind, [dead_host, other], timeout=2.0, max_retries=0, replicas=2, fail_open=True)
    assert caller("get", key, "d") == "d" and caller("set", key, 1) is False and caller("stats") == {}
    assert caller("keys") == []


def test_fail_open_on_a_timeout(kind: str, silent_host: str, key: str) -> None:
    caller, _ = make_caller(kind, [silent_host], timeout=0.3, max_retries=0, fail_open=True)
    assert caller("get", key) is None and caller("set", key, 1) is False


def test_fail_open_logs_the_outage(kind: str, dead_host: str, caplog: pytest.LogCaptureFixture) -> None:
    caller, _ = make_caller(kind, [dead_host], max_retries=0, fail_open=True)
    with caplog.at_level(logging.WARNING, logger="cachegrid.client"):
        assert caller("get", "k") is None
    assert any("fail_open" in record.getMessage() and dead_host in record.getMessage() for record in caplog.records)


def test_without_fail_open_an_outage_raises(kind: str, dead_host: str) -> None:
    caller, client = make_caller(kind, [dead_host], max_retries=0)
    assert client.fail_open is False
    for name, args in (("get", ("k",)), ("set", ("k", 1)), ("stats", ()), ("exists", ("k",)), ("keys", ())):
        with pytest.raises(Unavailable):
            caller(name, *args)


def test_fail_open_changes_nothing_while_the_server_answers(kind: str, live: Server, key: str) -> None:
    caller, _ = make_caller(kind, [address(live)], fail_open=True)
    assert caller("set", key, {"a": 1}) is True and caller("get", key) == {"a": 1}
    assert caller("stats")["current_size"] >= 1
    assert caller("keys", key) == [key]
    with pytest.raises(RequestError) as raised:  # a refusal is no outage: it still raises
        caller("set", key, 1, ttl=-1)
    assert raised.value.code == "invalid_ttl"
