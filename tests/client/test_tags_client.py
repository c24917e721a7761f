"""Tags and delete by pattern through both clients, against real servers:
one node, and a cluster of two where invalidation and delete-by-pattern
reach every node."""

from __future__ import annotations

import itertools
from collections.abc import Iterator

import pytest

from cachegrid.client import RequestError, SyncCacheGridClient
from cachegrid.testing import ServerProcess as Server
from cachegrid.testing import running

from .callers import address, make_caller

_unique = itertools.count()


@pytest.fixture
def prefix() -> str:
    return f"tags{next(_unique)}:"


def test_set_with_tags_then_invalidate(kind: str, live: Server, prefix: str) -> None:
    call, _ = make_caller(kind, [address(live)])
    assert call("set", prefix + "a", {"n": 1}, tags=[prefix + "page", prefix + "user"])
    assert call("set", prefix + "b", 2, tags=prefix + "page")  # one string is one tag
    assert call("set_multi", {prefix + "c": 3, prefix + "d": 4}, tags=[prefix + "batch"])
    call("set", prefix + "e", 5)
    assert call("invalidate_tags", [prefix + "page"]) == 1
    assert call("get_multi", [prefix + k for k in "abcde"]) == {prefix + "c": 3, prefix + "d": 4, prefix + "e": 5}
    assert call("invalidate_tags", [prefix + "batch", prefix + "unused"]) == 1
    assert call("get", prefix + "c") is None and call("get", prefix + "e") == 5


def test_bad_tags_are_refused_by_the_server(kind: str, live: Server, prefix: str) -> None:
    call, _ = make_caller(kind, [address(live)])
    call("set", prefix + "k", "old")
    for tags, code in (
        ([f"t{n}" for n in range(33)], "too_many_tags"),
        (["x" * 129], "tag_too_long"),
        (["no spaces"], "invalid_tag"),
    ):
        with pytest.raises(RequestError) as raised:
            call("set", prefix + "k", "new", tags=tags)
        assert raised.value.status == 400 and raised.value.code == code
    assert call("get", prefix + "k") == "old"


def test_delete_pattern_waits_for_the_job_and_returns_the_count(kind: str, live: Server, prefix: str) -> None:
    call, _ = make_caller(kind, [address(live)])
    call("set_multi", {f"{prefix}user:{n}": n for n in range(300)})
    call("set", prefix + "other", 1)
    assert call("delete_pattern", prefix + "user:*") == 300
    assert call("keys", prefix) == [prefix + "other"]
    with pytest.raises(RequestError) as raised:
        call("delete_pattern", prefix + "[unclosed")
    assert raised.value.status == 400 and raised.value.code == "invalid_pattern"


@pytest.fixture(scope="module")
def two_nodes() -> Iterator[list[Server]]:
    with running(graceful=False) as first, running(graceful=False) as second:
        yield [first, second]


def test_a_cluster_invalidates_and_deletes_on_every_node(kind: str, two_nodes: list[Server], prefix: str) -> None:
    call, _ = make_caller(kind, [address(node) for node in two_nodes])
    keys = [f"{prefix}{n}" for n in range(200)]
    call("set_multi", dict.fromkeys(keys, 1), tags=[prefix + "all"])
    for node in two_nodes:  # the keys are spread: each node holds some of them
        alone = SyncCacheGridClient([address(node)])
        assert alone.keys(prefix, limit=None)
        alone.close()
    assert call("invalidate_tags", [prefix + "all"]) == 2  # in use on both
    assert call("get_multi", keys) == {}
    call("set_multi", dict.fromkeys(keys, 2))
    assert call("delete_pattern", prefix) == 200
    assert call("keys", prefix, limit=None) == []


def test_get_or_set_stores_the_computed_value_with_its_tags(kind: str, live: Server, prefix: str) -> None:
    call, _ = make_caller(kind, [address(live)])
    computed = []

    def compute() -> int:
        computed.append(1)
        return len(computed)

    assert call("get_or_set", prefix + "k", compute, ttl=60, tags=[prefix + "group"]) == 1
    assert call("get_or_set", prefix + "k", compute, ttl=60, tags=[prefix + "group"]) == 1  # a hit
    call("invalidate_tags", [prefix + "group"])
    assert call("get_or_set", prefix + "k", compute, ttl=60, tags=[prefix + "group"]) == 2  # computed again
