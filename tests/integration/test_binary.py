"""Binary values on a real server, under each worker: raw bytes in and out
of ``/cache/{key}``, their type in the headers, what Accept and
Content-Type may ask, the size limits, batches in base64, and a restart
from a snapshot."""

from __future__ import annotations

import base64
import json
import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from cachegrid.testing import ServerProcess, running
from tests.fixtures import worker_kinds

MAX_VALUE = 1500
MAX_BODY = 2048
OCTET = {"Content-Type": "application/octet-stream"}
EVERY_BYTE = bytes(range(256))


@pytest.fixture(scope="module", params=worker_kinds())
def server(request: pytest.FixtureRequest) -> Iterator[ServerProcess]:
    env = {"CACHEGRID_MAX_VALUE_SIZE": str(MAX_VALUE), "CACHEGRID_MAX_BODY_SIZE": str(MAX_BODY)}
    with running("--worker", request.param, env=env, graceful=False) as started:
        yield started


def put(
    server: ServerProcess, key: str, value: bytes, headers: dict[str, str] | None = None, query: str = ""
) -> tuple[int, dict[str, str], bytes]:
    return server.request("PUT", f"/cache/{key}{query}", raw=value, headers=headers or OCTET)


def error(answer: tuple[int, dict[str, str], bytes]) -> dict[str, Any]:
    assert answer[1]["content-type"] == "application/json"
    return json.loads(answer[2])


def test_every_byte_value_comes_back_as_sent(server: ServerProcess) -> None:
    assert put(server, "bin:every", EVERY_BYTE)[0] == 201
    status, headers, body = server.request("GET", "/cache/bin:every")
    assert status == 200 and body == EVERY_BYTE
    assert headers["content-type"] == "application/octet-stream"
    assert headers["x-cache-type"] == "binary"
    assert headers["content-length"] == "256"


def test_each_single_byte_is_a_value_of_its_own(server: ServerProcess) -> None:
    for byte in range(256):
        assert put(server, f"bin:byte:{byte}", bytes([byte]))[0] in (200, 201)
    for byte in range(256):
        assert server.request("GET", f"/cache/bin:byte:{byte}")[2] == bytes([byte])


def test_an_empty_value_is_a_value(server: ServerProcess) -> None:
    assert put(server, "bin:empty", b"")[0] == 201
    status, headers, body = server.request("GET", "/cache/bin:empty")
    assert (status, body, headers["content-length"], headers["x-cache-type"]) == (200, b"", "0", "binary")
    # JSON still needs a body.
    assert error(put(server, "bin:empty-json", b"", {"Content-Type": "application/json"}))["error"] == "empty_body"


def test_a_chunked_upload_is_stored_whole(server: ServerProcess) -> None:
    connection = server.connection()
    try:
        connection.request(
            "PUT",
            "/cache/bin:chunked",
            body=iter([EVERY_BYTE[:100], EVERY_BYTE[100:]]),
            headers=OCTET,
            encode_chunked=True,
        )
        response = connection.getresponse()
        assert response.status == 201, response.read()
    finally:
        connection.close()
    assert server.request("GET", "/cache/bin:chunked")[2] == EVERY_BYTE


def test_a_value_at_max_value_size_fits_and_one_byte_more_changes_nothing(server: ServerProcess) -> None:
    largest = bytes(range(256)) * (MAX_VALUE // 256) + b"\xff" * (MAX_VALUE % 256)
    assert len(largest) == MAX_VALUE
    assert put(server, "bin:largest", largest)[0] == 201
    over = put(server, "bin:largest", largest + b"\x00")
    assert over[0] == 413
    assert error(over) | {"message": ""} == {
        "error": "value_too_large",
        "message": "",
        "limit": MAX_VALUE,
        "key": "bin:largest",
        "limit_name": "max_value_size",
    }
    assert server.request("GET", "/cache/bin:largest")[2] == largest
    body_over = put(server, "bin:largest", b"\x01" * (MAX_BODY + 1))
    assert body_over[0] == 413 and error(body_over)["error"] == "body_too_large"
    assert server.request("GET", "/cache/bin:largest")[2] == largest


def test_head_shows_the_type_and_size(server: ServerProcess) -> None:
    put(server, "bin:head", b"\x00\x01\x02")
    server.request("PUT", "/cache/json:head", {"a": 1}, {"Content-Type": "application/json"})
    status, headers, body = server.request("HEAD", "/cache/bin:head")
    assert (status, body) == (200, b"")
    assert headers["x-cache-type"] == "binary" and headers["content-type"] == "application/octet-stream"
    assert headers["content-length"] == "3"
    _, headers, _ = server.request("HEAD", "/cache/json:head")
    assert headers["x-cache-type"] == "json" and headers["content-type"] == "application/json"


def test_a_json_value_is_served_exactly_as_before(server: ServerProcess) -> None:
    # curl -d without -H sends the form type: still JSON, as it always was.
    status, _, _ = server.request(
        "PUT",
        "/cache/json:plain",
        raw=b'{ "a" : [1, 2] }',
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert status == 201
    status, headers, body = server.request("GET", "/cache/json:plain", headers={"Accept": "application/json"})
    assert (status, body, headers["content-type"]) == (200, b'{"a":[1,2]}', "application/json")
    assert (
        error(server.request("PUT", "/cache/json:bad", raw=b"\x00\xff", headers={"Content-Type": "application/json"}))[
            "error"
        ]
        == "invalid_encoding"
    )


def test_a_binary_value_read_as_json_only_is_406(server: ServerProcess) -> None:
    put(server, "bin:accept", b"\x80pickle")
    refused = server.request("GET", "/cache/bin:accept", headers={"Accept": "application/json"})
    assert refused[0] == 406
    document = error(refused)
    assert document["error"] == "not_acceptable" and document["type"] == "binary" and document["size"] == 7
    assert "application/octet-stream" in document["message"]
    for accept in ("*/*", "application/octet-stream", "application/*", "application/json, */*;q=0.1"):
        status, _, body = server.request("GET", "/cache/bin:accept", headers={"Accept": accept})
        assert (status, body) == (200, b"\x80pickle"), accept


def test_another_content_type_is_415_and_stores_nothing(server: ServerProcess) -> None:
    refused = put(server, "bin:png", b"\x89PNG", {"Content-Type": "image/png"})
    assert refused[0] == 415
    document = error(refused)
    assert document["error"] == "unsupported_media_type"
    assert document["accepted"] == ["application/json", "application/octet-stream"]
    assert server.request("GET", "/cache/bin:png")[0] == 404


def test_counters_refuse_a_binary_value(server: ServerProcess) -> None:
    put(server, "bin:counter", b"12")
    refused = server.request("POST", "/cache/bin:counter/incr")
    assert refused[0] == 400 and error(refused)["error"] == "not_an_integer"
    assert server.request("GET", "/cache/bin:counter")[2] == b"12"


def test_conditions_and_ttls_apply_to_binary_values(server: ServerProcess) -> None:
    assert put(server, "bin:cond", b"one", query="?ttl=60")[0] == 201
    assert put(server, "bin:cond", b"two", {**OCTET, "If-None-Match": "*"})[0] == 412
    status, headers, body = server.request("GET", "/cache/bin:cond")
    assert body == b"one" and 0 < float(headers["x-cache-ttl"]) <= 60
    assert put(server, "bin:cond", b"two", {**OCTET, "If-Match": headers["etag"]})[0] == 200
    assert server.request("GET", "/cache/bin:cond")[2] == b"two"


def test_batches_carry_binary_values_in_base64(server: ServerProcess) -> None:
    items_base64 = {f"bin:batch:{byte}": base64.b64encode(bytes([byte])).decode() for byte in range(256)}
    items_base64["bin:batch:empty"] = ""
    items_base64["bin:batch:every"] = base64.b64encode(EVERY_BYTE).decode()
    # Past the body limit in one request: three requests of a third each.
    keys = list(items_base64)
    for start in range(0, len(keys), 50):
        chunk = {key: items_base64[key] for key in keys[start : start + 50]}
        status, _, raw = server.request(
            "POST", "/cache/batch/set", {"items": {"json:batch": {"a": 1}}, "items_base64": chunk}
        )
        assert status == 200, raw
    found: dict[str, str] = {}
    for start in range(0, len(keys), 50):
        status, _, raw = server.request(
            "POST", "/cache/batch/get", {"keys": ["json:batch", *keys[start : start + 50], "bin:absent"]}
        )
        document = json.loads(raw)
        assert document["items"] == {"json:batch": {"a": 1}} and document["missing"] == ["bin:absent"]
        found.update(document["items_base64"])
    assert found == items_base64
    assert server.request("GET", "/cache/bin:batch:7")[2] == b"\x07"


def test_bad_base64_in_a_batch_stores_none_of_it(server: ServerProcess) -> None:
    refused = server.request(
        "POST",
        "/cache/batch/set",
        {"items": {"json:none": 1}, "items_base64": {"bin:ok": "AAE=", "bin:bad": "not base64!"}},
    )
    assert refused[0] == 400
    assert error(refused)["error"] == "invalid_base64" and error(refused)["key"] == "bin:bad"
    status, _, raw = server.request("POST", "/cache/batch/get", {"keys": ["json:none", "bin:ok"]})
    assert json.loads(raw) == {"items": {}, "missing": ["json:none", "bin:ok"]}


def test_a_binary_value_survives_a_restart_from_a_snapshot(start_server, tmp_path: Path) -> None:
    args = ("--snapshot-path", str(tmp_path / "cache.snap"), "--snapshot-interval", "0")
    first = start_server(*args)
    put(first, "bin:kept", EVERY_BYTE, query="?ttl=600")
    put(first, "bin:kept-empty", b"")
    first.request("PUT", "/cache/json:kept", [1, "two"], {"Content-Type": "application/json"})
    assert first.stop() == 0  # SIGTERM: the snapshot at shutdown
    again = start_server(*args)
    status, headers, body = again.request("GET", "/cache/bin:kept")
    assert (status, body, headers["x-cache-type"]) == (200, EVERY_BYTE, "binary")
    assert 0 < float(headers["x-cache-ttl"]) <= 600
    status, headers, body = again.request("GET", "/cache/bin:kept-empty")
    assert (status, body, headers["content-type"]) == (200, b"", "application/octet-stream")
    status, headers, body = again.request("GET", "/cache/json:kept")
    assert (body, headers["x-cache-type"]) == (b'[1,"two"]', "json")
    assert again.request("POST", "/cache/bin:kept/incr")[0] == 400


def test_binary_values_are_counted_in_memory(server: ServerProcess) -> None:
    def used() -> int:
        return json.loads(server.request("GET", "/stats")[2])["memory_usage_bytes"]

    before = used()
    put(server, "bin:memory", random.Random(1400).randbytes(1400))  # incompressible: held as sent
    assert used() - before >= 1400
    server.request("DELETE", "/cache/bin:memory")
    assert used() == before
