"""The CLI against a cluster of three real nodes, one of them killed: every
command names the node that did not answer in a few clean words (never the
client library's own text), lists or counts what the live nodes hold, and
exits with the code of what happened: PARTIAL when a result lacks a node's
share, UNAVAILABLE when a key's own node is down (not NOT_FOUND), UNHEALTHY
for health and cluster status."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from click.testing import Result

from cachegrid.cli.common import node_name
from cachegrid.cli.status import ExitCode
from cachegrid.client import SyncCacheGridClient
from cachegrid.testing import ServerProcess

from .conftest import Invoke, runner_for

KEYS = [f"user:{number}" for number in range(30)]
RAW_TEXT = ("NotSent", "HTTPConnectionPool", "Max retries", "NewConnectionError", "Traceback")


@dataclass
class Cluster:
    invoke: Invoke
    live: list[str]  # base URLs
    dead: str
    on_dead: list[str]  # keys whose node is the dead one
    on_live: list[str]

    @property
    def dead_name(self) -> str:
        return node_name(self.dead)


@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    servers = [ServerProcess() for _ in range(3)]
    try:
        for server in servers:
            server.wait_healthy()
        urls = [server.url for server in servers]
        invoke = runner_for(",".join(urls))
        for key in KEYS:
            assert invoke("set", key, "1", "--tags", "team").exit_code == 0
        ring = SyncCacheGridClient(urls)
        dead = servers[1]
        on_dead = [key for key in KEYS if ring.node_for(key) == [dead.url]]
        assert on_dead and len(on_dead) < len(KEYS)
        dead.kill()
        yield Cluster(
            invoke, [servers[0].url, servers[2].url], dead.url, on_dead, [k for k in KEYS if k not in on_dead]
        )
    finally:
        for server in servers:
            server.kill()


def clean(result: Result) -> str:
    """stderr, checked for the client library's raw words."""
    for raw in RAW_TEXT:
        assert raw not in result.stdout + result.stderr, result.stderr
    return result.stderr


def names_the_dead(cluster: Cluster, result: Result) -> None:
    text = " ".join(clean(result).split())  # rich may wrap a long line
    assert f"{cluster.dead_name} did not answer (connection refused)" in text, text


def test_health_checks_and_names_every_node(cluster: Cluster) -> None:
    result = cluster.invoke("health")
    assert result.exit_code == ExitCode.UNHEALTHY
    names_the_dead(cluster, result)
    lines = dict(line.split(None, 1) for line in result.stdout.splitlines())
    assert lines[cluster.dead_name] == "down: connection refused"
    assert all(lines[node_name(url)] == "healthy" for url in cluster.live)
    document = json.loads(cluster.invoke("health", "--json").stdout)
    assert document["status"] == "unhealthy"
    assert document["nodes"][cluster.dead_name] == {"status": "down", "error": "connection refused"}
    assert all(document["nodes"][node_name(url)]["status"] == "healthy" for url in cluster.live)


def test_get_of_a_key_whose_node_is_down_is_unavailable_not_a_miss(cluster: Cluster) -> None:
    key = cluster.on_dead[0]
    for command in (["get", key], ["ttl", key], ["delete", key]):
        result = cluster.invoke(*command)
        assert result.exit_code == ExitCode.UNAVAILABLE, (command, result.stderr)
        names_the_dead(cluster, result)
        assert f"no answer for {key!r}: its node" in " ".join(result.stderr.split())
    assert cluster.invoke("get", cluster.on_live[0]).stdout.strip() == "1"
    missing = cluster.invoke("get", "no-such-key-anywhere")
    if missing.exit_code != ExitCode.UNAVAILABLE:  # unless its node is the dead one
        assert missing.exit_code == ExitCode.NOT_FOUND and "no key" in missing.stderr


def test_keys_lists_the_live_nodes_and_names_the_dead_one(cluster: Cluster) -> None:
    result = cluster.invoke("keys", "--pattern", "user:")
    assert result.exit_code == ExitCode.PARTIAL
    assert sorted(result.stdout.split()) == sorted(cluster.on_live)
    names_the_dead(cluster, result)
    assert "partial result: listed the keys on" in result.stderr
    as_json = cluster.invoke("--json", "keys", "--pattern", "user:")
    assert as_json.exit_code == ExitCode.PARTIAL and sorted(json.loads(as_json.stdout)) == sorted(cluster.on_live)


def test_batch_get_tells_unknown_keys_from_missing_ones(cluster: Cluster) -> None:
    wanted = [cluster.on_live[0], cluster.on_dead[0]]
    result = cluster.invoke("--json", "batch", "get", *wanted)
    assert result.exit_code == ExitCode.PARTIAL
    document = json.loads(result.stdout)
    assert list(document["items"]) == [cluster.on_live[0]]
    assert document["unknown"] == [cluster.on_dead[0]] and document["missing"] == []
    names_the_dead(cluster, result)


def test_stats_and_cluster_status_name_the_dead_node_in_clean_words(cluster: Cluster) -> None:
    stats = cluster.invoke("stats")
    assert stats.exit_code == ExitCode.PARTIAL
    names_the_dead(cluster, stats)
    document = json.loads(cluster.invoke("--json", "stats").stdout)
    assert document["nodes"][cluster.dead]["error"] == "connection refused"
    status = cluster.invoke("cluster", "status", "--sample", "0")
    assert status.exit_code == ExitCode.UNHEALTHY
    names_the_dead(cluster, status)
    assert f"{cluster.dead_name}  down  connection refused" in status.stdout


def test_cluster_wide_writes_count_the_live_nodes_and_exit_partial(cluster: Cluster) -> None:
    tags = cluster.invoke("--json", "invalidate-tag", "nobody-uses-this-tag")
    assert tags.exit_code == ExitCode.PARTIAL
    assert json.loads(tags.stdout)["nodes_down"] == {cluster.dead_name: "connection refused"}
    names_the_dead(cluster, tags)
    pattern = cluster.invoke("delete", "--pattern", "nothing-matches-this:")
    assert pattern.exit_code == ExitCode.PARTIAL
    names_the_dead(cluster, pattern)
    assert "deleted 0 keys matching 'nothing-matches-this:'" in pattern.stderr


def test_clear_clears_the_live_nodes_and_exits_partial(cluster: Cluster) -> None:
    """Last: it empties the live nodes."""
    result = cluster.invoke("--json", "clear", "--yes")
    assert result.exit_code == ExitCode.PARTIAL
    assert json.loads(result.stdout)["cleared"] == len(cluster.on_live)
    names_the_dead(cluster, result)
    assert cluster.invoke("keys").stdout == ""


def test_every_node_down_reads_as_no_server_answered(cluster: Cluster) -> None:
    invoke = runner_for(cluster.dead)
    for command in (["health"], ["keys"], ["get", "k"], ["stats"]):
        result = invoke(*command)
        assert result.exit_code == ExitCode.UNAVAILABLE
        assert "no CacheGrid server answered at" in clean(result)
