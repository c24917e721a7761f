"""The near cache inside both clients, against real servers: hot reads kept
locally, another client's writes seen through the change stream, the
client's own writes at once, and nothing served that the server no longer
holds (a restart, a lost stream, a stale window, a fork)."""

from __future__ import annotations

import asyncio
import os
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from cachegrid.client import CacheGridClient, NearCache, SyncCacheGridClient
from cachegrid.testing import ServerProcess as Server
from cachegrid.testing import free_port, running
from tests.client.callers import address

pytestmark = pytest.mark.process
WAIT = 5.0  # seconds a change may take to reach a near cache in these tests (it takes milliseconds)


def eventually(check: Callable[[], bool], timeout: float = WAIT) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.005)
    return check()


@pytest.fixture
def near(live: Server) -> Iterator[SyncCacheGridClient]:
    client = SyncCacheGridClient([address(live)], near_cache=NearCache(max_ttl=30.0))
    yield client
    assert client.near_cache is not None
    client.near_cache.close()
    client.close()


def warm(client: SyncCacheGridClient, key: str) -> Any:
    """Read ``key`` until its value is kept locally (the first read opens the stream)."""
    assert client.near_cache is not None
    assert eventually(lambda: client.get(key) is not None and client.near_cache.stats()["entries"] > 0)
    return client.get(key)


def test_a_hot_read_is_local_and_another_clients_write_reaches_it(
    near: SyncCacheGridClient, live: Server, key: str
) -> None:
    other = SyncCacheGridClient([address(live)])
    other.set(key, {"n": 1})
    assert warm(near, key) == {"n": 1}
    assert near.near_cache is not None
    hits = near.near_cache.stats()["hits"]
    assert near.get(key) == {"n": 1} and near.near_cache.stats()["hits"] == hits + 1
    other.set(key, {"n": 2})
    assert eventually(lambda: near.get(key) == {"n": 2})
    other.delete(key)
    assert eventually(lambda: near.get(key) is None)
    assert near.near_cache.stats()["invalidations"] >= 2


def test_the_clients_own_writes_are_seen_at_once(near: SyncCacheGridClient, key: str) -> None:
    near.set(key, 0)
    warm(near, key)
    for n in range(1, 30):
        near.set(key, n)
        assert near.get(key) == n
    near.incr(key, 5)
    assert near.get(key) == 34
    near.delete(key)
    assert near.get(key) is None


def test_a_returned_value_can_be_changed_without_changing_the_copy(near: SyncCacheGridClient, key: str) -> None:
    near.set(key, {"list": [1, 2]})
    value = warm(near, key)
    value["list"].append(3)
    assert near.get(key) == {"list": [1, 2]}
    near.set(key, b"\x00bytes")
    assert eventually(lambda: near.get(key) == b"\x00bytes" and near.get(key) == b"\x00bytes")


def test_a_tag_invalidation_drops_the_tagged_copies(near: SyncCacheGridClient, live: Server, key: str) -> None:
    other = SyncCacheGridClient([address(live)])
    other.set(key, "tagged", tags=[f"{key}-tag"])
    warm(near, key)
    other.invalidate_tags([f"{key}-tag"])
    assert eventually(lambda: near.get(key) is None)


def test_a_value_with_a_stale_window_is_kept_only_while_fresh(near: SyncCacheGridClient, key: str) -> None:
    written = time.monotonic()
    near.set(key, "v", ttl=2, stale=30)
    warm(near, key)
    assert near.near_cache is not None
    time.sleep(max(0.0, written + 2.3 - time.monotonic()))
    misses = near.near_cache.stats()["misses"]
    assert near.get(key) == "v"  # from the server, marked stale there: not kept here
    assert near.near_cache.stats()["misses"] == misses + 1


def test_nothing_is_served_after_the_server_restarts_empty(key: str) -> None:
    port = free_port()
    with running("--port", str(port)) as first:
        client = SyncCacheGridClient([address(first)], near_cache=True)
        client.set(key, "before")
        warm(client, key)
        first.kill()
    assert client.near_cache is not None
    assert eventually(lambda: client.near_cache.stats()["entries"] == 0)  # the stream's loss drops them
    with running("--port", str(port)):
        assert client.get(key) is None  # the new server is empty: never the old copy
        client.set(key, "after")
        assert eventually(lambda: client.get(key) == "after" and client.near_cache.stats()["streams_live"] == 1)
    client.near_cache.close()


def test_a_forked_child_starts_empty(near: SyncCacheGridClient, key: str) -> None:
    near.set(key, "parent")
    warm(near, key)
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: its near cache is empty, and it still reads the server
        try:
            assert near.near_cache is not None
            entries = near.near_cache.stats()["entries"]
            os.write(write, f"{entries} {near.get(key)}".encode())
        finally:
            os._exit(0)
    os.close(write)
    answer = os.read(read, 100).decode()
    os.waitpid(pid, 0)
    assert answer == "0 parent"


def test_readers_agree_with_the_server_after_a_writer_stops(live: Server, key: str) -> None:
    writer = SyncCacheGridClient([address(live)])
    keys = [f"{key}:{n}" for n in range(5)]
    for name in keys:
        writer.set(name, 0)
    readers = [SyncCacheGridClient([address(live)], near_cache=True) for _ in range(3)]
    stop = threading.Event()
    errors: list[BaseException] = []

    def read(client: SyncCacheGridClient) -> None:
        try:
            while not stop.is_set():
                for name in keys:
                    client.get(name)
        except BaseException as error:  # surfaced below
            errors.append(error)

    threads = [threading.Thread(target=read, args=(reader,)) for reader in readers]
    for thread in threads:
        thread.start()
    deadline, n = time.monotonic() + 2.0, 0
    while time.monotonic() < deadline:
        n += 1
        writer.set(keys[n % len(keys)], n)
    stop.set()
    for thread in threads:
        thread.join()
    assert not errors
    final = {name: writer.get(name) for name in keys}
    for reader in readers:
        assert eventually(lambda reader=reader: {name: reader.get(name) for name in keys} == final)  # type: ignore[misc]
        assert reader.near_cache is not None
        assert reader.near_cache.stats()["hits"] > 0
        reader.near_cache.close()


def test_the_async_client_keeps_hot_reads_too(live: Server, key: str) -> None:
    other = SyncCacheGridClient([address(live)])
    other.set(key, [1])

    async def scenario() -> tuple[Any, Any, dict[str, Any]]:
        client = CacheGridClient([address(live)], near_cache=True)
        assert client.near_cache is not None
        deadline = time.monotonic() + WAIT
        while client.near_cache.stats()["entries"] == 0 and time.monotonic() < deadline:
            await client.get(key)
            await asyncio.sleep(0.005)
        first = await client.get(key)
        other.set(key, [2])
        while await client.get(key) != [2] and time.monotonic() < deadline + WAIT:
            await asyncio.sleep(0.005)
        second = await client.get(key)
        await client.set(key, [3])
        stats = client.near_cache.stats()
        third = await client.get(key)
        client.near_cache.close()
        await client.close()
        return first, (second, third), stats

    first, (second, third), stats = asyncio.run(scenario())
    assert first == [1] and second == [2] and third == [3]
    assert stats["hits"] > 0


def test_a_bad_near_cache_option_is_refused() -> None:
    with pytest.raises(ValueError, match="near_cache must be True, False or a NearCache"):
        SyncCacheGridClient(["127.0.0.1:1"], near_cache={"max_entries": 5})  # type: ignore[arg-type]
