"""Stale values over HTTP (daemon/leases.py), in process on a fake clock:
PUT ?stale=, the X-Cache-Stale mark, the refresh lease, POST .../stale, and
bad stale windows refused without changing anything."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from falcon import testing

from cachegrid.engine import Cache
from cachegrid.testing import FakeClock

MakeClient = Callable[..., tuple[testing.TestClient, Cache]]

TOKEN = "X-Cache-Lease"


def test_a_value_past_its_ttl_is_served_marked_stale_with_one_refresh_lease(
    client: testing.TestClient, clock: FakeClock
) -> None:
    assert client.simulate_put("/cache/k", params={"ttl": "10", "stale": "20"}, body='"old"').status_code == 201
    fresh = client.simulate_get("/cache/k", params={"lease": "5"})
    assert (
        fresh.text == '"old"' and "X-Cache-Stale" not in fresh.headers and "X-Cache-Lease-Status" not in fresh.headers
    )
    clock.tick(10)
    first = client.simulate_get("/cache/k", params={"lease": "5"})
    assert first.status_code == 200 and first.text == '"old"' and first.headers["X-Cache-Stale"] == "true"
    assert first.headers["X-Cache-Lease-Status"] == "granted" and first.headers[TOKEN]
    second = client.simulate_get("/cache/k", params={"lease": "5"})
    assert second.text == '"old"' and second.headers["X-Cache-Lease-Status"] == "held" and TOKEN not in second.headers
    plain = client.simulate_get("/cache/k")
    assert plain.headers["X-Cache-Stale"] == "true" and "X-Cache-Lease-Status" not in plain.headers
    refreshed = client.simulate_put(
        "/cache/k", params={"ttl": "10", "stale": "20"}, body='"new"', headers={TOKEN: first.headers[TOKEN]}
    )
    assert refreshed.status_code == 200
    again = client.simulate_get("/cache/k", params={"lease": "5"})
    assert again.text == '"new"' and "X-Cache-Stale" not in again.headers
    clock.tick(30)
    assert client.simulate_get("/cache/k").status_code == 404
    assert client.simulate_get("/stats").json["stale_hits"] == 3


@pytest.mark.parametrize(
    "params, message",
    [
        ({"ttl": "10", "stale": "-1"}, "at least 0"),
        ({"ttl": "10", "stale": "604801"}, "at most 604800"),
        ({"ttl": "10", "stale": "1e308"}, "at most"),
        ({"ttl": "10", "stale": "nan"}, "at least 0"),
        ({"ttl": "10", "stale": "soon"}, "a number"),
        ({"stale": "-5"}, "at least 0"),
    ],
)
def test_a_bad_stale_window_is_400_json_and_changes_nothing(
    client: testing.TestClient, params: dict[str, str], message: str
) -> None:
    client.simulate_put("/cache/k", body='"before"')
    client.simulate_put("/cache/other", body="1")
    answer = client.simulate_put("/cache/k", params=params, body='"after"')
    assert answer.status_code == 400 and answer.json["error"] == "invalid_stale" and message in answer.json["message"]
    assert client.simulate_get("/cache/k").text == '"before"' and client.simulate_get("/cache/other").text == "1"


def test_a_stale_window_without_a_ttl_has_no_effect(client: testing.TestClient, clock: FakeClock) -> None:
    assert client.simulate_put("/cache/k", params={"stale": "10"}, body="1").status_code == 201
    clock.tick(10**6)
    answer = client.simulate_get("/cache/k")
    assert answer.text == "1" and "X-Cache-Stale" not in answer.headers and "X-Cache-TTL" not in answer.headers


def test_the_longest_stale_window_is_a_setting(make_client: MakeClient) -> None:
    client, _ = make_client(max_stale_time=60)
    assert client.simulate_put("/cache/k", params={"ttl": "1", "stale": "60"}, body="1").status_code == 201
    refused = client.simulate_put("/cache/k", params={"ttl": "1", "stale": "61"}, body="2")
    assert refused.status_code == 400 and refused.json["limit"] == 60


def test_marking_stale_serves_the_old_value_marked_and_hands_out_the_lease(
    client: testing.TestClient, clock: FakeClock
) -> None:
    client.simulate_put("/cache/k", body='"v"')
    marked = client.simulate_post("/cache/k/stale")
    assert marked.status_code == 200 and marked.json == {"key": "k", "stale": True}
    read = client.simulate_get("/cache/k", params={"lease": "5"})
    assert read.text == '"v"' and read.headers["X-Cache-Stale"] == "true"
    assert read.headers["X-Cache-Lease-Status"] == "granted"
    clock.tick(30)  # stale_grace: a key without a stale window of its own keeps 30 s
    assert client.simulate_get("/cache/k").status_code == 404


def test_marking_a_missing_key_stale_is_404(client: testing.TestClient) -> None:
    answer = client.simulate_post("/cache/absent/stale")
    assert answer.status_code == 404 and answer.json["error"] == "not_found"
    assert client.simulate_get("/stats").json["marked_stale"] == 0


def test_the_grace_of_a_mark_is_a_setting(make_client: MakeClient, clock: FakeClock) -> None:
    client, _ = make_client(stale_grace=2)
    client.simulate_put("/cache/k", body="1")
    client.simulate_post("/cache/k/stale")
    clock.tick(1.5)
    assert client.simulate_get("/cache/k").status_code == 200
    clock.tick(0.5)
    assert client.simulate_get("/cache/k").status_code == 404


def test_a_batch_set_gives_every_item_the_stale_window(client: testing.TestClient, clock: FakeClock) -> None:
    answer = client.simulate_post("/cache/batch/set", json={"items": {"a": 1, "b": 2}, "ttl": 10, "stale": 20})
    assert answer.status_code == 200 and answer.json["stored"] == 2
    clock.tick(15)
    for key, value in (("a", "1"), ("b", "2")):
        stale = client.simulate_get(f"/cache/{key}")
        assert stale.text == value and stale.headers["X-Cache-Stale"] == "true"
    clock.tick(15)
    assert client.simulate_get("/cache/a").status_code == 404


@pytest.mark.parametrize(
    "stale, message",
    [(-1, "at least 0"), (604801, "at most 604800"), (10**400, "at most"), ("5", "a number"), (True, "a number")],
)
def test_a_batch_set_with_a_bad_stale_window_stores_nothing(
    client: testing.TestClient, stale: object, message: str
) -> None:
    client.simulate_put("/cache/a", body='"before"')
    answer = client.simulate_post("/cache/batch/set", json={"items": {"a": 1, "b": 2}, "ttl": 10, "stale": stale})
    assert answer.status_code == 400 and answer.json["error"] == "invalid_stale" and message in answer.json["message"]
    assert client.simulate_get("/cache/a").text == '"before"' and client.simulate_get("/cache/b").status_code == 404
