"""``cachegrid cluster status`` against three real nodes (one of them down),
``stats --watch`` with a row per node, a cluster given as CACHEGRID_URL=a,b,c
for every command, and ``cluster nginx-config``'s output and usage errors."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path

from cachegrid.cli.status import ExitCode
from cachegrid.client import SyncCacheGridClient
from cachegrid.client.protocol import item_path
from cachegrid.testing import ServerProcess as Server
from cachegrid.testing import free_port

from .conftest import runner_for


def test_cluster_status_shows_each_node_and_the_one_down(start_server: Callable[..., Server]) -> None:
    up = [start_server(), start_server()]
    dead = f"http://127.0.0.1:{free_port()}"
    urls = ",".join([up[0].url, up[1].url, dead])
    invoke = runner_for(urls)
    assert invoke("set", "a", "1").exit_code == 0
    for number in range(40):
        assert invoke("set", f"k{number}", str(number)).exit_code == 0
    result = invoke("--json", "cluster", "status", "--sample", "0.3")
    assert result.exit_code == ExitCode.UNHEALTHY, result.stderr
    document = json.loads(result.stdout)
    rows = {row["node"]: row for row in document["nodes"]}
    assert rows[dead]["up"] is False and "refused" in rows[dead]["error"].lower()
    items = [json.loads(node.request("GET", "/stats")[2])["current_size"] for node in up]
    assert [rows[node.url]["items"] for node in up] == items and sum(items) == 41
    assert all(rows[node.url]["up"] and rows[node.url]["ops_per_second"] is not None for node in up)
    assert document["total"]["current_size"] == 41 and document["total"]["nodes_down"] == 1

    plain = invoke("cluster", "status", "--sample", "0")
    lines = plain.stdout.splitlines()
    assert plain.exit_code == ExitCode.UNHEALTHY
    assert any(line.startswith(dead) and " down " in line for line in lines)
    assert lines[-1].startswith("total  2 up 1 down")


def test_every_command_uses_the_cluster(start_server: Callable[..., Server]) -> None:
    nodes = [start_server() for _ in range(3)]
    invoke = runner_for(",".join(node.url for node in nodes))
    for number in range(30):
        assert invoke("set", f"user:{number}", json.dumps({"n": number})).exit_code == 0
    client = SyncCacheGridClient([node.url for node in nodes])
    for number in range(30):  # each key on its ring node only
        home = client.node_for(f"user:{number}")[0]
        found = [node.url for node in nodes if node.request("GET", item_path(f"user:{number}"))[0] == 200]
        assert found == [home]
    assert json.loads(invoke("--json", "get", "user:7").stdout) == {"n": 7}
    watch = invoke("stats", "--watch", "--iterations", "2", "--interval", "0.2")
    assert watch.exit_code == 0 and watch.stdout.splitlines()[-1].endswith("nodes_up=3/3")
    stats = json.loads(invoke("--json", "stats").stdout)
    assert stats["current_size"] == 30 and len(stats["nodes"]) == 3


def test_nginx_config_for_the_given_nodes() -> None:
    invoke = runner_for("http://127.0.0.1:1")
    result = invoke(
        "cluster", "nginx-config", "--node", "10.0.0.1:8001", "--node", "10.0.0.2:8001=2", "--listen", "0.0.0.0:80"
    )
    assert result.exit_code == 0
    text = result.stdout
    assert "hash $cachegrid_key consistent;" in text and "listen 0.0.0.0:80;" in text
    assert "server 10.0.0.1:8001 max_fails=1" in text and "server 10.0.0.2:8001 weight=2" in text
    assert "proxy_next_upstream error timeout" in text and "keepalive 32;" in text
    # Without --node: the --url nodes.
    from_urls = runner_for("http://10.0.0.5:7000,10.0.0.6:7000")("cluster", "nginx-config")
    assert "server 10.0.0.5:7000 " in from_urls.stdout and "server 10.0.0.6:7000 " in from_urls.stdout


def test_nginx_config_refuses_bad_nodes() -> None:
    invoke = runner_for("http://127.0.0.1:1")
    for arguments in (
        ["--node", "no-port"],
        ["--node", "h:70000"],
        ["--node", "h:1", "--node", "h:1"],
        ["--node", "h:1=0"],
        ["--node", "h:1", "--fail-timeout", "0"],
    ):
        result = invoke("cluster", "nginx-config", *arguments)
        assert result.exit_code == ExitCode.USAGE, arguments
        assert result.stdout == "" and "error:" in result.stderr


def test_nginx_config_with_tls_and_for_one_server(tmp_path: Path) -> None:
    """--tls-cert/--tls-key: a TLS listener (1.2 and 1.3, a shared session
    cache, long client keep-alive) on 8443 unless --listen says otherwise;
    the nodes still in HTTP/1.1 over kept-alive connections. The top-level
    nginx-config is one server's front: no 421, /events unbuffered."""
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert.write_text("cert")
    key.write_text("key")
    invoke = runner_for("http://10.0.0.9:7000")
    tls = ["--tls-cert", str(cert), "--tls-key", str(key)]
    cluster = invoke("cluster", "nginx-config", "--node", "10.0.0.1:8001", "--node", "10.0.0.2:8001", *tls).stdout
    single = invoke("nginx-config", *tls).stdout
    for text in (cluster, single):
        assert "listen 127.0.0.1:8443 ssl;" in text
        assert f"ssl_certificate {cert.resolve()};" in text and f"ssl_certificate_key {key.resolve()};" in text
        assert "ssl_protocols TLSv1.2 TLSv1.3;" in text and "ssl_session_cache shared:" in text
        assert "ECDHE-RSA-AES128-GCM-SHA256" in text and "CBC" not in text and "ssl_session_tickets off;" in text
        assert "proxy_http_version 1.1;" in text and 'proxy_set_header Connection "";' in text
    assert "server 10.0.0.9:7000;" in single and "421" not in single and "hash " not in single
    assert "location = /events" in single and "proxy_buffering off;" in single
    plain = invoke("nginx-config", "--node", "10.0.0.3:7001", "--listen", "0.0.0.0:80").stdout
    assert "listen 0.0.0.0:80;" in plain and "ssl" not in plain and "server 10.0.0.3:7001;" in plain
    assert "listen 127.0.0.1:8080;" in invoke("cluster", "nginx-config").stdout  # the default as before
    for command in (["nginx-config"], ["cluster", "nginx-config"]):
        for arguments in (
            ["--tls-cert", str(cert)],
            ["--tls-key", str(key)],
            ["--tls-cert", str(tmp_path / "none.pem"), "--tls-key", str(key)],
        ):
            result = invoke(*command, *arguments)
            assert result.exit_code == ExitCode.USAGE and result.stdout == "", arguments
            assert "--tls-" in result.stderr
    assert invoke("nginx-config", "--node", "h:1=2").exit_code == ExitCode.USAGE


def test_bad_cluster_options_are_usage_errors() -> None:
    invoke = runner_for("http://127.0.0.1:1,http://127.0.0.1:2")
    for arguments in (["--replicas", "0"], ["--ring", "md5"]):
        result = invoke(*arguments, "get", "k")
        assert result.exit_code == ExitCode.USAGE and arguments[0] in result.stderr


def test_nodes_are_told_apart_on_a_narrow_terminal(start_server: Callable[..., Server]) -> None:
    """Each node's host:port in full, at 80 and 110 columns, in cluster status
    and in stats --watch (the node column never shrinks: other columns wrap)."""
    up = [start_server(), start_server()]
    dead = f"http://127.0.0.1:{free_port()}"
    names = [f"127.0.0.1:{node.port}" for node in up] + [dead.removeprefix("http://")]
    for columns in ("80", "110"):
        invoke = runner_for(",".join([*(node.url for node in up), dead]), COLUMNS=columns, TTY_COMPATIBLE="1")
        for command in (["cluster", "status", "--sample", "0"], ["stats", "--watch", "--iterations", "1"]):
            result = invoke(*command)
            assert result.exit_code in (0, ExitCode.UNHEALTHY), result.stderr
            lines = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", result.stdout).splitlines()  # Live's cursor codes
            assert max(len(line.rstrip()) for line in lines) <= int(columns), result.stdout
            for name in names:  # whole, once, at the start of its row
                assert sum(f"│ {name} " in line for line in lines) == 1, (columns, command, result.stdout)
            assert "http://" not in result.stdout and "…" not in result.stdout
    watch = runner_for(",".join(node.url for node in up), COLUMNS="110", TTY_COMPATIBLE="1")
    assert "cachegrid cluster of 2 nodes" in watch("stats", "-w", "--iterations", "1").stdout
