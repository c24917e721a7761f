"""Scoped tokens on a real server (docs/acl.md, cachegrid/daemon/acl.py).

One server with an ACL file of four tokens: ``admin`` (everything),
``rw`` (read and write on ``app:``), ``ro`` (read on ``app:``) and
``scraper`` (metrics only). Every route and method of the OpenAPI document
is sent by each token and without one, and the answer must be what the
table ``EXPECTED`` says: a route the document gains without a row here
fails the test. Then: nothing outside a token's scope changed, the key
listing and ``/events`` show only its prefixes, and no token appears in
the log, an error body or ``/metrics``. The file is then changed, broken
and removed while the server runs.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from cachegrid.config import Settings
from cachegrid.daemon.openapi import build_document
from cachegrid.testing import CLI, ServerProcess, running

pytestmark = pytest.mark.process

TOKENS = {
    "admin": ("tok-admin-1f9e", None, ["read", "write", "admin", "metrics"]),
    "rw": ("tok-rw-77ab", ["app:"], ["read", "write"]),
    "ro": ("tok-ro-c0de", ["app:"], ["read"]),
    "scraper": ("tok-scraper-5e5e", None, ["metrics"]),
}
OPEN = "open"
# The permission each documented route and method needs; OPEN: none.
EXPECTED: dict[tuple[str, str], str] = {
    ("/cache", "delete"): "admin",
    ("/cache/{key}", "get"): "read",
    ("/cache/{key}", "head"): "read",
    ("/cache/{key}", "put"): "write",
    ("/cache/{key}", "delete"): "write",
    ("/cache/{key}/ttl", "get"): "read",
    ("/cache/{key}/ttl", "put"): "write",
    ("/cache/{key}/ttl", "delete"): "write",
    ("/cache/{key}/incr", "post"): "write",
    ("/cache/{key}/decr", "post"): "write",
    ("/cache/{key}/lease", "get"): "read",
    ("/cache/{key}/lease", "post"): "write",
    ("/cache/{key}/lease", "delete"): "write",
    ("/cache/{key}/stale", "post"): "write",
    ("/cache/batch/set", "post"): "write",
    ("/cache/batch/get", "post"): "read",
    ("/cache/batch/delete", "post"): "write",
    ("/stats", "get"): "metrics",
    ("/metrics", "get"): "metrics",
    ("/health", "get"): OPEN,
    ("/admin/keys", "get"): "read",
    ("/events", "get"): "read",
    ("/admin/snapshot", "get"): "admin",
    ("/admin/snapshot", "post"): "admin",
    ("/admin/delete-pattern", "post"): "admin",
    ("/admin/delete-pattern/{job_id}", "get"): "admin",
    ("/tags/invalidate", "post"): "admin",
    ("/tags/{tag}/invalidate", "post"): "admin",
    ("/test/load", "post"): "admin",
}
BODIES: dict[tuple[str, str], Any] = {
    ("/cache/{key}", "put"): 1,
    ("/cache/{key}/ttl", "put"): {"ttl": 600},
    ("/cache/batch/set", "post"): {"items": {"KEY": 1}},
    ("/cache/batch/get", "post"): {"keys": ["KEY"]},
    ("/cache/batch/delete", "post"): {"keys": ["KEY-gone"]},
    ("/admin/delete-pattern", "post"): {"pattern": "nothing-matches:*"},
    ("/tags/invalidate", "post"): {"tags": ["no-such-tag"]},
    ("/test/load", "post"): {"operations": 10},
}
INSIDE, OUTSIDE = "app:k", "other:k"


def digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def acl_text(tokens: dict[str, tuple[str, list[str] | None, list[str]]]) -> str:
    tables = []
    for name, (token, prefixes, permissions) in tokens.items():
        lines = ["[[tokens]]", f'name = "{name}"', f'sha256 = "{digest(token)}"']
        if prefixes is not None:
            lines.append(f"prefixes = {json.dumps(prefixes)}")
        lines.append(f"permissions = {json.dumps(permissions)}")
        tables.append("\n".join(lines))
    return "\n\n".join(tables) + "\n"


@pytest.fixture(scope="module")
def acl_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("acl") / "acl.toml"
    path.write_text(acl_text(TOKENS))
    return path


@pytest.fixture(scope="module")
def server(acl_path: Path) -> Iterator[ServerProcess]:
    with running("--acl-file", str(acl_path), graceful=False) as started:
        yield started


def auth(name: str | None) -> dict[str, str]:
    return {} if name is None else {"Authorization": f"Bearer {TOKENS[name][0]}"}


def send(server: ServerProcess, method: str, path: str, name: str | None, body: Any = None) -> tuple[int, bytes]:
    """One request; a stream (/events) is read only to its status."""
    headers = auth(name) | ({"Content-Type": "application/json"} if body is not None else {})
    connection = http.client.HTTPConnection(server.host, server.port, timeout=10)
    try:
        connection.request(method, path, body=None if body is None else json.dumps(body).encode(), headers=headers)
        response = connection.getresponse()
        if response.getheader("Content-Type", "").startswith("text/event-stream"):
            return response.status, b""
        return response.status, response.read()
    finally:
        connection.close()


def allowed(name: str, permission: str, key: str | None) -> bool:
    _, prefixes, permissions = TOKENS[name]
    return permission in permissions and (key is None or prefixes is None or key.startswith(tuple(prefixes)))


def cases() -> list[tuple[str, str, str, str | None]]:
    """(method, path, permission, key) for every documented operation, a key
    route twice: a key inside the limited tokens' prefix and one outside."""
    document = build_document(Settings(node_id="n", acl_file=None))
    found = []
    for template, operations in document["paths"].items():
        for method in operations:
            if method not in ("get", "head", "put", "post", "delete", "patch"):
                continue
            assert (template, method) in EXPECTED, f"{method.upper()} {template} has no ACL row"
            permission = EXPECTED[(template, method)]
            uses_key = "{key}" in template or template.startswith("/cache/batch/")
            for key in (INSIDE, OUTSIDE) if uses_key else (None,):
                path = template.replace("{key}", key or "").replace("{tag}", "t").replace("{job_id}", "nope")
                found.append((method.upper(), path, permission, key))
    documented = {(t, m) for t, ops in document["paths"].items() for m in ops}
    assert set(EXPECTED) <= documented, "a row for a route the document no longer has"
    return found


def body_of(method: str, path: str, key: str | None) -> Any:
    for (template, verb), body in BODIES.items():
        concrete = template.replace("{key}", key or "")
        if verb.upper() == method and concrete == path:
            return json.loads(json.dumps(body).replace("KEY", key or ""))
    return None


def test_every_route_gives_each_token_the_documented_answer(server: ServerProcess) -> None:
    server.request("PUT", f"/cache/{OUTSIDE}", raw=b'"kept"', headers=auth("admin"))
    server.request("PUT", f"/cache/{INSIDE}", raw=b"1", headers=auth("admin"))
    errors = []
    # The admin last: its clear (DELETE /cache) would hide what the others changed.
    for name in (None, "scraper", "ro", "rw", "admin"):
        for method, path, permission, key in cases():
            status, body = send(server, method, path, name, body_of(method, path, key))
            if permission == OPEN:
                good = status not in (401, 403)
            elif name is None:
                good = status == 401
            elif allowed(name, permission, key):
                good = status not in (401, 403)
            else:
                good = status == 403 and (method == "HEAD" or json.loads(body)["error"] == "forbidden")
            if not good:
                errors.append(f"{name} {method} {path}: {status} {body[:200]!r}")
            if status >= 400:
                text = body.decode(errors="replace")
                assert not any(token in text for token, _, _ in TOKENS.values()), text
        if name == "rw":  # nothing outside its scope changed before the admin's turn
            assert server.request("GET", f"/cache/{OUTSIDE}", headers=auth("admin"))[2] == b'"kept"'
    assert not errors, "\n".join(errors)


def test_a_refusal_names_what_is_missing_and_changes_nothing(server: ServerProcess) -> None:
    server.request("PUT", "/cache/other:x", raw=b"1", headers=auth("admin"))
    status, body = send(server, "POST", "/cache/batch/set", "rw", {"items": {"app:new": 1, "other:x": 2}})
    assert status == 403 and json.loads(body)["key"] == "other:x"
    assert send(server, "GET", "/cache/app:new", "rw")[0] == 404  # refused whole
    assert server.request("GET", "/cache/other:x", headers=auth("admin"))[2] == b"1"
    status, body = send(server, "PUT", "/cache/app:y", "ro", 1)
    assert status == 403 and json.loads(body)["permission"] == "write"
    status, body = send(server, "GET", "/stats", "rw")
    assert status == 403 and json.loads(body)["permission"] == "metrics"
    status, body = send(server, "GET", "/cache/app:miss?lease=5", "ro")  # a leased read may take the lease
    assert status == 403 and json.loads(body)["permission"] == "write"
    assert send(server, "GET", "/cache/app:miss?lease=5", "rw")[0] == 404


def test_the_listing_and_the_events_show_only_the_prefixes(server: ServerProcess) -> None:
    for key in ("app:1", "other:1"):
        server.request("PUT", f"/cache/{key}", raw=b"1", headers=auth("admin"))
    keys = json.loads(send(server, "GET", "/admin/keys?limit=1000", "ro")[1])["keys"]
    assert "app:1" in keys and all(key.startswith("app:") for key in keys)
    assert "other:1" in json.loads(send(server, "GET", "/admin/keys?limit=1000", "admin")[1])["keys"]
    status, body = send(server, "GET", "/events?prefix=other:", "ro")
    assert status == 403 and json.loads(body)["prefix"] == "other:"
    assert send(server, "GET", "/events?prefix=app:x", "ro")[0] == 200  # within its prefix
    connection = http.client.HTTPConnection(server.host, server.port, timeout=10)
    try:
        connection.request("GET", "/events", headers=auth("ro"))
        response = connection.getresponse()
        assert response.status == 200
        for key in ("other:2", "app:2"):
            server.request("PUT", f"/cache/{key}", raw=b"1", headers=auth("admin"))
        seen = b""
        while b"app:2" not in seen:
            seen += response.fp.readline()
        assert b"other:2" not in seen
    finally:
        connection.close()


def test_no_token_in_the_log_or_the_metrics(server: ServerProcess) -> None:
    send(server, "GET", "/cache/other:k", "ro")  # a denial, logged
    metrics = send(server, "GET", "/metrics", "scraper")[1].decode()
    assert 'cachegrid_acl_denials_total{token="ro"}' in metrics
    assert 'cachegrid_acl_requests_total{token="rw"}' in metrics
    output = server.output()
    assert "ACL: token 'ro' denied GET '/cache/other:k'" in output
    for token, _, _ in TOKENS.values():
        assert token not in metrics and token not in output
        assert digest(token) not in output


def wait_for(check: Any, seconds: float = 2.5) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.05)
    return bool(check())


def test_the_file_changed_broken_and_removed_while_running(tmp_path: Path) -> None:
    path = tmp_path / "acl.toml"
    path.write_text(acl_text({"admin": TOKENS["admin"]}))
    with running("--acl-file", str(path), graceful=False) as server:
        server.request("PUT", "/cache/app:data", raw=b"42", headers=auth("admin"))
        assert send(server, "GET", "/cache/app:data", "ro")[0] == 401
        path.write_text(acl_text({"admin": TOKENS["admin"], "ro": TOKENS["ro"]}))
        started = time.monotonic()
        assert wait_for(lambda: send(server, "GET", "/cache/app:data", "ro")[0] == 200)
        assert time.monotonic() - started <= 2.5
        path.write_text('[[tokens]]\nname = "ro"\nsha256 = "not hex"\npermissions = ["read"]\n')
        # The file is looked at on a request, at most once a second.
        assert wait_for(lambda: send(server, "GET", "/cache/app:data", "ro") and "not reloaded" in server.output())
        assert send(server, "GET", "/cache/app:data", "ro")[0] == 200  # the last good file holds
        assert "token 'ro': sha256 must be" in server.output()
        path.unlink()
        assert wait_for(lambda: send(server, "GET", "/cache/app:data", "ro") and "removed?" in server.output())
        assert send(server, "GET", "/cache/app:data", "ro")[1] == b"42"  # no data lost, no restart


def test_an_invalid_file_at_start_stops_the_server_with_one_line(tmp_path: Path) -> None:
    path = tmp_path / "acl.toml"
    path.write_text('[[tokens]]\nname = "web"\nsha256 = "' + "0" * 64 + '"\npermissions = ["fly"]\n')
    done = subprocess.run(
        [CLI, "serve", "--port", "1", "--acl-file", str(path)], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 3
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "token 'web'" in lines[0] and "unknown permission 'fly'" in lines[0]


def test_sighup_hands_the_snapshot_over_with_an_acl_file_alone(tmp_path: Path) -> None:
    """The master asks the worker for the handover snapshot over HTTP: with
    no auth_token, a token of its own (never in the log) gets it through."""
    path = tmp_path / "acl.toml"
    path.write_text(acl_text({"rw": TOKENS["rw"]}))
    snapshot = str(tmp_path / "cache.snap")
    with running("--acl-file", str(path), "--snapshot-path", snapshot, "--snapshot-interval", "0") as server:
        assert send(server, "PUT", "/cache/app:kept", "rw", {"v": 1})[0] == 201
        [old] = server.workers()
        server.process.send_signal(signal.SIGHUP)
        deadline = time.monotonic() + 30
        while (old in server.workers() or not server.workers()) and time.monotonic() < deadline:
            time.sleep(0.05)
        server.wait_healthy()
        assert send(server, "GET", "/cache/app:kept", "rw") == (200, b'{"v":1}')
        assert "handed over a snapshot of 1 entries" in server.output()
