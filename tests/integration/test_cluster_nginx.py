"""Three real nodes behind a real nginx (Debian's package) running the
configuration `cachegrid cluster nginx-config` prints, on loopback and
ephemeral ports, its pid, logs and temporary files in the test's directory.

Checked: the product description's single-key curl examples through nginx,
the batch and admin ones giving their documented 421; every key on the node
the client's ring="nginx" gives it (placements compared with nginx itself);
the same key always on the same node; with a node killed, requests for its
keys answered by another. Skipped, saying why, where nginx is not installed.
"""

from __future__ import annotations

import http.client
import json
import os
import shutil
import signal
import ssl
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from cachegrid.cli.main import app
from cachegrid.client import SyncCacheGridClient
from cachegrid.client.protocol import item_path
from cachegrid.cluster.nginx import NODE_HEADER
from cachegrid.testing import ServerProcess, free_port

NGINX = shutil.which("nginx") or ("/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None)
pytestmark = pytest.mark.skipif(NGINX is None, reason="nginx is not installed (apt-get install nginx)")

KEYS = [f"user:{number}" for number in range(300)] + ["hello", "session:abc", "a b/c?d", "ünï"]


class Front:
    """nginx in front of the nodes, as a non-daemon process: the cluster's
    configuration, or ``command`` (``cachegrid nginx-config``, options); with
    ``tls`` (the client's side) it is asked in https."""

    def __init__(
        self,
        nodes: list[ServerProcess],
        directory: Path,
        command: list[str] | None = None,
        tls: ssl.SSLContext | None = None,
    ) -> None:
        self.port = free_port()
        self.tls = tls
        self.hosts = [f"127.0.0.1:{node.port}" for node in nodes]
        arguments = [*(command or ["cluster", "nginx-config"]), "--listen", f"127.0.0.1:{self.port}"]
        arguments += ["--runtime-dir", str(directory)]
        for host in self.hosts:
            arguments += ["--node", host]
        result = CliRunner().invoke(app, arguments)
        assert result.exit_code == 0, result.output
        self.config = directory / "nginx.conf"
        self.config.write_text(result.stdout)
        self.log = (directory / "nginx.out").open("wb")
        self.process = subprocess.Popen(
            [NGINX, "-p", str(directory), "-c", str(self.config), "-g", "daemon off;"],
            stdout=self.log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            assert self.process.poll() is None, (directory / "nginx.out").read_text()
            try:
                if self.request("GET", "/health")[0] == 200:
                    return
            except OSError:
                time.sleep(0.1)
        raise AssertionError("nginx did not answer within 20 s")

    def request(self, method: str, path: str, body: Any = None) -> tuple[int, dict[str, str], bytes]:
        connection = (
            http.client.HTTPSConnection("127.0.0.1", self.port, timeout=10, context=self.tls)
            if self.tls
            else http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        )
        try:
            payload = None if body is None else json.dumps(body).encode()
            connection.request(
                method, path, body=payload, headers={"Content-Type": "application/json"} if payload else {}
            )
            response = connection.getresponse()
            return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
        finally:
            connection.close()

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGQUIT)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=10)
        self.log.close()


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[list[ServerProcess], Front]]:
    nodes = [ServerProcess() for _ in range(3)]
    front = None
    try:
        for node in nodes:
            node.wait_healthy()
        front = Front(nodes, tmp_path_factory.mktemp("nginx"))
        yield nodes, front
    finally:
        if front is not None:
            front.stop()
        for node in nodes:
            node.kill()


def holder(nodes: list[ServerProcess], key: str) -> list[str]:
    return [f"127.0.0.1:{node.port}" for node in nodes if node.request("GET", item_path(key))[0] == 200]


def test_the_single_key_examples_through_nginx(cluster: tuple[list[ServerProcess], Front]) -> None:
    nodes, front = cluster
    status, headers, _ = front.request("PUT", "/cache/hello", {"message": "Hello, World!"})
    assert status in (200, 201) and headers[NODE_HEADER.lower()]
    assert json.loads(front.request("GET", "/cache/hello")[2]) == {"message": "Hello, World!"}
    assert front.request("PUT", "/cache/user:123", {"name": "John Doe", "email": "john@example.com"})[0] in (200, 201)
    assert front.request("PUT", "/cache/session:abc?ttl=3600", {"user_id": 123})[0] in (200, 201)
    status, headers, body = front.request("GET", "/cache/session:abc/ttl")
    assert status == 200 and 3500 < json.loads(body)["ttl"] <= 3600
    assert json.loads(front.request("GET", "/cache/user:123")[2])["name"] == "John Doe"
    assert json.loads(front.request("POST", "/cache/visits/incr")[2])["value"] == 1
    assert json.loads(front.request("DELETE", "/cache/user:123")[2])["deleted"] is True
    assert front.request("GET", "/cache/user:123")[0] == 404
    for path in ("/stats", "/health"):
        status, headers, _ = front.request("GET", path)
        assert status == 200 and headers[NODE_HEADER.lower()] in [f"127.0.0.1:{n.port}" for n in nodes]
    status, headers, body = front.request("POST", "/test/load?num_operations=1000&operation_type=mixed")
    assert status == 200 and NODE_HEADER.lower() in headers


@pytest.mark.parametrize(
    ("method", "path", "body", "code"),
    [
        ("POST", "/cache/batch/set", {"items": {"a": 1, "b": 2}, "ttl": 3600}, "cross_node_batch"),
        ("POST", "/cache/batch/get", {"keys": ["a", "b"]}, "cross_node_batch"),
        ("DELETE", "/cache?confirm=true", None, "cross_node_clear"),
        ("GET", "/admin/keys?pattern=user:&limit=10", None, "cross_node_keys"),
        ("POST", "/tags/cat/invalidate", None, "cross_node_tags"),
        ("POST", "/tags/invalidate", {"tags": ["cat"]}, "cross_node_tags"),
        ("POST", "/admin/delete-pattern", {"pattern": "user:*"}, "cross_node_pattern"),
        ("GET", "/admin/delete-pattern/abc", None, "cross_node_pattern"),
    ],
)
def test_the_batch_and_admin_examples_are_refused_with_a_pointer(
    cluster: tuple[list[ServerProcess], Front], method: str, path: str, body: Any, code: str
) -> None:
    _, front = cluster
    status, headers, answer = front.request(method, path, body)
    document = json.loads(answer)
    assert status == 421 and headers["content-type"] == "application/json"
    assert document["error"] == code and "SyncCacheGridClient" in document["message"]
    # Only a batch can be replaced by requests of one key each.
    assert ("one request per key" in document["message"]) == (code == "cross_node_batch")


def test_nginx_and_the_nginx_ring_place_every_key_alike(cluster: tuple[list[ServerProcess], Front]) -> None:
    nodes, front = cluster
    client = SyncCacheGridClient(front.hosts, ring="nginx")
    for key in KEYS:
        status, headers, _ = front.request("PUT", item_path(key), {"key": key})
        assert status in (200, 201)
        assert headers[NODE_HEADER.lower()] == client.node_for(key)[0].removeprefix("http://"), key
        assert holder(nodes, key) == [headers[NODE_HEADER.lower()]], key
    for key in KEYS[:50]:  # the same key always lands on the same node
        nodes_seen = {front.request("GET", item_path(key))[1][NODE_HEADER.lower()] for _ in range(3)}
        assert nodes_seen == {client.node_for(key)[0].removeprefix("http://")}
    # And the client reads through its ring what nginx wrote.
    assert client.get_multi(KEYS) == {key: {"key": key} for key in KEYS}
    homes = {client.node_for(key)[0] for key in KEYS}
    assert len(homes) == 3


def test_with_a_node_killed_its_keys_are_served_by_another(cluster: tuple[list[ServerProcess], Front]) -> None:
    nodes, front = cluster
    client = SyncCacheGridClient(front.hosts, ring="nginx")
    victim = nodes[2]  # the last test of the module: the node stays dead
    mine = [key for key in KEYS if client.node_for(key)[0] == victim.url][:20]
    assert mine
    for pid in [victim.process.pid, *victim.workers()]:
        os.kill(pid, signal.SIGKILL)
    victim.process.wait(timeout=10)
    for key in mine:
        status, headers, _ = front.request("PUT", item_path(key), {"moved": key})
        assert status in (200, 201) and headers[NODE_HEADER.lower()].split(", ")[-1] != f"127.0.0.1:{victim.port}"
        status, _, body = front.request("GET", item_path(key))
        assert status == 200 and json.loads(body) == {"moved": key}
