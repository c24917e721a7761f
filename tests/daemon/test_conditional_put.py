"""Conditional PUTs are one engine call: the condition is checked under the
engine's lock with the write, so a PUT whose condition fails reads nothing
(no hit, no miss) and changes no recency."""

from __future__ import annotations

import pytest
from falcon import testing

from cachegrid.engine import Cache

from .test_api import MakeClient, assert_error, put


def counts(client: testing.TestClient) -> tuple[int, int]:
    stats = client.simulate_get("/stats").json
    return stats["hits"], stats["misses"]


def lru_of_two(make_client: MakeClient) -> tuple[testing.TestClient, Cache, dict[str, str]]:
    """An LRU cache of two entries holding "old" then "new": "old" goes next."""
    client, cache = make_client(eviction_policy="lru", max_size=2)
    etags = {key: put(client, key, key).headers["etag"] for key in ("old", "new")}
    return client, cache, etags


def failing_conditions(etags: dict[str, str]) -> list[dict[str, str]]:
    return [
        {"If-None-Match": etags["old"]},  # still at that version
        {"If-None-Match": f'"elsewhere-1", {etags["old"]}'},
        {"If-Match": f'"elsewhere-1", {etags["new"]}'},  # several ETags, none of them old's
        {"If-Match": '"elsewhere-1"'},
        {"If-None-Match": "*"},  # it exists
    ]


@pytest.mark.parametrize("case", range(5))
def test_a_failed_conditional_put_counts_no_read_and_keeps_the_lru_order(make_client: MakeClient, case: int) -> None:
    client, cache, etags = lru_of_two(make_client)
    before = counts(client)
    result = put(client, "old", "changed", headers=failing_conditions(etags)[case])
    assert_error(result, 412, "precondition_failed")
    assert counts(client) == before
    put(client, "third", 3)  # evicts the least recently used
    assert not cache.exists("old") and cache.exists("new") and cache.exists("third")
    assert cache.stats()["evictions"] == 1


def test_a_read_does_bump_the_lru_order(make_client: MakeClient) -> None:
    # The observation above can tell: a GET of "old" makes "new" the one to go.
    client, cache, _ = lru_of_two(make_client)
    client.simulate_get("/cache/old")
    put(client, "third", 3)
    assert cache.exists("old") and not cache.exists("new")


@pytest.mark.parametrize("header", ["If-Match", "If-None-Match"])
def test_a_conditional_put_that_holds_writes_once_and_counts_no_read(make_client: MakeClient, header: str) -> None:
    client, cache, etags = lru_of_two(make_client)
    current = etags["old"] if header == "If-Match" else '"elsewhere-1"'
    before = counts(client)
    result = put(client, "old", "changed", headers={header: f'"nonsense", {current}'})
    assert result.status_code == 200 and result.headers["etag"] != etags["old"]
    assert counts(client) == before
    assert cache.stats()["sets"] == 3
    assert cache.get("old") == b'"changed"'


def test_if_none_match_with_an_older_etag_replaces(client: testing.TestClient) -> None:
    first = put(client, "k", 1).headers["etag"]
    put(client, "k", 2)
    assert put(client, "k", 3, headers={"If-None-Match": first}).status_code == 200
    assert client.simulate_get("/cache/k").json == 3


def test_if_none_match_etags_on_a_missing_key_store_it(client: testing.TestClient) -> None:
    result = put(client, "k", 1, headers={"If-None-Match": '"elsewhere-1"'})
    assert result.status_code == 201
    assert client.simulate_get("/cache/k").json == 1
