"""Limits enforced once, where they live: the engine refuses (and counts) a
value over max_value_size, a bad key or TTL; the daemon bounds what HTTP
itself carries (the body)."""

from __future__ import annotations

from falcon import testing

from .test_api import MakeClient, assert_error, put


def rejected_too_large(client: testing.TestClient) -> tuple[int, float]:
    """The counter as /stats and as /metrics show it."""
    stats = client.simulate_get("/stats").json["rejected_too_large"]
    line = 'cachegrid_rejected_writes_total{reason="too_large"} '
    [metric] = [text for text in client.simulate_get("/metrics").text.splitlines() if text.startswith(line)]
    return stats, float(metric[len(line) :])


def test_a_put_over_max_value_size_counts_in_stats_and_metrics(make_client: MakeClient) -> None:
    client, cache = make_client(max_value_size=100)
    assert rejected_too_large(client) == (0, 0.0)
    assert_error(put(client, "k", "x" * 99), 413, "value_too_large")
    assert rejected_too_large(client) == (1, 1.0)
    assert put(client, "k", "x" * 98).status_code == 201  # at the limit: stored, not counted
    assert rejected_too_large(client) == (1, 1.0)


def test_a_default_sized_put_of_over_a_mebibyte_is_413_and_counted(make_client: MakeClient) -> None:
    client, cache = make_client()
    body = assert_error(put(client, "big", "x" * 1_100_000), 413, "value_too_large")
    assert body["limit"] == 1024 * 1024 and body["key"] == "big" and body["limit_name"] == "max_value_size"
    assert rejected_too_large(client) == (1, 1.0)
    assert not cache.exists("big")


def test_a_batch_item_over_max_value_size_counts_in_stats_and_metrics(make_client: MakeClient) -> None:
    client, cache = make_client(max_value_size=50)
    result = client.simulate_post("/cache/batch/set", json={"items": {"a": 1, "b": "x" * 100}})
    assert assert_error(result, 413, "value_too_large")["key"] == "b"
    assert rejected_too_large(client) == (1, 1.0)
    assert len(cache) == 0  # all or nothing


def test_a_body_over_max_body_size_is_refused_by_the_daemon_and_not_counted(make_client: MakeClient) -> None:
    client, _ = make_client(max_body_size=2048)
    assert_error(client.simulate_put("/cache/k", body=b'"' + b"x" * 3000 + b'"'), 413, "body_too_large")
    assert rejected_too_large(client) == (0, 0.0)  # the engine never saw it


def test_a_refused_key_or_ttl_stores_nothing_and_leaves_other_keys(make_client: MakeClient) -> None:
    client, cache = make_client(max_key_length=10)
    put(client, "other", "untouched")
    body = assert_error(put(client, "k" * 11, 1), 400, "key_too_long")
    assert body["limit"] == 10 and body["key"] == "k" * 11
    assert_error(put(client, "k", 1, query_string="ttl=-1"), 400, "invalid_ttl")
    assert_error(client.simulate_put("/cache/other/ttl", params={"ttl": "0"}), 400, "invalid_ttl")
    assert client.simulate_get("/cache/other").json == "untouched"
    assert client.simulate_get("/cache/other/ttl").json["ttl"] is None
    assert len(cache) == 1
