"""A cluster of three real nodes on 127.0.0.1, used through both clients:
placement and replicas, a killed node, a restarted (empty) one, a hung one,
a fourth node added, batches, keys, stats and clear across nodes.

The three nodes are started once for the module; a test that kills or stops
one brings it back before it ends (``Cluster.restore``), and every test
clears the nodes first. Keys are read back from each node directly (a
single-host client per node), never through the ring under test.
"""

from __future__ import annotations

import asyncio
import math
import os
import signal
import time
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from cachegrid.client import CacheGridClient, SyncCacheGridClient
from cachegrid.client.protocol import Answer, copy_call, item_path
from cachegrid.client.ring import KetamaRing
from cachegrid.testing import ServerProcess, free_port

KEYS = [f"cluster:{number}" for number in range(3000)]
CHUNK = 500  # keys per batch request when reading a node directly
NODES = 3
PORT_DRAWS = 20


def node_label(port: int) -> str:
    return f"127.0.0.1:{port}"


def spread(ring: KetamaRing, keys: list[str]) -> float:
    """The largest deviation of a node's share of ``keys`` from an even share."""
    homes = Counter(next(ring.walk(key)) for key in keys)
    even = len(keys) / len(ring.nodes)
    return max(abs(homes[node] - even) / even for node in ring.nodes)


def balanced_ports(count: int = NODES, given: tuple[int, ...] = ()) -> list[int]:
    """Free ports that, with ``given``, make a ketama ring spreading KEYS
    within 20% of even.

    Ketama's balance (160 points per node) depends on the node names: about
    one set of three random ports in 80 puts a node more than 20% off with
    these keys (tests/client/test_ring.py measures that over many rings). The
    ports are drawn again then, so this module checks the servers against a
    ring the issue's bound holds for."""
    for _ in range(PORT_DRAWS):
        ports = sorted({free_port() for _ in range(count)} - set(given))
        ring = KetamaRing({node_label(p): 1 for p in [*given, *ports]})
        if len(ports) == count and spread(ring, KEYS) <= 0.2:
            return ports
    raise AssertionError(f"no balanced ring in {PORT_DRAWS} draws of ports")


class Cluster:
    """The module's nodes, with a way to kill, stop, restart and read each one."""

    def __init__(self) -> None:
        self.nodes = [ServerProcess("--port", str(port), "--max-size", "100000") for port in balanced_ports()]
        for node in self.nodes:
            node.wait_healthy()

    @property
    def hosts(self) -> list[str]:
        return [node_label(node.port) for node in self.nodes]

    def node(self, url: str) -> ServerProcess:
        return next(node for node in self.nodes if node.url == url)

    def kill(self, node: ServerProcess) -> None:
        """SIGKILL of the master, and of its worker (nothing left to answer)."""
        workers = node.workers()
        os.kill(node.process.pid, signal.SIGKILL)
        for pid in workers:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        node.process.wait(timeout=10)

    def signal(self, node: ServerProcess, signum: int) -> None:
        for pid in [node.process.pid, *node.workers()]:
            os.kill(pid, signum)

    def restart(self, node: ServerProcess) -> ServerProcess:
        """The same port again, empty."""
        node.stop()
        fresh = ServerProcess("--port", str(node.port), "--max-size", "100000")
        fresh.wait_healthy()
        self.nodes[self.nodes.index(node)] = fresh
        return fresh

    def restore(self) -> None:
        for node in list(self.nodes):
            if node.process.poll() is not None:
                self.restart(node)

    def clear(self) -> None:
        for node in self.nodes:
            assert node.request("DELETE", "/cache?confirm=true")[0] == 200

    def contents(self, node: ServerProcess, keys: list[str]) -> dict[str, Any]:
        """What ``node`` itself holds of ``keys``."""
        direct = SyncCacheGridClient([node_label(node.port)])
        found: dict[str, Any] = {}
        for start in range(0, len(keys), CHUNK):
            found.update(direct.get_multi(keys[start : start + CHUNK]))
        direct.close()
        return found

    def stop(self) -> None:
        """The module's fixture is done with the nodes: killed at once."""
        for node in self.nodes:
            node.kill()


@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    nodes = Cluster()
    try:
        yield nodes
    finally:
        nodes.stop()


@pytest.fixture
def nodes(cluster: Cluster) -> Iterator[Cluster]:
    """The cluster, empty, and whole again after the test."""
    cluster.restore()
    cluster.clear()
    try:
        yield cluster
    finally:
        for node in cluster.nodes:  # a stopped node must never outlive its test
            if node.process.poll() is None:
                cluster.signal(node, signal.SIGCONT)
        cluster.restore()


def write_all(client: SyncCacheGridClient, keys: list[str] = KEYS, ttl: float | None = None) -> None:
    for start in range(0, len(keys), CHUNK):
        assert client.set_multi({key: {"key": key} for key in keys[start : start + CHUNK]}, ttl=ttl) == len(
            keys[start : start + CHUNK]
        )


# -- placement and replicas ------------------------------------------------------------


@pytest.mark.parametrize("replicas", [1, 2])
def test_every_key_is_on_exactly_r_nodes_spread_evenly(nodes: Cluster, replicas: int) -> None:
    client = SyncCacheGridClient(nodes.hosts, replicas=replicas)
    for key in KEYS[:300]:  # one by one, and the rest in batches
        assert client.set(key, {"key": key})
    write_all(client, KEYS[300:])
    holders: dict[str, list[str]] = {key: [] for key in KEYS}
    for node in nodes.nodes:
        for key, value in nodes.contents(node, KEYS).items():
            assert value == {"key": key}
            holders[key].append(node.url)
    for key in KEYS:
        assert sorted(holders[key]) == sorted(client.node_for(key)), key
    copies = Counter(url for urls in holders.values() for url in urls)
    even = len(KEYS) * replicas / NODES
    assert all(abs(copies[node.url] - even) <= 0.2 * even for node in nodes.nodes), copies


def test_a_killed_node_with_one_replica_loses_only_its_own_keys(nodes: Cluster) -> None:
    client = SyncCacheGridClient(nodes.hosts, timeout=2.0, cooldown=60.0)
    write_all(client)
    home = {key: client.node_for(key)[0] for key in KEYS}
    victim = nodes.nodes[0]
    nodes.kill(victim)
    lost = [key for key in KEYS if home[key] == victim.url]
    kept = [key for key in KEYS if home[key] != victim.url]
    assert lost and kept
    assert all(client.get(key) == {"key": key} for key in kept)
    assert all(client.get(key, "missing") == "missing" for key in lost)  # misses, not errors
    # Meanwhile its keys go to the next node of the ring.
    assert client.set(lost[0], "moved") and client.get(lost[0]) == "moved"
    assert client.node_for(lost[0])[0] != victim.url


def test_with_two_replicas_a_killed_and_restarted_node_costs_no_miss(nodes: Cluster) -> None:
    client = SyncCacheGridClient(nodes.hosts, replicas=2, timeout=2.0, cooldown=1.0)
    write_all(client, ttl=600)
    victim = nodes.nodes[1]
    nodes.kill(victim)
    failures = misses = 0
    for key in KEYS:
        try:
            misses += client.get(key, "missing") != {"key": key}
        except Exception:
            failures += 1
    assert (failures, misses) == (0, 0)

    fresh = nodes.restart(victim)  # empty
    assert fresh.request("GET", "/stats")[0] == 200 and nodes.contents(fresh, KEYS) == {}
    time.sleep(1.2)  # past the client's cool-down of the node
    assert all(client.get(key, "missing") == {"key": key} for key in KEYS)
    # Read repair refilled it: every key it is the first replica of, with its TTL.
    primaries = [key for key in KEYS if client.node_for(key)[0] == fresh.url]
    assert primaries
    assert set(nodes.contents(fresh, primaries)) == set(primaries)
    status, headers, _ = fresh.request("GET", item_path(primaries[0]))
    assert status == 200 and 500 < float(headers["x-cache-ttl"]) <= 600


def test_read_repair_never_overwrites_a_value_written_meanwhile(nodes: Cluster) -> None:
    client = SyncCacheGridClient(nodes.hosts, replicas=2)
    node = nodes.nodes[0]
    node.request("PUT", item_path("raced"), body="newer")
    repair = copy_call("raced", Answer(200, b'"older"', {"X-Cache-TTL": "30.000"}), overwrite=False)
    assert repair is not None
    assert client._send(node.url, repair).status == 412
    assert node.request("GET", item_path("raced"))[2] == b'"newer"'


def test_read_repair_keeps_a_binary_value_binary(nodes: Cluster) -> None:
    client = SyncCacheGridClient(nodes.hosts, replicas=2)
    first, second = client.node_for("binary:repaired")
    value = bytes(range(256))
    headers = {"Content-Type": "application/octet-stream"}
    nodes.node(second).request("PUT", item_path("binary:repaired") + "?ttl=600", raw=value, headers=headers)
    assert client.get("binary:repaired") == value  # a miss on the first replica, a hit on the second
    status, headers, body = nodes.node(first).request("GET", item_path("binary:repaired"))
    assert (status, body, headers["x-cache-type"]) == (200, value, "binary")
    assert 500 < float(headers["x-cache-ttl"]) <= 600


def test_a_hung_node_costs_only_the_first_timeouts(nodes: Cluster) -> None:
    client = SyncCacheGridClient(nodes.hosts, replicas=2, timeout=1.0, cooldown=3.0)
    keys = KEYS[:300]
    write_all(client, keys)
    hung = nodes.nodes[2]
    nodes.signal(hung, signal.SIGSTOP)  # connections are accepted, nothing is answered
    try:
        started = time.monotonic()
        assert all(client.get(key) == {"key": key} for key in keys)
        assert time.monotonic() - started < 10.0
    finally:
        nodes.signal(hung, signal.SIGCONT)
    assert hung.request("GET", "/health")[0] == 200
    time.sleep(3.2)  # past the cool-down
    before = json_stats(hung)["hits"]
    mine = [key for key in keys if client.node_for(key)[0] == hung.url]
    assert mine and all(client.get(key) == {"key": key} for key in mine)
    assert json_stats(hung)["hits"] - before == len(mine)  # used again


def json_stats(node: ServerProcess) -> dict[str, Any]:
    import json

    return json.loads(node.request("GET", "/stats")[2])


def test_a_fourth_node_takes_about_a_quarter_of_the_keys(nodes: Cluster) -> None:
    client = SyncCacheGridClient(nodes.hosts)
    write_all(client)
    # A balanced fourth port (see balanced_ports): what is checked for real is
    # that the keys that miss are exactly those the ring gives the new node.
    port = balanced_ports(1, tuple(node.port for node in nodes.nodes))[0]
    fourth = ServerProcess("--port", str(port), "--max-size", "100000")
    try:
        fourth.wait_healthy()
        bigger = SyncCacheGridClient([*nodes.hosts, node_label(fourth.port)])
        found = {}
        for start in range(0, len(KEYS), CHUNK):
            found.update(bigger.get_multi(KEYS[start : start + CHUNK]))
        moved = [key for key in KEYS if key not in found]
        # The misses are the keys the ring now gives the new node, and only those.
        assert moved == [key for key in KEYS if bigger.node_for(key)[0] == fourth.url]
        assert 0 < len(moved) <= (0.25 + 0.05) * len(KEYS)
    finally:
        fourth.stop()


# -- batches, keys, stats, clear across nodes ----------------------------------------------


def run_with(kind: str, client: Any, name: str, *args: Any) -> Any:
    if kind == "sync":
        return getattr(client, name)(*args)
    return asyncio.run(getattr(client, name)(*args))


def counting(client: Any) -> list[str]:
    """Record the host of every request ``client`` sends (the requests still go)."""
    contacted: list[str] = []
    send = client._send

    def recorded(host: str, call: Any) -> Any:
        contacted.append(host)
        return send(host, call)

    client._send = recorded
    return contacted


@pytest.mark.parametrize("kind", ["sync", "async"])
def test_batches_across_nodes_equal_one_node(
    nodes: Cluster, kind: str, start_server: Callable[..., ServerProcess]
) -> None:
    single = start_server("--max-size", "100000")
    make: Callable[..., Any] = SyncCacheGridClient if kind == "sync" else CacheGridClient
    alone, spread_out = make([node_label(single.port)]), make(nodes.hosts)
    contacted = counting(spread_out)
    items = {key: {"n": number} for number, key in enumerate(KEYS[:600])}
    asked = KEYS[:300] + ["absent:1", "absent:2"] + KEYS[550:650]
    for name, args in (
        ("set_multi", (items, 120)),
        ("get_multi", (asked,)),
        ("delete_multi", (KEYS[500:700],)),
        ("get_multi", (KEYS[400:800],)),
    ):
        contacted.clear()
        assert run_with(kind, spread_out, name, *args) == run_with(kind, alone, name, *args), name
        assert sorted(contacted) == sorted(set(contacted)) and len(contacted) == NODES, (name, contacted)


@pytest.mark.parametrize("replicas", [1, 2])
def test_scan_walks_every_node_with_one_cursor(nodes: Cluster, replicas: int) -> None:
    client = SyncCacheGridClient(nodes.hosts, replicas=replicas)
    keys = KEYS[:700]
    write_all(client, keys)
    page = client.scan("cluster:", limit=90)
    assert page["count"] == len(page["keys"]) <= 90 and isinstance(page["cursor"], str)
    walked = list(client.iter_keys("cluster:", page_size=100))
    assert sorted(walked) == sorted(keys)  # every key once
    assert sorted(client.keys("cluster:", limit=None)) == sorted(keys)  # the list, once each too
    some = client.keys("cluster:", limit=150)
    assert len(some) == len(set(some)) == 150 and set(some) <= set(keys)
    other = SyncCacheGridClient(nodes.hosts[:2])
    with pytest.raises(Exception) as raised:
        other.scan(cursor=page["cursor"])
    assert "cursor" in str(raised.value)


def test_stats_sum_the_nodes_and_clear_clears_all(nodes: Cluster) -> None:
    client = SyncCacheGridClient(nodes.hosts)
    write_all(client, KEYS[:900])
    stats = client.stats()
    per_node = [json_stats(node) for node in nodes.nodes]
    assert stats["current_size"] == sum(node["current_size"] for node in per_node) == 900
    assert set(stats["nodes"]) == {node.url for node in nodes.nodes} and stats["nodes_up"] == NODES
    nodes.kill(nodes.nodes[0])
    degraded = client.stats()
    assert degraded["nodes_down"] == 1 and degraded["nodes"][nodes.nodes[0].url]["down"] is True
    nodes.restore()
    fresh = SyncCacheGridClient(nodes.hosts)
    assert fresh.clear() == 900 - per_node[0]["current_size"]
    assert all(json_stats(node)["current_size"] == 0 for node in nodes.nodes)


def test_counters_with_replicas_follow_the_primary(nodes: Cluster) -> None:
    client = SyncCacheGridClient(nodes.hosts, replicas=2)
    assert [client.incr("hits") for _ in range(3)] == [1, 2, 3]
    holders = [nodes.node(url) for url in client.node_for("hits")]
    assert [node.request("GET", item_path("hits"))[2] for node in holders] == [b"3", b"3"]
    assert math.isclose(client.decr("hits", 2), 1)
