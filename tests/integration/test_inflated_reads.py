"""Identity reads of values held compressed, with their inflations kept
(compression.py ``InflatedValues``), on a real server under each worker:
after an overwrite (even by a value of the same size), a delete, an expiry,
an eviction or a clear, identity and gzip reads give the key's current
value, through the fast path and through falcon; the bound holds; /stats
and /metrics report it; threads writing and reading one key under gthread
never get a value that was not written."""

from __future__ import annotations

import gzip
import json
import threading
import time
from collections.abc import Iterator

import pytest

from cachegrid.testing import ServerProcess, running
from tests.fixtures import worker_kinds

BOUND = 200_000
MAX_ITEMS = 40
JSON = {"Content-Type": "application/json"}
GZIP = {"Accept-Encoding": "gzip"}
PATHS = pytest.mark.parametrize("query", ["", "?falcon=1"], ids=["fast-path", "falcon"])


def document(seed: int) -> bytes:
    """About 8 KB of JSON; documents of different seeds below 10 have the same length."""
    users = [{"id": n, "name": f"user {seed}-{n}", "email": f"user{n}@example.com"} for n in range(100)]
    return json.dumps(users, separators=(",", ":")).encode()


@pytest.fixture(scope="module", params=worker_kinds())
def server(request: pytest.FixtureRequest) -> Iterator[ServerProcess]:
    env = {
        "CACHEGRID_INFLATED_CACHE_SIZE": str(BOUND),
        "CACHEGRID_MAX_SIZE": str(MAX_ITEMS),
        # lru: the eviction test below counts on the oldest key going first
        # (the default, adaptive, keeps a key that was read over newer unread ones).
        "CACHEGRID_EVICTION_POLICY": "lru",
        "CACHEGRID_MEMORY_TRIM_INTERVAL": "0",
    }
    with running("--worker", request.param, env=env, graceful=False) as started:
        yield started


def put(server: ServerProcess, key: str, body: bytes, query: str = "") -> None:
    status = server.request("PUT", f"/cache/{key}{query}", raw=body, headers=JSON)[0]
    assert status in (200, 201)


def identity(server: ServerProcess, key: str, query: str = "") -> tuple[int, bytes]:
    status, headers, body = server.request("GET", f"/cache/{key}{query}")
    assert "content-encoding" not in headers
    return status, body


def zipped(server: ServerProcess, key: str, query: str = "") -> tuple[int, bytes]:
    status, headers, body = server.request("GET", f"/cache/{key}{query}", headers=GZIP)
    return status, (gzip.decompress(body) if headers.get("content-encoding") == "gzip" else body)


def stats(server: ServerProcess) -> dict[str, int]:
    return json.loads(server.request("GET", "/stats")[2])  # type: ignore[no-any-return]


def current(server: ServerProcess, key: str, value: bytes, query: str = "") -> None:
    """Both representations give ``value``, twice (the second identity read from the kept inflation)."""
    for _ in range(2):
        assert identity(server, key, query) == (200, value)
        assert zipped(server, key, query) == (200, value)


@PATHS
def test_reads_follow_overwrites(server: ServerProcess, query: str) -> None:
    key = f"over{query[1:]}"
    first, second = document(1), document(2)
    assert len(first) == len(second)
    put(server, key, first)
    before = stats(server)["inflated_cache_hits"]
    current(server, key, first, query)
    assert stats(server)["inflated_cache_hits"] > before
    put(server, key, second)
    current(server, key, second, query)
    put(server, key, b'{"small":true}')  # held as sent
    current(server, key, b'{"small":true}', query)
    put(server, key, first)
    current(server, key, first, query)


@PATHS
def test_reads_after_a_delete_and_an_expiry(server: ServerProcess, query: str) -> None:
    key = f"gone{query[1:]}"
    put(server, key, document(3))
    current(server, key, document(3), query)
    assert server.request("DELETE", f"/cache/{key}")[0] == 200
    assert identity(server, key, query)[0] == 404 and zipped(server, key, query)[0] == 404
    put(server, key, document(4), "?ttl=1")
    current(server, key, document(4), query)
    deadline = time.monotonic() + 10
    while identity(server, key, query)[0] == 200:
        assert time.monotonic() < deadline, "the value did not expire"
        time.sleep(0.1)
    assert zipped(server, key, query)[0] == 404
    put(server, key, document(5))
    current(server, key, document(5), query)


def test_reads_after_an_eviction(server: ServerProcess) -> None:
    put(server, "evicted", document(6))
    current(server, "evicted", document(6))
    for n in range(MAX_ITEMS + 5):  # the item limit evicts "evicted" (lru), not read since
        put(server, f"filler-{n}", b'{"n":%d}' % n)
    assert identity(server, "evicted")[0] == 404
    put(server, "evicted", document(7))
    current(server, "evicted", document(7))


def test_reads_after_a_clear(server: ServerProcess) -> None:
    put(server, "cleared", document(8))
    current(server, "cleared", document(8))
    assert stats(server)["inflated_cache_entries"] >= 1
    assert server.request("DELETE", "/cache?confirm=true")[0] == 200
    assert stats(server)["inflated_cache_entries"] == stats(server)["inflated_cache_bytes"] == 0
    assert identity(server, "cleared")[0] == 404
    put(server, "cleared", document(9))
    current(server, "cleared", document(9))


def test_the_bound_holds_and_is_reported(server: ServerProcess) -> None:
    keys = [f"bound-{n}" for n in range(30)]  # about 10 KB a slot: 300 KB, over the bound
    for n, key in enumerate(keys):
        put(server, key, document(100 + n))
    for _ in range(2):
        for n, key in enumerate(keys):
            assert identity(server, key) == (200, document(100 + n))
            figures = stats(server)
            assert 0 < figures["inflated_cache_bytes"] <= BOUND == figures["inflated_cache_max_bytes"]
    assert figures["inflated_cache_entries"] < len(keys)
    metrics = server.request("GET", "/metrics")[2].decode()
    assert f"cachegrid_inflated_cache_bytes {float(figures['inflated_cache_bytes'])}" in metrics
    assert "cachegrid_inflated_cache_hits_total" in metrics and "cachegrid_inflated_cache_misses_total" in metrics
    assert server.request("DELETE", "/cache?confirm=true")[0] == 200  # room for the other tests


def test_concurrent_writes_and_reads_give_written_values(server: ServerProcess) -> None:
    values = [document(n) for n in range(4)]
    failures: list[str] = []
    stop = threading.Event()

    def reader() -> None:
        while not stop.is_set():
            status, body = identity(server, "race")
            if status != 200 or body not in values:
                failures.append(f"{status} {body[:60]!r}")

    put(server, "race", values[0])
    threads = [threading.Thread(target=reader) for _ in range(3)]
    for thread in threads:
        thread.start()
    try:
        for n in range(60):
            put(server, "race", values[n % len(values)])
    finally:
        stop.set()
        for thread in threads:
            thread.join()
    assert failures == []
    current(server, "race", values[59 % len(values)])
