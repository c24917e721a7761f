"""What the clients do for a user with a limited token, against real
servers with an ACL file (docs/acl.md): read repair by a read-only client
is skipped quietly, and ``cachegrid loadtest --prefix`` runs inside a
read+write token's prefix without the metrics permission."""

from __future__ import annotations

import asyncio
import contextlib
import json
import subprocess
from collections.abc import Iterator

import pytest

from cachegrid.client import CacheGridClient, SyncCacheGridClient
from cachegrid.client.protocol import item_path
from cachegrid.testing import CLI, ServerProcess, running
from tests.integration.test_acl import TOKENS, acl_text, auth

pytestmark = pytest.mark.process


@pytest.fixture(scope="module")
def nodes(tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[ServerProcess]]:
    path = tmp_path_factory.mktemp("acl") / "acl.toml"
    path.write_text(acl_text(TOKENS))
    with contextlib.ExitStack() as stack:
        yield [stack.enter_context(running("--acl-file", str(path), graceful=False)) for _ in range(2)]


def denials(node: ServerProcess, name: str) -> float:
    status, _, body = node.request("GET", "/metrics", headers=auth("scraper"))
    assert status == 200
    for line in body.decode().splitlines():
        if line.startswith(f'cachegrid_acl_denials_total{{token="{name}"}}'):
            return float(line.split()[-1])
    return 0.0


def test_read_repair_by_a_read_only_client_is_skipped_quietly(nodes: list[ServerProcess]) -> None:
    """Both nodes hold each key (replicas=2); a key removed from the node
    asked first is found on the other, and a read-only client gets the
    value without an error: its repair is refused (403) once, then not
    tried again, so the node that misses is neither written nor asked over
    and over; a read+write client repairs it."""
    hosts = [node.url for node in nodes]
    keys = [f"app:repair-{number}" for number in range(6)]
    with SyncCacheGridClient(hosts, auth_token=TOKENS["rw"][0], replicas=2) as writer:
        for key in keys:
            writer.set(key, {"v": key})
    for key in keys:  # gone from both nodes' first replica
        first = writer.router.placement(key)[0]
        node = next(node for node in nodes if node.url == first)
        assert node.request("DELETE", item_path(key), headers=auth("admin"))[0] == 200
    before = sum(denials(node, "ro") for node in nodes)
    with SyncCacheGridClient(hosts, auth_token=TOKENS["ro"][0], replicas=2, max_retries=0) as reader:
        for key in keys:
            assert reader.get(key) == {"v": key}
            assert reader.get(key) == {"v": key}  # still answered, still missing on the first node
    assert sum(denials(node, "ro") for node in nodes) == before + 1  # one refused repair, then none
    for key in keys:
        first = writer.router.placement(key)[0]
        node = next(node for node in nodes if node.url == first)
        assert node.request("GET", item_path(key), headers=auth("admin"))[0] == 404

    async def read_async() -> None:
        async with CacheGridClient(hosts, auth_token=TOKENS["ro"][0], replicas=2, max_retries=0) as reader:
            for key in keys:
                assert await reader.get(key) == {"v": key}

    asyncio.run(read_async())
    assert sum(denials(node, "ro") for node in nodes) == before + 2  # the async client's one refusal
    with SyncCacheGridClient(hosts, auth_token=TOKENS["rw"][0], replicas=2) as repairer:
        assert repairer.get(keys[0]) == {"v": keys[0]}
    first = writer.router.placement(keys[0])[0]
    node = next(node for node in nodes if node.url == first)
    assert json.loads(node.request("GET", item_path(keys[0]), headers=auth("admin"))[2]) == {"v": keys[0]}


def loadtest(node: ServerProcess, name: str, *options: str) -> subprocess.CompletedProcess[str]:
    command = [CLI, "--url", node.url, "--token", TOKENS[name][0], "loadtest", "--processes", "1", "--json"]
    return subprocess.run([*command, *options], capture_output=True, text=True, timeout=120)


def test_loadtest_runs_inside_a_read_write_tokens_prefix(nodes: list[ServerProcess]) -> None:
    """``rw`` may read and write ``app:`` and nothing else, and may not read
    /stats: the load test runs in its prefix, says the room was not checked,
    and leaves the server as it found it."""
    node = nodes[0]
    assert node.request("PUT", "/cache/other:kept", raw=b"1", headers=auth("admin"))[0] in (200, 201)
    keys_before = json.loads(node.request("GET", "/admin/keys?limit=1000", headers=auth("admin"))[2])["keys"]
    done = loadtest(node, "rw", "--prefix", "app:lt:", "-n", "3000", "-c", "4", "--keyspace", "50")
    assert done.returncode == 0, done.stderr
    document = json.loads(done.stdout)
    assert document["errors"] == 0 and document["requests"] == 3000
    assert document["prefix"] == "app:lt:" and document["keyspace"] == 50 and document["keys_deleted"] == 50
    assert document["room_checked"] is False and document["evictions_during_run"] is None
    keys_after = json.loads(node.request("GET", "/admin/keys?limit=1000", headers=auth("admin"))[2])["keys"]
    assert sorted(keys_after) == sorted(keys_before)
    plain = subprocess.run(
        [CLI, "--url", node.url, "--token", TOKENS["rw"][0], "loadtest", "--processes", "1", "--prefix", "app:p:"]
        + ["-n", "500", "-c", "2", "--keyspace", "20"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert plain.returncode == 0, plain.stderr
    assert "not checked: the token may not read /stats" in plain.stdout


def test_loadtest_outside_the_prefix_or_without_write_is_refused_clearly(nodes: list[ServerProcess]) -> None:
    node = nodes[0]
    outside = loadtest(node, "rw", "--prefix", "lt:", "-n", "100", "-c", "1", "--keyspace", "10")
    assert outside.returncode != 0 and "outside its prefixes" in outside.stderr
    assert "nothing was written: the token may not write under 'lt:'" in outside.stderr
    read_only = loadtest(node, "ro", "--prefix", "app:ro:", "-n", "100", "-c", "1", "--keyspace", "10")
    assert read_only.returncode != 0 and "lacks the 'write' permission" in read_only.stderr
    listing = json.loads(node.request("GET", "/admin/keys?pattern=lt:&limit=10", headers=auth("admin"))[2])
    assert listing["keys"] == []
