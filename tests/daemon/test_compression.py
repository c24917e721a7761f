"""Compression over HTTP, in process (cachegrid/daemon/compression.py): held
compressed and charged so, served both ways, ETags and Vary, compressed
uploads, lies, unsupported codings and bombs. tests/integration/
test_compression_serving.py holds the same rules through both workers."""

from __future__ import annotations

import gzip
import json
import random
from collections.abc import Callable
from typing import Any

import pytest
from falcon import testing

from cachegrid.daemon.compression import accepts_gzip, body_coding, inflate
from cachegrid.daemon.errors import ApiError
from cachegrid.engine import Cache

Make = Callable[..., tuple[testing.TestClient, Cache]]
USERS = [{"id": n, "name": f"user {n}", "email": f"user{n}@example.com", "active": True} for n in range(100)]
DOCUMENT = json.dumps(USERS, separators=(",", ":")).encode()
GZIP = {"Accept-Encoding": "gzip"}


def put(client: testing.TestClient, key: str, body: bytes, **headers: str) -> Any:
    return client.simulate_put(f"/cache/{key}", body=body, headers={"Content-Type": "application/json", **headers})


def test_a_large_value_is_held_compressed_and_charged_as_held(make_client: Make) -> None:
    client, cache = make_client()
    assert put(client, "users", DOCUMENT).status_code == 201
    entry = cache.peek_entry("users")
    assert entry is not None and entry.original_size == len(DOCUMENT) and len(entry.value) < len(DOCUMENT) * 0.3
    assert cache.memory_usage < len(DOCUMENT) * 0.3
    stats = client.simulate_get("/stats").json
    assert stats["compressed_entries"] == 1 and stats["compressed_original_bytes"] == len(DOCUMENT)
    assert stats["compressed_saved_bytes"] == len(DOCUMENT) - len(entry.value)
    assert 0 < stats["compression_ratio"] < 0.3
    assert "cachegrid_compression_saved_bytes" in client.simulate_get("/metrics").text


def test_small_and_incompressible_values_are_held_as_sent(make_client: Make) -> None:
    client, cache = make_client()
    put(client, "small", b'{"name":"Alice","age":30}')
    noise = random.Random(29).randbytes(5000)  # does not compress
    client.simulate_put("/cache/noise", body=noise, headers={"Content-Type": "application/octet-stream"})
    assert cache.peek_entry("small").original_size is None  # type: ignore[union-attr]
    assert cache.peek_entry("noise").original_size is None  # type: ignore[union-attr]
    for key in ("small", "noise"):
        answer = client.simulate_get(f"/cache/{key}", headers=GZIP)
        assert "content-encoding" not in answer.headers and "vary" not in answer.headers


def test_the_min_saving_decides(make_client: Make) -> None:
    client, cache = make_client(compress_min_saving=0.9)
    put(client, "users", DOCUMENT)  # saves ~80%: under 90%
    assert cache.peek_entry("users").original_size is None  # type: ignore[union-attr]


def test_threshold_zero_turns_compression_off(make_client: Make) -> None:
    client, cache = make_client(compress_threshold=0)
    put(client, "users", DOCUMENT)
    assert cache.peek_entry("users").original_size is None  # type: ignore[union-attr]
    put(client, "up", gzip.compress(DOCUMENT), **{"Content-Encoding": "gzip"})  # still read
    assert cache.peek_entry("up").value == DOCUMENT  # type: ignore[union-attr]
    answer = client.simulate_post("/cache/batch/get", json={"keys": ["users"]}, headers=GZIP)
    assert "content-encoding" not in answer.headers and "vary" not in answer.headers


@pytest.mark.parametrize("method", ["GET", "HEAD"])
def test_served_gzip_as_held_or_identity(make_client: Make, method: str) -> None:
    client, cache = make_client()
    put(client, "users", DOCUMENT)
    held = cache.peek_entry("users").value  # type: ignore[union-attr]
    for accept in ("gzip", "gzip, deflate, br", "x-gzip", "*", "br;q=1, gzip;q=0.5"):
        answer = client.simulate_request(method, "/cache/users", headers={"Accept-Encoding": accept})
        assert answer.headers["content-encoding"] == "gzip", accept
        assert answer.headers["vary"] == "Accept-Encoding"
        assert answer.headers["content-length"] == str(len(held))
        if method == "GET":
            assert answer.content == held and gzip.decompress(answer.content) == DOCUMENT
    for accept in (None, "identity", "gzip;q=0", "br", "*;q=0", "*, gzip;q=0", "gzip;q=nonsense"):
        headers = {} if accept is None else {"Accept-Encoding": accept}
        answer = client.simulate_request(method, "/cache/users", headers=headers)
        assert "content-encoding" not in answer.headers, accept
        assert answer.headers["vary"] == "Accept-Encoding"
        assert answer.headers["content-length"] == str(len(DOCUMENT))
        if method == "GET":
            assert answer.content == DOCUMENT


def test_each_representation_has_its_etag_and_conditions_work_for_both(make_client: Make) -> None:
    client, _ = make_client()
    put(client, "users", DOCUMENT)
    plain = client.simulate_get("/cache/users").headers["etag"]
    zipped = client.simulate_get("/cache/users", headers=GZIP).headers["etag"]
    assert plain != zipped and zipped == plain[:-1] + '-gzip"'
    # If-None-Match: the representation the request selects
    assert client.simulate_get("/cache/users", headers={"If-None-Match": plain}).status_code == 304
    assert client.simulate_get("/cache/users", headers={"If-None-Match": zipped, **GZIP}).status_code == 304
    assert client.simulate_get("/cache/users", headers={"If-None-Match": zipped}).status_code == 200
    assert client.simulate_get("/cache/users", headers={"If-None-Match": plain, **GZIP}).status_code == 200
    not_modified = client.simulate_get("/cache/users", headers={"If-None-Match": f"{plain}, {zipped}", **GZIP})
    assert not_modified.status_code == 304 and not_modified.headers["vary"] == "Accept-Encoding"
    # If-Match on a write: either ETag names the version
    assert put(client, "users", DOCUMENT, **{"If-Match": zipped}).status_code == 200
    newer = client.simulate_get("/cache/users").headers["etag"]
    assert put(client, "users", DOCUMENT, **{"If-Match": zipped}).status_code == 412
    assert put(client, "users", DOCUMENT, **{"If-Match": newer}).status_code == 200
    assert put(client, "users", DOCUMENT, **{"If-None-Match": newer[:-1] + '-gzip"'}).status_code == 200


def test_peek_binary_and_batch_get(make_client: Make) -> None:
    client, cache = make_client()
    put(client, "users", DOCUMENT)
    raw = bytes(1000) + DOCUMENT
    client.simulate_put("/cache/bin", body=raw, headers={"Content-Type": "application/octet-stream"})
    assert cache.peek_entry("bin").original_size == len(raw)  # type: ignore[union-attr]
    assert client.simulate_get("/cache/users?peek=true").content == DOCUMENT
    assert client.simulate_get("/cache/bin").content == raw
    assert gzip.decompress(client.simulate_get("/cache/bin", headers=GZIP).content) == raw
    answer = client.simulate_post("/cache/batch/get", json={"keys": ["users", "bin", "nope"]})
    assert "content-encoding" not in answer.headers and answer.headers["vary"] == "Accept-Encoding"
    assert answer.json["items"] == {"users": USERS} and answer.json["missing"] == ["nope"]
    zipped = client.simulate_post("/cache/batch/get", json={"keys": ["users", "bin"]}, headers=GZIP)
    assert zipped.headers["content-encoding"] == "gzip" and zipped.headers["vary"] == "Accept-Encoding"
    assert json.loads(gzip.decompress(zipped.content))["items"] == {"users": USERS}
    small = client.simulate_post("/cache/batch/get", json={"keys": ["nope"]}, headers=GZIP)
    assert "content-encoding" not in small.headers  # small answers are never compressed on the fly


def test_batch_set_compresses_large_items_and_reads_a_gzip_body(make_client: Make) -> None:
    client, cache = make_client()
    body = json.dumps({"items": {"users": USERS, "small": 1}, "items_base64": {}}).encode()
    answer = client.simulate_post(
        "/cache/batch/set",
        body=gzip.compress(body),
        headers={"Content-Type": "application/json", "Content-Encoding": "gzip"},
    )
    assert answer.status_code == 200 and answer.json["stored"] == 2
    assert cache.peek_entry("users").original_size == len(DOCUMENT)  # type: ignore[union-attr]
    assert cache.peek_entry("small").original_size is None  # type: ignore[union-attr]
    lie = client.simulate_post(
        "/cache/batch/set", body=body, headers={"Content-Type": "application/json", "Content-Encoding": "gzip"}
    )
    assert lie.status_code == 400 and lie.json["error"] == "invalid_content_encoding"


def test_a_gzip_upload_is_decoded_validated_and_held_as_sent_when_it_can_be(make_client: Make) -> None:
    client, cache = make_client()
    sent = gzip.compress(DOCUMENT)
    assert put(client, "users", sent, **{"Content-Encoding": "gzip"}).status_code == 201
    entry = cache.peek_entry("users")
    assert entry is not None and entry.value == sent and entry.original_size == len(DOCUMENT)  # as sent
    pretty = json.dumps(USERS, indent=2).encode()
    assert put(client, "pretty", gzip.compress(pretty), **{"Content-Encoding": "x-gzip"}).status_code == 201
    assert client.simulate_get("/cache/pretty").content == DOCUMENT  # stored as its compact JSON
    two = gzip.compress(DOCUMENT[:100]) + gzip.compress(DOCUMENT[100:])  # two members: one body
    assert put(client, "two", two, **{"Content-Encoding": "gzip"}).status_code == 201
    assert client.simulate_get("/cache/two").content == DOCUMENT
    assert put(client, "id", DOCUMENT, **{"Content-Encoding": "identity"}).status_code == 201
    zipped_binary = gzip.compress(bytes(5000))
    headers = {"Content-Type": "application/octet-stream", "Content-Encoding": "gzip"}
    assert client.simulate_put("/cache/b", body=zipped_binary, headers=headers).status_code == 201
    assert client.simulate_get("/cache/b").content == bytes(5000)


@pytest.mark.parametrize(
    "body",
    [DOCUMENT, gzip.compress(DOCUMENT)[:-10], gzip.compress(DOCUMENT) + b"junk", b"", gzip.compress(b"{not json")],
    ids=["not-gzip", "cut-short", "garbage-after", "empty", "not-json-inside"],
)
def test_a_body_that_is_not_what_it_claims_is_400_and_nothing_is_stored(make_client: Make, body: bytes) -> None:
    client, cache = make_client()
    answer = put(client, "lie", body, **{"Content-Encoding": "gzip"})
    assert answer.status_code == 400 and answer.json["error"] in (
        "invalid_content_encoding",
        "invalid_json",
        "empty_body",
    )
    assert cache.peek_entry("lie") is None


@pytest.mark.parametrize("coding", ["br", "deflate", "zstd", "gzip, br", "compress"])
def test_an_unsupported_coding_is_415_naming_the_supported_ones(make_client: Make, coding: str) -> None:
    client, cache = make_client()
    answer = put(client, "x", b"1", **{"Content-Encoding": coding})
    assert answer.status_code == 415 and answer.json["error"] == "unsupported_content_encoding"
    assert answer.json["supported"] == ["gzip", "identity"] and "gzip" in answer.json["message"]
    assert cache.peek_entry("x") is None


def test_a_bomb_is_stopped_at_max_value_size(make_client: Make) -> None:
    client, cache = make_client(max_value_size=64 * 1024)
    bomb = gzip.compress(b" " * (8 * 1024 * 1024))  # 8 KiB that inflate to 8 MiB
    answer = put(client, "bomb", bomb, **{"Content-Encoding": "gzip"})
    assert answer.status_code == 413 and answer.json["error"] == "value_too_large"
    assert cache.peek_entry("bomb") is None and len(cache) == 0
    binary = client.simulate_put(
        "/cache/b", body=bomb, headers={"Content-Type": "application/octet-stream", "Content-Encoding": "gzip"}
    )
    assert binary.status_code == 413
    fits = gzip.compress(b'"' + b"x" * 60_000 + b'"')
    assert put(client, "fits", fits, **{"Content-Encoding": "gzip"}).status_code == 201


def test_inflate_stops_within_a_step_of_the_limit() -> None:
    bomb = gzip.compress(bytes(64 * 1024 * 1024))
    with pytest.raises(ApiError) as raised:
        inflate(bomb, 1024 * 1024)
    assert str(raised.value.status).startswith("413")
    assert inflate(gzip.compress(b"abc") + gzip.compress(b"def"), 10) == (b"abcdef", False)
    assert inflate(gzip.compress(b"abc"), 3) == (b"abc", True)


@pytest.mark.parametrize(
    ("header", "accepted"),
    [
        (None, False),
        ("", False),
        ("gzip", True),
        ("GZIP", True),
        ("x-gzip", True),
        ("deflate, gzip;q=0.1", True),
        ("gzip;q=0", False),
        ("gzip; q=0.000", False),
        ("*", True),
        ("*;q=0", False),
        ("*, gzip;q=0", False),
        ("gzip;q=0, *", False),
        ("identity", False),
        ("br, deflate", False),
        ("gzip;q=2", False),
    ],
)
def test_accept_encoding(header: str | None, accepted: bool) -> None:
    assert accepts_gzip(header) is accepted


def test_content_encoding() -> None:
    assert body_coding(None) is None and body_coding("identity") is None and body_coding("") is None
    assert body_coding("gzip") == body_coding("X-Gzip") == body_coding("identity, gzip") == "gzip"
    with pytest.raises(ApiError):
        body_coding("gzip, gzip")


def test_admin_keys_gives_stored_and_original_sizes(make_client: Make) -> None:
    client, cache = make_client()
    put(client, "users", DOCUMENT)
    put(client, "small", b"[1,2]")
    sizes = client.simulate_get("/admin/keys").json["sizes"]
    held = len(cache.peek_entry("users").value)  # type: ignore[union-attr]
    assert sizes == {
        "users": {"stored_bytes": held, "original_bytes": len(DOCUMENT)},
        "small": {"stored_bytes": 5, "original_bytes": 5},
    }


def test_heads_batch_gets_and_batch_deletes_keep_to_the_kept_inflations(make_client: Make) -> None:
    client, _ = make_client()
    put(client, "users", DOCUMENT)

    def inflations() -> tuple[int, int, int]:
        stats = client.simulate_get("/stats").json
        return stats["inflated_cache_hits"], stats["inflated_cache_misses"], stats["inflated_cache_entries"]

    # A HEAD's identity length is the original size, known without inflating.
    for params in (None, {"peek": "true"}):  # the fast path's answer, and falcon's
        head = client.simulate_head("/cache/users", params=params)
        assert head.headers["content-length"] == str(len(DOCUMENT)) and "content-encoding" not in head.headers
    assert inflations() == (0, 0, 0)
    # A batch get inflates through the same kept inflations as a single identity read.
    assert client.simulate_post("/cache/batch/get", json={"keys": ["users"]}).json["items"] == {"users": USERS}
    assert inflations() == (0, 1, 1)
    assert client.simulate_get("/cache/users").content == DOCUMENT
    assert inflations() == (1, 1, 1)
    # A new value under the key is never answered from the old inflation.
    newer = USERS[::-1]
    put(client, "users", json.dumps(newer).encode())
    assert client.simulate_post("/cache/batch/get", json={"keys": ["users"]}).json["items"] == {"users": newer}
    assert inflations() == (1, 2, 1)
    # A batch delete frees the inflations of the keys it names at once.
    assert client.simulate_post("/cache/batch/delete", json={"keys": ["users", "other"]}).json == {"deleted": 1}
    assert inflations() == (1, 2, 0)
