"""Leases, locks and stale marks across a cluster of two real nodes: a key's
lease lives on its first node, the value of get_or_set reaches every
replica, and mark_stale reaches every replica too."""

from __future__ import annotations

import threading
import time
from typing import Any
from urllib.parse import quote

from cachegrid.client import SyncCacheGridClient


def node_of(servers: list[Any], url: str) -> Any:
    return next(server for server in servers if server.url == url)


def test_leases_live_on_the_first_node_and_values_reach_every_replica(start_server: Any) -> None:
    servers = [start_server(), start_server()]
    client = SyncCacheGridClient([f"127.0.0.1:{server.port}" for server in servers], replicas=2)
    key = "cluster-lease:report"
    first, second = (node_of(servers, url) for url in client.node_for(key))
    path = f"/cache/{quote(key, safe='')}"

    token = client.acquire_lock(key, 30)
    assert token is not None
    assert b'"held":true' in first.request("GET", path + "/lease")[2]
    assert b'"held":false' in second.request("GET", path + "/lease")[2]
    assert client.release_lock(key, token) is True

    calls: list[int] = []

    def compute() -> dict[str, int]:
        calls.append(1)
        time.sleep(0.2)
        return {"total": 7}

    answers: list[Any] = []
    threads = [
        threading.Thread(target=lambda: answers.append(client.get_or_set(key, compute, ttl=60))) for _ in range(10)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert len(calls) == 1 and answers == [{"total": 7}] * 10
    for node in (first, second):  # stored on both replicas, the second without the token
        status, _, body = node.request("GET", path)
        assert status == 200 and body == b'{"total":7}'

    assert client.mark_stale(key) is True
    for node in (first, second):
        status, headers, _ = node.request("GET", path)
        assert status == 200 and headers["x-cache-stale"] == "true"
