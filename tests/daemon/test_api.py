"""Every endpoint of the HTTP API, and every error, through falcon's
TestClient over the real app and a real engine (fake clock for TTLs)."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from falcon import testing

from cachegrid.engine import Cache
from cachegrid.testing import FakeClock

MakeClient = Callable[..., tuple[testing.TestClient, Cache]]


def put(client: testing.TestClient, key: str, value: Any, **kwargs: Any) -> testing.Result:
    return client.simulate_put(f"/cache/{key}", body=json.dumps(value), **kwargs)


def assert_error(result: testing.Result, status: int, code: str) -> dict[str, Any]:
    assert result.status_code == status, result.text
    assert result.headers["content-type"].startswith("application/json")
    body = result.json
    assert body["error"] == code, body
    assert isinstance(body["message"], str) and body["message"]
    return body


# -- PUT / GET / HEAD / DELETE /cache/{key} ---------------------------------------


def test_put_then_get_returns_the_value_itself(client: testing.TestClient) -> None:
    created = put(client, "user:123", {"name": "Alice", "age": 30})
    assert created.status_code == 201
    assert created.json == {"key": "user:123", "ttl": None, "created": True}
    got = client.simulate_get("/cache/user:123")
    assert got.status_code == 200
    assert got.headers["content-type"] == "application/json"
    assert got.content == b'{"name":"Alice","age":30}'
    assert got.headers["etag"] == created.headers["etag"]
    assert "x-cache-ttl" not in got.headers


def test_put_replacing_answers_200_and_a_new_etag(client: testing.TestClient) -> None:
    first = put(client, "k", 1)
    second = put(client, "k", 2)
    assert second.status_code == 200 and second.json["created"] is False
    assert first.headers["etag"] != second.headers["etag"]
    assert client.simulate_get("/cache/k").content == b"2"


@pytest.mark.parametrize("value", [None, True, 0, -1.5, "text", [], {}, [1, {"a": [None]}], "ключ ☃", 10**30])
def test_any_json_value_round_trips(client: testing.TestClient, value: Any) -> None:
    assert put(client, "k", value).status_code == 201
    assert client.simulate_get("/cache/k").json == value


def test_big_integers_stay_exact(client: testing.TestClient) -> None:
    client.simulate_put("/cache/k", body=b'{"big": 123456789012345678901234567890, "id": "12345678901234567890"}')
    assert client.simulate_get("/cache/k").content == (
        b'{"big":123456789012345678901234567890,"id":"12345678901234567890"}'
    )


def test_a_byte_order_mark_is_allowed(client: testing.TestClient) -> None:
    assert client.simulate_put("/cache/k", body="\ufeff[1, 2]".encode()).status_code == 201
    assert client.simulate_get("/cache/k").json == [1, 2]


def test_stored_bytes_are_the_compact_encoding_in_the_order_sent(client: testing.TestClient) -> None:
    client.simulate_put("/cache/k", body='{ "b" : 1,\n "a" : [1, 2] , "c": "é" }')
    assert client.simulate_get("/cache/k").content == '{"b":1,"a":[1,2],"c":"é"}'.encode()


def test_get_missing_key_is_404_json(client: testing.TestClient) -> None:
    body = assert_error(client.simulate_get("/cache/nope"), 404, "not_found")
    assert body["key"] == "nope"


def test_put_with_ttl_expires_and_reports_ttl_header(client: testing.TestClient, clock: FakeClock) -> None:
    result = put(client, "session:abc", {"token": "xyz123"}, query_string="ttl=3600")
    assert result.json["ttl"] == 3600
    clock.tick(600)
    got = client.simulate_get("/cache/session:abc")
    assert float(got.headers["x-cache-ttl"]) == pytest.approx(3000)
    clock.tick(3000)
    assert_error(client.simulate_get("/cache/session:abc"), 404, "not_found")


def test_fractional_ttl(client: testing.TestClient, clock: FakeClock) -> None:
    assert put(client, "k", 1, query_string="ttl=0.5").json["ttl"] == 0.5
    clock.tick(0.5)
    assert client.simulate_get("/cache/k").status_code == 404


@pytest.mark.parametrize("ttl", ["0", "-1", "nan", "inf", "abc", "", "1e11"])
def test_bad_ttl_is_400_and_nothing_is_stored(client: testing.TestClient, ttl: str) -> None:
    assert_error(put(client, "k", 1, query_string=f"ttl={ttl}"), 400, "invalid_ttl")
    assert client.simulate_get("/cache/k").status_code == 404


def test_head_is_get_without_a_body(client: testing.TestClient) -> None:
    put(client, "k", {"a": 1})
    head = client.simulate_head("/cache/k")
    assert head.status_code == 200 and head.content == b""
    assert head.headers["content-length"] == str(len(b'{"a":1}'))
    assert head.headers["etag"]
    assert client.simulate_head("/cache/nope").status_code == 404


def test_delete_is_idempotent(client: testing.TestClient) -> None:
    put(client, "k", 1)
    assert client.simulate_delete("/cache/k").json == {"key": "k", "deleted": True}
    again = client.simulate_delete("/cache/k")
    assert again.status_code == 200 and again.json == {"key": "k", "deleted": False}
    assert client.simulate_get("/cache/k").status_code == 404


@pytest.mark.parametrize(
    ("path", "key"),
    [
        ("/cache/a%2Fb", "a/b"),
        ("/cache/%D0%BA%D0%BB%D1%8E%D1%87", "ключ"),
        ("/cache/user:123", "user:123"),
        ("/cache/with%20space", "with space"),
        ("/cache/q%3Fmark%23hash", "q?mark#hash"),
        ("/cache/plus+sign", "plus+sign"),
        ("/cache/pct%25", "pct%"),
        ("/cache/a%2Fttl", "a/ttl"),
        ("/cache/batch%2Fget", "batch/get"),
    ],
)
def test_keys_may_hold_any_encoded_character(client: testing.TestClient, path: str, key: str) -> None:
    stored = client.simulate_put(path, body='"v"')
    assert stored.status_code == 201 and stored.json["key"] == key
    assert client.simulate_get(path).json == "v"
    listed = client.simulate_get("/admin/keys", params={"limit": "10"}).json["keys"]
    assert listed == [key]


def test_a_slash_encoded_key_is_not_mixed_up_with_the_ttl_subresource(client: testing.TestClient) -> None:
    put(client, "a%2Fttl", "the key a/ttl")
    put(client, "a", "the key a", query_string="ttl=100")
    assert client.simulate_get("/cache/a%2Fttl").json == "the key a/ttl"
    assert client.simulate_get("/cache/a/ttl").json == {"key": "a", "ttl": 100}


def test_invalid_percent_encoding_in_a_key_is_400(client: testing.TestClient) -> None:
    assert_error(client.simulate_get("/cache/%FF%FE"), 400, "invalid_key")


def test_empty_key_is_400(client: testing.TestClient) -> None:
    assert_error(client.simulate_put("/cache/", body="1"), 400, "invalid_key")


def test_key_over_the_length_limit_is_400_with_the_limit(make_client: MakeClient) -> None:
    client, cache = make_client(max_key_length=10)
    assert put(client, "k" * 10, 1).status_code == 201
    body = assert_error(put(client, "k" * 11, 1), 400, "key_too_long")
    assert body["limit"] == 10
    assert_error(client.simulate_get("/cache/" + "k" * 11), 400, "key_too_long")
    assert len(cache) == 1


# -- bodies ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "code"),
    [
        (b"", "empty_body"),
        (b"{not json", "invalid_json"),
        (b"NaN", "invalid_json"),
        (b'{"a": Infinity}', "invalid_json"),
        (b"\xff\xfe\x00", "invalid_encoding"),
        (b'"unterminated', "invalid_json"),
        (b"[" * 100_000, "invalid_json"),
        (b"[1e400]", "invalid_json"),
        (b'"\\ud800"', "invalid_json"),
        (b'{"n": 12345678901234567890123, "x": 1e999}', "invalid_json"),
    ],
)
def test_bad_bodies_are_400_and_touch_nothing(
    cache_and_client: tuple[Cache, testing.TestClient], body: bytes, code: str
) -> None:
    cache, client = cache_and_client
    put(client, "other", "untouched")
    put(client, "k", "before")
    assert_error(client.simulate_put("/cache/k", body=body), 400, code)
    assert client.simulate_get("/cache/k").json == "before"
    assert client.simulate_get("/cache/other").json == "untouched"
    assert client.simulate_get("/health").status_code in (200, 503)  # still serving


def test_value_over_the_size_limit_is_413_with_the_limit(make_client: MakeClient) -> None:
    client, cache = make_client(max_value_size=100)
    put(client, "k", "x" * 98)  # 100 bytes with the quotes
    body = assert_error(put(client, "k", "x" * 99), 413, "value_too_large")
    assert body["limit"] == 100
    assert client.simulate_get("/cache/k").json == "x" * 98


def test_body_over_the_request_limit_is_413_before_reading(make_client: MakeClient) -> None:
    client, _ = make_client(max_body_size=2048)
    body = assert_error(client.simulate_put("/cache/k", body=b'"' + b"x" * 3000 + b'"'), 413, "body_too_large")
    assert body["limit"] == 2048
    assert client.simulate_get("/cache/k").status_code == 404


def _chunked_put(client: testing.TestClient, path: str, body: bytes) -> tuple[str, bytes]:
    """A PUT as servers hand over a de-chunked body: no CONTENT_LENGTH, and
    wsgi.input_terminated set (falcon's simulate_* always send a length)."""
    environ = testing.create_environ(path=path, method="PUT", body=body, headers={"Transfer-Encoding": "chunked"})
    del environ["CONTENT_LENGTH"]
    environ["wsgi.input_terminated"] = True
    start_response = testing.StartResponseMock()
    answer = b"".join(client.app(environ, start_response))
    return start_response.status, answer


def test_chunked_body_without_length_is_read_and_limited(make_client: MakeClient) -> None:
    client, _ = make_client(max_body_size=2048)
    status, _ = _chunked_put(client, "/cache/k", b'{"chunked": true}')
    assert status.startswith("201")
    assert client.simulate_get("/cache/k").content == b'{"chunked":true}'
    status, answer = _chunked_put(client, "/cache/big", b'"' + b"x" * 3000 + b'"')
    assert status.startswith("413") and json.loads(answer)["error"] == "body_too_large"
    assert client.simulate_get("/cache/big").status_code == 404


# -- conditional writes and reads -----------------------------------------------


def test_if_none_match_star_stores_only_if_absent(client: testing.TestClient) -> None:
    assert put(client, "k", 1, headers={"If-None-Match": "*"}).status_code == 201
    assert_error(put(client, "k", 2, headers={"If-None-Match": "*"}), 412, "precondition_failed")
    assert client.simulate_get("/cache/k").json == 1


def test_if_match_etag_is_compare_and_set(client: testing.TestClient) -> None:
    etag = put(client, "k", 1).headers["etag"]
    second = put(client, "k", 2, headers={"If-Match": etag})
    assert second.status_code == 200
    assert_error(put(client, "k", 3, headers={"If-Match": etag}), 412, "precondition_failed")
    assert client.simulate_get("/cache/k").json == 2
    assert put(client, "k", 4, headers={"If-Match": f'"nonsense", {second.headers["etag"]}'}).status_code == 200


def test_if_match_on_a_missing_key_is_412(client: testing.TestClient) -> None:
    assert_error(put(client, "k", 1, headers={"If-Match": "*"}), 412, "precondition_failed")
    assert_error(put(client, "k", 1, headers={"If-Match": '"abc-1"'}), 412, "precondition_failed")
    assert client.simulate_get("/cache/k").status_code == 404


def test_weak_etags_never_match_if_match(client: testing.TestClient) -> None:
    etag = put(client, "k", 1).headers["etag"]
    assert_error(put(client, "k", 2, headers={"If-Match": "W/" + etag}), 412, "precondition_failed")


def test_get_with_current_etag_is_304(client: testing.TestClient) -> None:
    etag = put(client, "k", {"a": 1}).headers["etag"]
    not_modified = client.simulate_get("/cache/k", headers={"If-None-Match": etag})
    assert not_modified.status_code == 304 and not_modified.content == b""
    put(client, "k", {"a": 2})
    assert client.simulate_get("/cache/k", headers={"If-None-Match": etag}).status_code == 200


# -- clear ------------------------------------------------------------------------


def test_clear_needs_confirmation(client: testing.TestClient) -> None:
    put(client, "a", 1)
    put(client, "b", 2)
    assert_error(client.simulate_delete("/cache"), 400, "confirmation_required")
    assert_error(client.simulate_delete("/cache", params={"confirm": "yes"}), 400, "confirmation_required")
    assert client.simulate_get("/cache/a").status_code == 200
    assert client.simulate_delete("/cache", params={"confirm": "true"}).json == {"cleared": 2}
    assert client.simulate_get("/cache/a").status_code == 404


# -- batches ----------------------------------------------------------------------


def test_batch_set_then_get(client: testing.TestClient, clock: FakeClock) -> None:
    stored = client.simulate_post(
        "/cache/batch/set", json={"items": {"user:123": {"name": "Alice"}, "user:456": {"name": "Bob"}}, "ttl": 3600}
    )
    assert stored.json == {"stored": 2, "ttl": 3600}
    got = client.simulate_post("/cache/batch/get", json={"keys": ["user:123", "user:456", "nobody", "user:123"]})
    assert got.json == {"items": {"user:123": {"name": "Alice"}, "user:456": {"name": "Bob"}}, "missing": ["nobody"]}
    clock.tick(3600)
    assert client.simulate_post("/cache/batch/get", json={"keys": ["user:123"]}).json == {
        "items": {},
        "missing": ["user:123"],
    }


def test_batch_set_is_all_or_nothing_and_names_the_bad_item(make_client: MakeClient) -> None:
    client, cache = make_client(max_key_length=20, max_value_size=50)
    put(client, "a", "old")
    body = assert_error(
        client.simulate_post("/cache/batch/set", json={"items": {"a": "new", "b": "x" * 100, "c": 3}}),
        413,
        "value_too_large",
    )
    assert body["key"] == "b" and body["limit"] == 50
    assert_error(
        client.simulate_post("/cache/batch/set", json={"items": {"a": "new", "k" * 21: 1}}), 400, "key_too_long"
    )
    assert_error(client.simulate_post("/cache/batch/set", json={"items": {"a": "new", "": 1}}), 400, "invalid_key")
    assert_error(client.simulate_post("/cache/batch/set", json={"items": {"a": "new"}, "ttl": -5}), 400, "invalid_ttl")
    # In a JSON body a TTL is a JSON number: "6" is a string (query text is parsed).
    assert_error(
        client.simulate_post("/cache/batch/set", json={"items": {"a": "new"}, "ttl": "\n6"}), 400, "invalid_ttl"
    )
    assert client.simulate_get("/cache/a").json == "old"
    assert len(cache) == 1


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/cache/batch/set", []),
        ("/cache/batch/set", {"items": [1, 2]}),
        ("/cache/batch/set", {"items": {}, "extra": 1}),
        ("/cache/batch/set", {"nothing": {}}),
        ("/cache/batch/get", {"keys": "user:1"}),
        ("/cache/batch/get", {"keys": [1, 2]}),
        ("/cache/batch/get", {"keys": [], "more": 1}),
        ("/cache/batch/get", "keys"),
    ],
)
def test_batch_with_the_wrong_shape_is_400(client: testing.TestClient, path: str, body: Any) -> None:
    assert_error(client.simulate_post(path, json=body), 400, "invalid_batch")


def test_batch_size_limit_is_413(make_client: MakeClient) -> None:
    client, cache = make_client(max_batch_size=3)
    assert client.simulate_post("/cache/batch/set", json={"items": {"a": 1, "b": 2, "c": 3}}).status_code == 200
    body = assert_error(
        client.simulate_post("/cache/batch/set", json={"items": {str(i): i for i in range(4)}}), 413, "batch_too_large"
    )
    assert body["limit"] == 3
    assert_error(client.simulate_post("/cache/batch/get", json={"keys": ["a", "b", "c", "d"]}), 413, "batch_too_large")
    assert len(cache) == 3


def test_batch_with_default_limit_of_1000(client: testing.TestClient) -> None:
    items = {f"k{i}": i for i in range(1000)}
    assert client.simulate_post("/cache/batch/set", json={"items": items}).json["stored"] == 1000
    got = client.simulate_post("/cache/batch/get", json={"keys": list(items)}).json
    assert got["items"] == items and got["missing"] == []
    assert_error(
        client.simulate_post("/cache/batch/get", json={"keys": [f"k{i}" for i in range(1001)]}), 413, "batch_too_large"
    )


# -- counters ---------------------------------------------------------------------


def test_incr_and_decr(client: testing.TestClient) -> None:
    assert client.simulate_post("/cache/hits/incr").json == {"key": "hits", "value": 1}
    assert client.simulate_post("/cache/hits/incr", params={"by": "10"}).json["value"] == 11
    assert client.simulate_post("/cache/hits/decr", params={"by": "3"}).json["value"] == 8
    assert client.simulate_get("/cache/hits").json == 8


def test_incr_on_a_non_integer_is_400_and_keeps_the_value(client: testing.TestClient) -> None:
    put(client, "name", "Alice")
    assert_error(client.simulate_post("/cache/name/incr"), 400, "not_an_integer")
    assert client.simulate_get("/cache/name").json == "Alice"


@pytest.mark.parametrize("by", ["1.5", "x", "", "1e3", "99999999999999999999999"])
def test_incr_by_must_be_an_integer(client: testing.TestClient, by: str) -> None:
    assert_error(client.simulate_post("/cache/n/incr", params={"by": by}), 400, "invalid_parameter")
    assert client.simulate_get("/cache/n").status_code == 404


def test_incr_overflow_is_400(client: testing.TestClient) -> None:
    put(client, "n", 2**63 - 1)
    assert_error(client.simulate_post("/cache/n/incr"), 400, "integer_overflow")


# -- TTL subresource --------------------------------------------------------------


def test_ttl_get_touch_and_persist(client: testing.TestClient, clock: FakeClock) -> None:
    put(client, "k", 1, query_string="ttl=100")
    clock.tick(40)
    assert client.simulate_get("/cache/k/ttl").json == {"key": "k", "ttl": pytest.approx(60)}
    assert client.simulate_put("/cache/k/ttl", params={"ttl": "500"}).json == {"key": "k", "ttl": 500}
    clock.tick(400)
    assert client.simulate_get("/cache/k").status_code == 200
    assert client.simulate_delete("/cache/k/ttl").json == {"key": "k", "ttl": None}
    clock.tick(10_000)
    assert client.simulate_get("/cache/k/ttl").json == {"key": "k", "ttl": None}


def test_ttl_of_a_missing_key_is_404(client: testing.TestClient) -> None:
    assert_error(client.simulate_get("/cache/nope/ttl"), 404, "not_found")
    assert_error(client.simulate_put("/cache/nope/ttl", params={"ttl": "5"}), 404, "not_found")
    assert_error(client.simulate_delete("/cache/nope/ttl"), 404, "not_found")


def test_touch_needs_a_valid_ttl(client: testing.TestClient) -> None:
    put(client, "k", 1)
    assert_error(client.simulate_put("/cache/k/ttl"), 400, "missing_parameter")
    assert_error(client.simulate_put("/cache/k/ttl", params={"ttl": "-3"}), 400, "invalid_ttl")
    assert client.simulate_get("/cache/k/ttl").json["ttl"] is None


# -- stats, health --------------------------------------------------------------


def test_stats_has_every_field_of_the_seed_and_more(client: testing.TestClient) -> None:
    put(client, "a", 1)
    client.simulate_get("/cache/a")
    client.simulate_get("/cache/b")
    stats = client.simulate_get("/stats").json
    for field in (
        "hits",
        "misses",
        "sets",
        "deletes",
        "evictions",
        "current_size",
        "max_size",
        "hit_ratio",
        "memory_usage_mb",
        "uptime_seconds",
        "expired",
        "policy",
        "memory_usage_bytes",
        "rejected_too_large",
        "rejected_full",
        "node_id",
    ):
        assert field in stats, field
    assert (stats["hits"], stats["misses"], stats["sets"], stats["current_size"]) == (1, 1, 1, 1)
    assert stats["hit_ratio"] == 0.5 and stats["max_size"] == 10_000
    assert stats["policy"] == "adaptive" and stats["node_id"] == "test-node"


def test_health_is_healthy_with_a_running_sweeper(cache_and_client: tuple[Cache, testing.TestClient]) -> None:
    cache, client = cache_and_client
    cache.start()
    try:
        health = client.simulate_get("/health")
        assert health.status_code == 200
        body = health.json
        assert body["status"] == "healthy" and body["node_id"] == "test-node"
        for field in ("uptime_seconds", "cache_size", "hit_ratio", "memory_usage_mb", "last_check"):
            assert field in body
    finally:
        cache.stop()


def test_health_is_503_when_the_sweeper_is_dead(cache_and_client: tuple[Cache, testing.TestClient]) -> None:
    cache, client = cache_and_client
    cache.start()
    cache.stop()
    health = client.simulate_get("/health")
    assert health.status_code == 503
    assert health.json["status"] == "unhealthy"
    assert "sweeper" in health.json["problems"][0]


# -- key listing ------------------------------------------------------------------


def test_admin_keys_prefix_limit_and_cursor(client: testing.TestClient) -> None:
    client.simulate_post("/cache/batch/set", json={"items": {f"user:{i}": i for i in range(25)} | {"other": 0}})
    page = client.simulate_get("/admin/keys", params={"pattern": "user:", "limit": "10"}).json
    assert page["count"] == 10 and len(page["keys"]) == 10 and page["cursor"]
    seen = list(page["keys"])
    while page["cursor"]:
        page = client.simulate_get(
            "/admin/keys", params={"pattern": "user:", "limit": "10", "cursor": page["cursor"]}
        ).json
        seen += page["keys"]
    assert sorted(seen) == sorted(f"user:{i}" for i in range(25))


def test_admin_keys_glob(client: testing.TestClient) -> None:
    client.simulate_post("/cache/batch/set", json={"items": {"user:1": 1, "user:22": 2, "product:1": 3}})
    assert sorted(client.simulate_get("/admin/keys", params={"pattern": "*:1"}).json["keys"]) == ["product:1", "user:1"]


@pytest.mark.parametrize("query", [{"limit": "0"}, {"limit": "x"}, {"limit": "10001"}, {"cursor": "bogus"}])
def test_admin_keys_bad_parameters_are_400(client: testing.TestClient, query: dict[str, str]) -> None:
    result = client.simulate_get("/admin/keys", params=query)
    assert result.status_code == 400 and result.json["error"] in ("invalid_parameter", "invalid_cursor")


# -- load test ----------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["get", "set", "mixed"])
def test_load_test_runs_on_a_scratch_engine(cache_and_client: tuple[Cache, testing.TestClient], kind: str) -> None:
    cache, client = cache_and_client
    put(client, "mine", 1)
    result = client.simulate_post("/test/load", params={"num_operations": "2000", "operation_type": kind})
    assert result.status_code == 200
    report = result.json
    assert report["num_operations"] == 2000 and report["operation_type"] == kind and report["errors"] == 0
    assert report["ops_per_second"] > 0
    latency = report["latency_us"]
    assert 0 <= latency["p50"] <= latency["p95"] <= latency["p99"] <= latency["max"]
    stats = client.simulate_get("/stats").json
    assert stats["sets"] == 1 and stats["current_size"] == 1  # the user's data is untouched
    assert list(cache.keys().keys) == ["mine"]


def test_load_test_is_bounded_and_can_be_switched_off(make_client: MakeClient) -> None:
    client, _ = make_client(loadtest_max_operations=500)
    assert_error(client.simulate_post("/test/load", params={"num_operations": "501"}), 400, "invalid_parameter")
    assert_error(client.simulate_post("/test/load", params={"operation_type": "delete"}), 400, "invalid_parameter")
    client, _ = make_client(loadtest_enabled=False)
    assert_error(client.simulate_post("/test/load"), 403, "load_test_disabled")


# -- metrics, docs ------------------------------------------------------------------


def test_metrics_in_prometheus_format(client: testing.TestClient) -> None:
    put(client, "a", 1)
    client.simulate_get("/cache/a")
    client.simulate_get("/cache/zz")
    result = client.simulate_get("/metrics")
    assert result.status_code == 200 and result.headers["content-type"].startswith("text/plain")
    lines = result.text.splitlines()
    assert "cachegrid_hits_total 1.0" in lines
    assert "cachegrid_misses_total 1.0" in lines
    assert "cachegrid_items 1.0" in lines
    assert any(line.startswith('cachegrid_info{node_id="test-node",policy="adaptive"}') for line in lines)
    assert "# TYPE cachegrid_evictions_total counter" in lines


def test_openapi_document_describes_every_route(client: testing.TestClient) -> None:
    document = client.simulate_get("/openapi.json").json
    assert document["openapi"].startswith("3.")
    for path in (
        "/cache/{key}",
        "/cache/{key}/ttl",
        "/cache/{key}/incr",
        "/cache/{key}/decr",
        "/cache",
        "/cache/batch/set",
        "/cache/batch/get",
        "/stats",
        "/health",
        "/admin/keys",
        "/test/load",
        "/metrics",
    ):
        assert path in document["paths"], path


def test_docs_page_works_offline(client: testing.TestClient) -> None:
    page = client.simulate_get("/docs")
    assert page.status_code == 200 and "swagger-ui-bundle.js" in page.text
    assert "http" not in page.text.split("<body>")[1]  # nothing fetched from elsewhere
    for asset in ("swagger-ui.css", "swagger-ui-bundle.js"):
        assert client.simulate_get(f"/docs/static/{asset}").status_code == 200


# -- falcon's own errors in our shape ---------------------------------------------


def test_unknown_route_is_404_json(client: testing.TestClient) -> None:
    body = assert_error(client.simulate_get("/nowhere"), 404, "not_found")
    assert "/nowhere" in body["message"]


def test_wrong_method_is_405_json(client: testing.TestClient) -> None:
    result = client.simulate_patch("/cache/k")
    assert_error(result, 405, "method_not_allowed")
    assert "allow" in result.headers


# -- authentication -----------------------------------------------------------------


def test_token_guards_every_api_endpoint_but_health(make_client: MakeClient) -> None:
    client, cache = make_client(auth_token="s3cret")
    cache.start()
    try:
        for method, path in (
            ("GET", "/cache/k"),
            ("PUT", "/cache/k"),
            ("GET", "/stats"),
            ("GET", "/metrics"),
            ("GET", "/admin/keys"),
            ("DELETE", "/cache"),
            ("POST", "/cache/batch/get"),
            ("GET", "/cache/k?peek=true"),
            ("GET", "/docsx"),
            ("GET", "/static"),
        ):
            result = client.simulate_request(method, path, body="1")
            assert_error(result, 401, "unauthorized")
            assert result.headers["www-authenticate"].startswith("Bearer")
            wrong = client.simulate_request(method, path, body="1", headers={"Authorization": "Bearer nope"})
            assert assert_error(wrong, 401, "unauthorized")["message"] == "the bearer token is not this server's"
        assert client.simulate_get("/health").status_code == 200
        good = {"Authorization": "Bearer s3cret"}
        assert client.simulate_put("/cache/k", body="1", headers=good).status_code == 201
        assert client.simulate_get("/cache/k", headers=good).json == 1
        assert len(cache) == 1
    finally:
        cache.stop()


def test_cache_full_under_noeviction_is_507(make_client: MakeClient) -> None:
    client, _ = make_client(eviction_policy="noeviction", max_size=1)
    put(client, "a", 1)
    assert_error(put(client, "b", 2), 507, "cache_full")
    assert client.simulate_get("/cache/a").json == 1


def test_batch_delete(client: testing.TestClient) -> None:
    client.simulate_post("/cache/batch/set", json={"items": {"a": 1, "b": 2, "c": 3}})
    result = client.simulate_post("/cache/batch/delete", json={"keys": ["a", "b", "zz", "a"]})
    assert result.json == {"deleted": 2}
    assert client.simulate_post("/cache/batch/get", json={"keys": ["a", "b", "c"]}).json == {
        "items": {"c": 3},
        "missing": ["a", "b"],
    }
    assert_error(client.simulate_post("/cache/batch/delete", json={"keys": "a"}), 400, "invalid_batch")


def test_a_huge_ttl_is_400_not_500(client: testing.TestClient) -> None:
    for ttl in (10**309, 2e10):
        result = client.simulate_post("/cache/batch/set", body=f'{{"items": {{"a": 1}}, "ttl": {ttl}}}')
        assert_error(result, 400, "invalid_ttl")
    assert_error(put(client, "a", 1, query_string="ttl=2e10"), 400, "invalid_ttl")


def test_preconditions_are_checked_after_the_request_itself(make_client: MakeClient) -> None:
    client, _ = make_client(max_value_size=10)
    put(client, "k", 1)
    assert_error(put(client, "k", 1, query_string="ttl=2e10", headers={"If-Match": '"x"'}), 400, "invalid_ttl")
    assert_error(put(client, "k", "x" * 20, headers={"If-Match": '"x"'}), 413, "value_too_large")


@pytest.mark.parametrize("pattern", ["[abc", "user:[ab", "x" * 251])
def test_admin_keys_refuses_a_pattern_delete_by_pattern_refuses(client: testing.TestClient, pattern: str) -> None:
    """The same 400 and message as POST /admin/delete-pattern, not "no keys"."""
    listed = assert_error(client.simulate_get("/admin/keys", params={"pattern": pattern}), 400, "invalid_pattern")
    deleted = assert_error(
        client.simulate_post("/admin/delete-pattern", json={"pattern": pattern}), 400, "invalid_pattern"
    )
    assert listed == deleted
    assert client.simulate_get("/admin/keys", params={"pattern": "[ab]*"}).status_code == 200


def test_the_ttl_answer_is_rounded_as_the_header(client: testing.TestClient, clock: FakeClock) -> None:
    """Milliseconds in both: GET /cache/k/ttl and X-Cache-TTL agree to the digit."""
    put(client, "k", 1, query_string="ttl=400")
    clock.tick(42.6434820420001)
    answer = client.simulate_get("/cache/k/ttl").json["ttl"]
    header = client.simulate_get("/cache/k").headers["x-cache-ttl"]
    assert answer == 357.357 and header == "357.357"
    assert answer == float(header) and f"{answer:.3f}" == header
