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
    body = assert_error(client.simulate_post("/test/load", params={"num_operations": str(limit + 1)}),
                        400, "invalid_parameter")
    assert body["limit"] == limit and body["limit_name"] == "loadtest_max_operations"
    assert "loadtest_max_operations" in body["message"]
    # The old default, a million operations in one request, no longer runs.
    assert_error(client.simulate_post("/test/load", params={"num_operations": "1000000"}), 400, "invalid_parameter")
