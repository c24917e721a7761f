"""Compression on a real server, under each worker (docs/compression.md):
held compressed and charged so, served gzip or identity by Accept-Encoding
(the fast path's GET and falcon's alike), an ETag per representation, Vary,
gzip uploads, lies, unsupported codings, and a bomb stopped at
``max_value_size`` with the worker's peak RSS bounded."""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from cachegrid.testing import ServerProcess, running
from tests.fixtures import worker_kinds

MAX_VALUE = 4 * 1024 * 1024
USERS = [{"id": n, "name": f"user {n}", "email": f"user{n}@example.com", "city": "Lisbon"} for n in range(100)]
DOCUMENT = json.dumps(USERS, separators=(",", ":")).encode()
JSON = {"Content-Type": "application/json"}


@pytest.fixture(scope="module", params=worker_kinds())
def server(request: pytest.FixtureRequest) -> Iterator[ServerProcess]:
    env = {"CACHEGRID_MAX_VALUE_SIZE": str(MAX_VALUE), "CACHEGRID_MEMORY_TRIM_INTERVAL": "0"}
    with running("--worker", request.param, env=env, graceful=False) as started:
        yield started


def put(server: ServerProcess, key: str, body: bytes, **headers: str) -> tuple[int, dict[str, str], bytes]:
    return server.request("PUT", f"/cache/{key}", raw=body, headers={**JSON, **headers})


def test_held_compressed_and_charged_so(server: ServerProcess) -> None:
    before = json.loads(server.request("GET", "/stats")[2])
    assert put(server, "held", DOCUMENT)[0] in (200, 201)
    stats = json.loads(server.request("GET", "/stats")[2])
    assert stats["compressed_entries"] == before["compressed_entries"] + 1
    assert stats["memory_usage_bytes"] - before["memory_usage_bytes"] < 0.3 * len(DOCUMENT)
    assert stats["compressed_original_bytes"] - before["compressed_original_bytes"] == len(DOCUMENT)
    assert b"cachegrid_compressed_items" in server.request("GET", "/metrics")[2]


@pytest.mark.parametrize("query", ["", "?falcon=1"], ids=["fast-path", "falcon"])
@pytest.mark.parametrize("method", ["GET", "HEAD"])
def test_served_both_ways(server: ServerProcess, query: str, method: str) -> None:
    put(server, "served", DOCUMENT)
    status, headers, body = server.request(method, f"/cache/served{query}", headers={"Accept-Encoding": "gzip"})
    assert status == 200 and headers["content-encoding"] == "gzip" and headers["vary"] == "Accept-Encoding"
    held_length = int(headers["content-length"])
    assert held_length < 0.3 * len(DOCUMENT)
    if method == "GET":
        assert gzip.decompress(body) == DOCUMENT and len(body) == held_length
    for accept in ("identity", "gzip;q=0", "br"):
        status, headers, body = server.request(method, f"/cache/served{query}", headers={"Accept-Encoding": accept})
        assert status == 200 and "content-encoding" not in headers and headers["vary"] == "Accept-Encoding"
        assert int(headers["content-length"]) == len(DOCUMENT)
        assert body == (DOCUMENT if method == "GET" else b"")


def test_small_values_are_never_compressed(server: ServerProcess) -> None:
    put(server, "small", b'{"name":"Alice","age":30}')
    status, headers, body = server.request("GET", "/cache/small", headers={"Accept-Encoding": "gzip"})
    assert status == 200 and body == b'{"name":"Alice","age":30}'
    assert "content-encoding" not in headers and "vary" not in headers


def test_etags_per_representation_and_conditions(server: ServerProcess) -> None:
    put(server, "tagged", DOCUMENT)
    plain = server.request("GET", "/cache/tagged", headers={"Accept-Encoding": "identity"})[1]["etag"]
    zipped = server.request("GET", "/cache/tagged", headers={"Accept-Encoding": "gzip"})[1]["etag"]
    assert plain != zipped
    gz = {"Accept-Encoding": "gzip"}
    assert server.request("GET", "/cache/tagged", headers={"If-None-Match": zipped, **gz})[0] == 304
    assert server.request("GET", "/cache/tagged", headers={"If-None-Match": plain, **gz})[0] == 200
    assert server.request("GET", "/cache/tagged", headers={"If-None-Match": plain})[0] == 304
    assert put(server, "tagged", DOCUMENT, **{"If-Match": zipped})[0] == 200
    assert put(server, "tagged", DOCUMENT, **{"If-Match": zipped})[0] == 412  # a new version since


def test_batch_get_is_compressed_on_the_fly_when_large_and_accepted(server: ServerProcess) -> None:
    put(server, "b1", DOCUMENT)
    body = json.dumps({"keys": ["b1"]}).encode()
    status, headers, answer = server.request(
        "POST", "/cache/batch/get", raw=body, headers={**JSON, "Accept-Encoding": "gzip"}
    )
    assert status == 200 and headers["content-encoding"] == "gzip" and headers["vary"] == "Accept-Encoding"
    assert json.loads(gzip.decompress(answer))["items"]["b1"] == USERS
    status, headers, answer = server.request("POST", "/cache/batch/get", raw=body, headers=JSON)
    assert "content-encoding" not in headers and json.loads(answer)["items"]["b1"] == USERS


def test_uploads_lies_and_unsupported_codings(server: ServerProcess) -> None:
    assert put(server, "up", gzip.compress(DOCUMENT), **{"Content-Encoding": "gzip"})[0] in (200, 201)
    assert server.request("GET", "/cache/up", headers={"Accept-Encoding": "identity"})[2] == DOCUMENT
    batch = gzip.compress(json.dumps({"items": {"up2": USERS}}).encode())
    status = server.request("POST", "/cache/batch/set", raw=batch, headers={**JSON, "Content-Encoding": "gzip"})[0]
    assert status == 200
    assert json.loads(server.request("GET", "/cache/up2", headers={"Accept-Encoding": "identity"})[2]) == USERS
    status, _, answer = put(server, "lie", DOCUMENT, **{"Content-Encoding": "gzip"})
    assert status == 400 and json.loads(answer)["error"] == "invalid_content_encoding"
    status, _, answer = put(server, "br", DOCUMENT, **{"Content-Encoding": "br"})
    assert status == 415 and json.loads(answer)["supported"] == ["gzip", "identity"]
    assert server.request("GET", "/cache/lie")[0] == 404 and server.request("GET", "/cache/br")[0] == 404


def _peak_rss(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmHWM")


def test_a_bomb_is_stopped_with_413_and_memory_bounded(server: ServerProcess) -> None:
    bomb = gzip.compress(bytes(64 * 1024 * 1024), compresslevel=9)
    assert len(bomb) < 100 * 1024  # about 64 KB that inflate to 64 MiB
    (worker,) = server.workers()
    put(server, "warm", DOCUMENT)  # the worker's ordinary buffers, before the peak is read
    before = _peak_rss(worker)
    status, _, answer = put(server, "bomb", bomb, **{"Content-Encoding": "gzip"})
    assert status == 413 and json.loads(answer)["error"] == "value_too_large"
    assert _peak_rss(worker) - before <= 2 * MAX_VALUE
    assert server.request("GET", "/cache/bomb")[0] == 404
    status = server.request(
        "PUT", "/cache/bomb", raw=bomb, headers={"Content-Type": "application/octet-stream", "Content-Encoding": "gzip"}
    )[0]
    assert status == 413 and _peak_rss(worker) - before <= 2 * MAX_VALUE


@pytest.mark.parametrize("worker", worker_kinds())
def test_a_restart_keeps_the_value_compressed(worker: str, tmp_path: Path) -> None:
    env = {"CACHEGRID_SNAPSHOT_PATH": str(tmp_path / "cache.snap")}
    with running("--worker", worker, env=env) as first:
        assert put(first, "kept", DOCUMENT)[0] == 201
        held = first.request("GET", "/cache/kept", headers={"Accept-Encoding": "gzip"})[2]
    with running("--worker", worker, env=env) as again:
        status, headers, body = again.request("GET", "/cache/kept", headers={"Accept-Encoding": "gzip"})
        assert (status, headers["content-encoding"], body) == (200, "gzip", held)
        assert again.request("GET", "/cache/kept", headers={"Accept-Encoding": "identity"})[2] == DOCUMENT
        assert json.loads(again.request("GET", "/stats")[2])["compressed_entries"] == 1


@pytest.mark.parametrize("query", ["", "?falcon=1"], ids=["fast-path", "falcon"])
def test_write_answers_say_gzip_uploads_are_read(server: ServerProcess, query: str) -> None:
    for body in (b'{"n":1}', DOCUMENT):
        status, headers, _ = put(server, f"says{query}", body)
        assert status in (200, 201) and headers["accept-encoding"] == "gzip"
    status, headers, _ = server.request("POST", "/cache/batch/set", {"items": {"says:batch": 1}})
    assert status == 200 and headers["accept-encoding"] == "gzip"
    assert server.request("GET", "/health")[1]["accept-encoding"] == "gzip"
    # An error answer says nothing either way; neither do reads.
    assert "accept-encoding" not in put(server, "says", b"not json")[1]
    assert "accept-encoding" not in server.request("GET", "/cache/says")[1]
