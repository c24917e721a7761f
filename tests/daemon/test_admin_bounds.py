"""Admin work is bounded per request: on a single-threaded server a long
request stalls every other client."""

from __future__ import annotations

from cachegrid.config import Settings

from .test_api import MakeClient, assert_error


def test_the_load_test_is_bounded_by_default_and_answers_the_seed_examples(make_client: MakeClient) -> None:
    limit = Settings.model_fields["loadtest_max_operations"].default
    client, _ = make_client()
    for count in ("1000", "5000"):  # the product description's examples
        result = client.simulate_post("/test/load", params={"num_operations": count, "operation_type": "mixed"})
        assert result.status_code == 200 and result.json["num_operations"] == int(count)
    assert client.simulate_post("/test/load").json["num_operations"] == 1000
    body = assert_error(
        client.simulate_post("/test/load", params={"num_operations": str(limit + 1)}), 400, "invalid_parameter"
    )
    assert body["limit"] == limit and body["limit_name"] == "loadtest_max_operations"
    assert "loadtest_max_operations" in body["message"]
    # The old default, a million operations in one request, no longer runs.
    assert_error(client.simulate_post("/test/load", params={"num_operations": "1000000"}), 400, "invalid_parameter")


def test_one_key_listing_request_examines_at_most_keys_scan_count_keys(make_client: MakeClient) -> None:
    client, cache = make_client(keys_scan_count=16, max_size=1_000)
    cache.set_many({f"user:{i}": b"1" for i in range(200)})
    first = client.simulate_get("/admin/keys", params={"pattern": "user:", "limit": "1000"}).json
    assert 0 < first["count"] <= 16 and first["cursor"] is not None  # a short page, not the end
    assert client.simulate_get("/admin/keys", params={"pattern": "nothing-matches", "limit": "10"}).json["count"] == 0
    seen, cursor, requests = list(first["keys"]), first["cursor"], 1
    while cursor is not None:
        page = client.simulate_get("/admin/keys", params={"pattern": "user:", "limit": "1000", "cursor": cursor}).json
        assert page["count"] <= 16
        seen += page["keys"]
        cursor, requests = page["cursor"], requests + 1
        assert requests < 100
    assert sorted(seen) == sorted(f"user:{i}" for i in range(200))  # every key exactly once
    assert requests >= 200 // 16
