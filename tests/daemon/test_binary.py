"""Binary values in the app, in process: what each bad request gets, and that
it changes nothing (the same behaviours over real HTTP, under each worker,
are in tests/integration/test_binary.py)."""

from __future__ import annotations

import base64
from collections.abc import Callable
from typing import Any

import pytest
from falcon import testing

from cachegrid.engine import Cache

OCTET = {"Content-Type": "application/octet-stream"}
Make = Callable[..., tuple[testing.TestClient, Cache]]


def b64(value: bytes) -> str:
    return base64.b64encode(value).decode()


@pytest.mark.parametrize("content_type", ["application/octet-stream", "Application/Octet-Stream; charset=x"])
def test_octet_stream_in_any_spelling_is_binary(client: testing.TestClient, content_type: str) -> None:
    assert client.simulate_put("/cache/k", body=b"\xff\x00", headers={"Content-Type": content_type}).status_code == 201
    answer = client.simulate_get("/cache/k")
    assert (answer.content, answer.headers["X-Cache-Type"]) == (b"\xff\x00", "binary")


@pytest.mark.parametrize(
    "content_type",
    [
        "application/json; charset=utf-8",
        "application/merge-patch+json",
        "text/plain;charset=UTF-8",
        "application/x-www-form-urlencoded",
        "",
    ],
)
def test_the_types_read_as_json(client: testing.TestClient, content_type: str) -> None:
    headers = {"Content-Type": content_type} if content_type else {}
    assert client.simulate_put("/cache/k", body=b'{"a": 1}', headers=headers).status_code == 201
    answer = client.simulate_get("/cache/k")
    assert (answer.content, answer.headers["X-Cache-Type"]) == (b'{"a":1}', "json")


@pytest.mark.parametrize("content_type", ["image/png", "application/x-protobuf", "multipart/form-data; boundary=x"])
def test_other_types_are_415_and_leave_the_old_value(client: testing.TestClient, content_type: str) -> None:
    client.simulate_put("/cache/k", json=1)
    answer = client.simulate_put("/cache/k", body=b"\x00", headers={"Content-Type": content_type})
    assert answer.status_code == 415 and answer.json["error"] == "unsupported_media_type"
    assert client.simulate_get("/cache/k").content == b"1"


def test_a_json_value_ignores_accept_as_before(client: testing.TestClient) -> None:
    client.simulate_put("/cache/k", json=[1])
    answer = client.simulate_get("/cache/k", headers={"Accept": "application/octet-stream"})
    assert (answer.status_code, answer.content) == (200, b"[1]")


def test_accept_with_q_zero_for_octet_stream_is_406(client: testing.TestClient) -> None:
    client.simulate_put("/cache/k", body=b"\x01", headers=OCTET)
    answer = client.simulate_get("/cache/k", headers={"Accept": "application/octet-stream;q=0, application/json"})
    assert answer.status_code == 406 and answer.json["key"] == "k"
    assert client.simulate_head("/cache/k", headers={"Accept": "application/json"}).status_code == 406


def test_a_binary_peek_is_binary_too(client: testing.TestClient) -> None:
    client.simulate_put("/cache/k", body=b"\x01", headers=OCTET)
    answer = client.simulate_get("/cache/k", query_string="peek=true")
    assert (answer.content, answer.headers["Content-Type"]) == (b"\x01", "application/octet-stream")


def test_a_json_batch_answers_exactly_as_before(client: testing.TestClient) -> None:
    client.simulate_post("/cache/batch/set", json={"items": {"a": {"x": 1}}})
    answer = client.simulate_post("/cache/batch/get", json={"keys": ["a", "b"]})
    assert answer.content == b'{"items":{"a":{"x":1}},"missing":["b"]}'


def test_a_json_value_that_looks_like_a_wrapper_stays_json(client: testing.TestClient) -> None:
    client.simulate_post("/cache/batch/set", json={"items": {"a": {"value_base64": "AAE="}}})
    assert client.simulate_get("/cache/a").json == {"value_base64": "AAE="}


def test_items_base64_alone_is_a_batch(client: testing.TestClient) -> None:
    answer = client.simulate_post("/cache/batch/set", json={"items_base64": {"a": b64(b"\x00")}, "ttl": 5})
    assert answer.json == {"stored": 1, "ttl": 5}
    assert client.simulate_post("/cache/batch/get", json={"keys": ["a"]}).json == {
        "items": {},
        "items_base64": {"a": "AA=="},
        "missing": [],
    }


@pytest.mark.parametrize(
    "body, code",
    [
        ({"items": {"a": 1}, "items_base64": {"a": "AA=="}}, "invalid_batch"),
        ({"items_base64": {"a": 5}}, "invalid_base64"),
        ({"items_base64": {"a": "AA"}}, "invalid_base64"),  # padding missing
        ({"items_base64": {"a": "ключ"}}, "invalid_base64"),
        ({"items_base64": ["a"]}, "invalid_batch"),
        ({"ttl": 5}, "invalid_batch"),
        ({"items": {}, "binary": {}}, "invalid_batch"),
    ],
)
def test_bad_batch_sets_are_400_and_store_nothing(
    cache_and_client: tuple[Cache, testing.TestClient], body: dict[str, Any], code: str
) -> None:
    cache, client = cache_and_client
    answer = client.simulate_post("/cache/batch/set", json={**body})
    assert answer.status_code == 400 and answer.json["error"] == code
    assert len(cache) == 0


def test_both_maps_count_against_the_batch_limit(make_client: Make) -> None:
    client, cache = make_client(max_batch_size=3)
    answer = client.simulate_post(
        "/cache/batch/set", json={"items": {"a": 1, "b": 2}, "items_base64": {"c": "AA==", "d": "AA=="}}
    )
    assert answer.status_code == 413 and answer.json["error"] == "batch_too_large"
    assert len(cache) == 0


def test_a_mixed_batch_is_all_or_nothing(make_client: Make) -> None:
    client, cache = make_client(max_value_size=4)
    client.simulate_post("/cache/batch/set", json={"items": {"a": 1}})
    answer = client.simulate_post(
        "/cache/batch/set", json={"items": {"a": 2, "b": 3}, "items_base64": {"c": b64(b"12345")}}
    )
    assert answer.status_code == 413 and answer.json["key"] == "c"
    assert client.simulate_get("/cache/a").content == b"1" and len(cache) == 1
