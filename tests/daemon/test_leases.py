"""Leases and locks over HTTP (daemon/leases.py), in process on a fake clock:
what a miss with ?lease answers, what a PUT with a token does, the lock
endpoints, and that bad input is a 4xx JSON that changes nothing."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from falcon import testing

from cachegrid.engine import Cache
from cachegrid.testing import FakeClock

MakeClient = Callable[..., tuple[testing.TestClient, Cache]]
TOKEN = "X-Cache-Lease"


def leased_get(client: testing.TestClient, key: str, lease: str = "10") -> Any:
    return client.simulate_get(f"/cache/{key}", params={"lease": lease})


def test_a_miss_grants_one_caller_the_lease_and_tells_the_others_to_wait(client: testing.TestClient) -> None:
    first = leased_get(client, "k")
    assert first.status_code == 404
    assert first.headers["X-Cache-Lease-Status"] == "granted" and first.headers[TOKEN]
    assert first.json["error"] == "not_found" and first.json["lease"] == "granted"
    assert first.headers[TOKEN] not in first.text  # the token is in the header only
    for _ in range(3):
        other = leased_get(client, "k")
        assert other.status_code == 404 and TOKEN not in other.headers
        assert other.headers["X-Cache-Lease-Status"] == "held"
        assert other.headers["Retry-After"] == "10"
        assert other.json["lease"] == "held" and other.json["retry_after"] == pytest.approx(10)


def test_a_hit_is_a_plain_answer(client: testing.TestClient) -> None:
    client.simulate_put("/cache/k", body="[1]")
    hit = leased_get(client, "k")
    assert hit.status_code == 200 and hit.text == "[1]" and "X-Cache-Lease-Status" not in hit.headers


def test_the_holders_put_stores_and_the_next_reader_hits(client: testing.TestClient) -> None:
    token = leased_get(client, "k").headers[TOKEN]
    stored = client.simulate_put("/cache/k", params={"ttl": "60"}, body='"v"', headers={TOKEN: token})
    assert stored.status_code == 201
    assert leased_get(client, "k").text == '"v"'
    assert client.simulate_get("/cache/k/lease").json == {"key": "k", "held": False, "ttl": None}


def test_after_the_lease_time_the_next_caller_wins_and_the_late_winner_writes_nothing(
    client: testing.TestClient, clock: FakeClock
) -> None:
    late = leased_get(client, "k", "2").headers[TOKEN]
    clock.tick(1.5)
    assert leased_get(client, "k", "2").headers["Retry-After"] == "1"
    clock.tick(0.5)
    second = leased_get(client, "k", "2")
    assert second.headers["X-Cache-Lease-Status"] == "granted"
    refused = client.simulate_put("/cache/k", body='"late"', headers={TOKEN: late})
    assert refused.status_code == 409 and refused.json["error"] == "lease_not_held"
    assert client.simulate_get("/cache/k").status_code == 404
    assert client.simulate_put("/cache/k", body='"on time"', headers={TOKEN: second.headers[TOKEN]}).status_code == 201
    assert client.simulate_get("/cache/k").text == '"on time"'


@pytest.mark.parametrize("token", ["forged", "A" * 22, "'; DROP"])
def test_a_forged_token_is_409_json_and_changes_nothing(client: testing.TestClient, token: str) -> None:
    client.simulate_put("/cache/k", body="1")
    client.simulate_put("/cache/other", body="2")
    held = leased_get(client, "fresh").headers[TOKEN]
    for key in ("k", "fresh"):
        refused = client.simulate_put(f"/cache/{key}", body="99", headers={TOKEN: token})
        assert refused.status_code == 409 and refused.json["error"] == "lease_not_held"
        assert refused.json["key"] == key
    assert client.simulate_get("/cache/k").text == "1" and client.simulate_get("/cache/other").text == "2"
    assert client.simulate_get("/cache/fresh").status_code == 404
    assert client.simulate_get("/cache/fresh/lease").json["held"] is True
    assert client.simulate_put("/cache/fresh", body="3", headers={TOKEN: held}).status_code == 201


def test_a_put_without_a_token_works_as_before_and_leaves_the_lease(client: testing.TestClient) -> None:
    leased_get(client, "k")
    assert client.simulate_put("/cache/k", body="1").status_code == 201
    assert client.simulate_get("/cache/k/lease").json["held"] is True


@pytest.mark.parametrize("lease", ["0", "-1", "abc", "nan", "inf", "3601", "1e300", ""])
def test_a_bad_lease_time_is_400_and_grants_nothing(client: testing.TestClient, lease: str) -> None:
    answer = leased_get(client, "k", lease)
    assert answer.status_code == 400 and answer.json["error"] == "invalid_lease"
    assert client.simulate_get("/cache/k/lease").json["held"] is False
    answer = client.simulate_post("/cache/k/lease", params={"ttl": lease})
    assert answer.status_code == 400 and answer.json["error"] in ("invalid_lease", "missing_parameter")
    assert client.simulate_get("/stats").json["leases_held"] == 0


def test_too_many_leases_is_507_and_the_reads_still_answer(make_client: MakeClient) -> None:
    client, _ = make_client(max_leases=2)
    leased_get(client, "a")
    leased_get(client, "b")
    full = leased_get(client, "c")
    assert full.status_code == 507 and full.json["error"] == "too_many_leases" and full.json["limit"] == 2
    client.simulate_put("/cache/c", body="1")
    assert leased_get(client, "c").status_code == 200


# -- locks ---------------------------------------------------------------------------


def test_a_lock_is_acquired_released_and_asked_about(client: testing.TestClient) -> None:
    acquired = client.simulate_post("/cache/job/lease", params={"ttl": "30"})
    assert acquired.status_code == 201 and acquired.json["token"] == acquired.headers[TOKEN]
    again = client.simulate_post("/cache/job/lease", params={"ttl": "30"})
    assert again.status_code == 409 and again.json["error"] == "lease_held" and again.headers["Retry-After"] == "30"
    assert client.simulate_get("/cache/job/lease").json == {"key": "job", "held": True, "ttl": 30.0}
    wrong = client.simulate_delete("/cache/job/lease", headers={TOKEN: "guess"})
    assert wrong.status_code == 409 and wrong.json["error"] == "lease_not_held"
    assert client.simulate_get("/cache/job/lease").json["held"] is True
    released = client.simulate_delete("/cache/job/lease", headers={TOKEN: acquired.json["token"]})
    assert released.status_code == 200 and released.json == {"key": "job", "released": True}
    assert client.simulate_post("/cache/job/lease", params={"ttl": "30"}).status_code == 201


def test_a_release_needs_the_token(client: testing.TestClient) -> None:
    client.simulate_post("/cache/job/lease", params={"ttl": "30"})
    answer = client.simulate_delete("/cache/job/lease")
    assert answer.status_code == 400 and answer.json["error"] == "missing_header"
    assert client.simulate_get("/cache/job/lease").json["held"] is True


def test_a_lock_expires_by_itself_and_survives_the_delete_of_its_key(
    client: testing.TestClient, clock: FakeClock
) -> None:
    client.simulate_put("/cache/job", body="1")
    token = client.simulate_post("/cache/job/lease", params={"ttl": "5"}).json["token"]
    client.simulate_delete("/cache/job")
    assert client.simulate_post("/cache/job/lease", params={"ttl": "5"}).status_code == 409
    clock.tick(5)
    assert client.simulate_get("/cache/job/lease").json["held"] is False
    expired = client.simulate_delete("/cache/job/lease", headers={TOKEN: token})
    assert expired.status_code == 409 and expired.json["error"] == "lease_not_held"


def test_a_key_ending_in_lease_is_still_a_key_where_the_path_is_raw(client: testing.TestClient) -> None:
    assert client.simulate_put("/cache/job%2Flease", body="1").status_code == 201
    assert client.simulate_get("/cache/job%2Flease").text == "1"


def test_lease_counters_are_in_stats(client: testing.TestClient) -> None:
    token = leased_get(client, "k").headers[TOKEN]
    leased_get(client, "k")
    client.simulate_put("/cache/k", body="1", headers={TOKEN: token})
    stats = client.simulate_get("/stats").json
    assert (stats["leases_granted"], stats["leases_refused"], stats["leases_filled"], stats["leases_held"]) == (
        1,
        1,
        1,
        0,
    )
    assert stats["lease_memory_bytes"] == 0


def test_lease_and_stale_counters_are_metrics(client: testing.TestClient, clock: FakeClock) -> None:
    token = leased_get(client, "k").headers[TOKEN]
    leased_get(client, "k")
    client.simulate_put("/cache/k", params={"ttl": "1", "stale": "10"}, body="1", headers={TOKEN: token})
    clock.tick(2)
    client.simulate_get("/cache/k")
    client.simulate_post("/cache/k/stale")
    text = client.simulate_get("/metrics").text
    for line in (
        'cachegrid_leases_total{outcome="granted"} 1.0',
        'cachegrid_leases_total{outcome="refused"} 1.0',
        'cachegrid_leases_total{outcome="filled"} 1.0',
        "cachegrid_stale_hits_total 1.0",
        "cachegrid_marked_stale_total 1.0",
        "cachegrid_leases_held 0.0",
        "cachegrid_max_leases 10000.0",
    ):
        assert line in text, line
