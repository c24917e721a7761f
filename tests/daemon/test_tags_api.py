"""Tags and delete by pattern over HTTP (daemon/tags.py), in process: the
routes, the X-Cache-Tags header, /stats, and bad input answered 4xx JSON
with nothing changed."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest
from falcon import testing

from cachegrid.engine import Cache
from tests.fixtures import median_seconds


def put(client: testing.TestClient, key: str, value: Any, **params: str) -> Any:
    return client.simulate_put(f"/cache/{key}", json=value, params=params or None)


def assert_error(result: Any, status: int, code: str) -> None:
    assert result.status_code == status, result.text
    assert result.json["error"] == code and result.json["message"], result.json


def test_put_with_tags_shows_them_on_get_and_head(client: testing.TestClient) -> None:
    assert put(client, "k", {"a": 1}, tags="user:1,page").status_code == 201
    assert client.simulate_get("/cache/k").headers["X-Cache-Tags"] == "user:1,page"
    assert client.simulate_head("/cache/k").headers["X-Cache-Tags"] == "user:1,page"
    put(client, "plain", 1)
    assert "X-Cache-Tags" not in client.simulate_get("/cache/plain").headers


def test_a_replacing_put_replaces_the_tags_and_an_empty_list_drops_them(client: testing.TestClient) -> None:
    put(client, "k", 1, tags="a")
    put(client, "k", 2, tags="b")
    assert client.simulate_get("/cache/k").headers["X-Cache-Tags"] == "b"
    put(client, "k", 3, tags="")
    assert "X-Cache-Tags" not in client.simulate_get("/cache/k").headers


def test_invalidating_a_tag_makes_its_keys_404_and_leaves_the_others(
    cache_and_client: tuple[Cache, testing.TestClient],
) -> None:
    cache, client = cache_and_client
    put(client, "a", 1, tags="page")
    client.simulate_post("/cache/batch/set", json={"items": {"b": 2, "c": 3}, "tags": ["page", "batch"]})
    put(client, "d", 4, tags="other")
    answer = client.simulate_post("/tags/page/invalidate")
    assert answer.status_code == 200 and answer.json == {"tags": ["page"], "invalidated": ["page"], "in_use": 1}
    assert [client.simulate_get(f"/cache/{key}").status_code for key in "abcd"] == [404, 404, 404, 200]
    stats = client.simulate_get("/stats").json
    assert stats["tag_invalidations"] == 1 and stats["tag_invalidated_entries"] == 3


def test_a_batch_of_tags_is_invalidated_at_once(client: testing.TestClient) -> None:
    put(client, "a", 1, tags="x")
    put(client, "b", 2, tags="y")
    put(client, "c", 3, tags="z")
    answer = client.simulate_post("/tags/invalidate", json={"tags": ["x", "y", "unused"]})
    assert answer.status_code == 200 and answer.json["in_use"] == 2
    assert [client.simulate_get(f"/cache/{key}").status_code for key in "abc"] == [404, 404, 200]


def test_a_batch_invalidation_names_the_tags_that_had_entries(client: testing.TestClient) -> None:
    """As /tags/{tag}/invalidate does: the same fields, for each tag."""
    put(client, "a", 1, tags="x")
    put(client, "b", 2, tags="y")
    answer = client.simulate_post("/tags/invalidate", json={"tags": ["y", "unused", "x", "y"]})
    assert answer.json == {"tags": ["y", "unused", "x"], "invalidated": ["y", "x"], "in_use": 2}
    assert client.simulate_get("/stats").json["tag_invalidations"] == 3
    one = client.simulate_post("/tags/unused/invalidate").json
    assert set(one) == set(answer.json) and one["invalidated"] == []


@pytest.mark.parametrize(
    "tags, code",
    [
        (",".join(f"t{n}" for n in range(33)), "too_many_tags"),
        ("x" * 129, "tag_too_long"),
        ("has space", "invalid_tag"),
        ("a,,b", "invalid_tag"),
        ("клю", "invalid_tag"),
    ],
)
def test_bad_tags_on_a_put_are_400_and_change_nothing(client: testing.TestClient, tags: str, code: str) -> None:
    put(client, "k", "old", tags="kept")
    before = client.simulate_get("/stats").json
    assert_error(put(client, "k", "new", tags=tags), 400, code)
    body = {"items": {"k": "new", "other": 1}, "tags": tags.split(",")}
    assert_error(client.simulate_post("/cache/batch/set", json=body), 400, code)
    got = client.simulate_get("/cache/k")
    assert got.json == "old" and got.headers["X-Cache-Tags"] == "kept"
    assert client.simulate_get("/cache/other").status_code == 404
    after = client.simulate_get("/stats").json
    assert (after["sets"], after["tags"], after["memory_usage_bytes"]) == (
        before["sets"],
        before["tags"],
        before["memory_usage_bytes"],
    )


@pytest.mark.parametrize(
    "body, code",
    [
        ({"tags": ["good", "not good"]}, "invalid_tag"),
        ({"tags": ["x" * 129]}, "tag_too_long"),
        ({"tags": "good"}, "invalid_tags"),
        ({"tag": ["good"]}, "invalid_tags"),
    ],
)
def test_a_bad_invalidation_is_400_and_invalidates_nothing(client: testing.TestClient, body: Any, code: str) -> None:
    put(client, "k", 1, tags="good")
    assert_error(client.simulate_post("/tags/invalidate", json=body), 400, code)
    assert_error(client.simulate_post("/tags/not%20good/invalidate"), 400, "invalid_tag")
    assert client.simulate_get("/cache/k").status_code == 200
    assert client.simulate_get("/stats").json["tag_invalidations"] == 0


def test_the_limits_come_from_the_settings(make_client: Callable[..., tuple[testing.TestClient, Cache]]) -> None:
    client, _ = make_client(max_tags_per_entry=2, max_tag_length=3, max_tags=2)
    assert_error(put(client, "k", 1, tags="a,b,c"), 400, "too_many_tags")
    assert_error(put(client, "k", 1, tags="abcd"), 400, "tag_too_long")
    put(client, "k", 1, tags="a,b")
    answer = put(client, "j", 1, tags="c")
    assert_error(answer, 507, "tag_limit_reached")
    assert answer.json["limit"] == 2 and client.simulate_get("/cache/j").status_code == 404


# -- delete by pattern ---------------------------------------------------------------------


def _finished(client: testing.TestClient, job_id: str) -> dict[str, Any]:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        status = client.simulate_get(f"/admin/delete-pattern/{job_id}").json
        if status["done"]:
            return status
        time.sleep(0.01)
    raise AssertionError(f"job {job_id} not done in 30 s")


def test_delete_pattern_is_a_job_that_deletes_only_the_matching_keys(
    cache_and_client: tuple[Cache, testing.TestClient],
) -> None:
    cache, client = cache_and_client
    cache.set_many({f"user:{n}": b"1" for n in range(5000)})
    cache.set_many({f"order:{n}": b"1" for n in range(100)})
    started = client.simulate_post("/admin/delete-pattern", json={"pattern": "user:*"})
    assert started.status_code == 202 and started.json["pattern"] == "user:*"
    status = _finished(client, started.json["id"])
    assert status["deleted"] == 5000 and status["error"] is None and status["slices"] > 1
    assert len(cache) == 100 and all(cache.get(f"order:{n}") for n in range(100))
    prefix = client.simulate_post("/admin/delete-pattern", json={"pattern": "order:1"})  # a prefix
    assert _finished(client, prefix.json["id"])["deleted"] == 11  # order:1 and order:10..19
    assert len(cache) == 89


@pytest.mark.parametrize(
    "body",
    [{"pattern": ""}, {"pattern": "user:[ab"}, {"pattern": 3}, {"pattern": "x" * 251}, {"glob": "user:*"}, ["user:*"]],
)
def test_a_bad_pattern_is_400_and_deletes_nothing(
    cache_and_client: tuple[Cache, testing.TestClient], body: Any
) -> None:
    cache, client = cache_and_client
    cache.set_many({f"user:{n}": b"1" for n in range(10)})
    assert_error(client.simulate_post("/admin/delete-pattern", json=body), 400, "invalid_pattern")
    assert len(cache) == 10


def test_an_unknown_job_is_404(client: testing.TestClient) -> None:
    assert_error(client.simulate_get("/admin/delete-pattern/nope"), 404, "job_not_found")


def test_delete_pattern_is_not_a_parameter_of_delete_cache(cache_and_client: tuple[Cache, testing.TestClient]) -> None:
    cache, client = cache_and_client
    cache.set("user:1", b"1")
    assert_error(client.simulate_delete("/cache", params={"pattern": "user:*"}), 400, "confirmation_required")
    assert len(cache) == 1


def test_invalidating_100_000_entries_answers_in_the_time_of_a_get(
    make_client: Callable[..., tuple[testing.TestClient, Cache]],
) -> None:
    client, cache = make_client(max_size=200_000)
    for start in range(0, 100_000, 1000):
        cache.set_many({f"user:{n}": b'{"a":1}' for n in range(start, start + 1000)}, tags=["users"])
    put(client, "admin", 1, tags="admins")
    get_time = median_seconds(lambda: client.simulate_get("/cache/admin"))
    # Each invalidation bumps the generation of a tag still held by 100,000 entries.
    invalidate_time = median_seconds(lambda: client.simulate_post("/tags/users/invalidate"))
    # Generous: a scan of 100,000 entries under the lock would take a hundred GETs' time or more.
    assert invalidate_time < 5 * get_time, (invalidate_time, get_time)
    assert cache.get_many([f"user:{n}" for n in range(100_000)]) == {}
    assert client.simulate_get("/cache/user:5").status_code == 404
    assert client.simulate_get("/cache/admin").json == 1
    assert client.simulate_get("/stats").json["tag_invalidated_entries"] == 100_000
