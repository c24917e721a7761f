"""``cachegrid.loadgen.keyspace``: the room a load test takes, its refusals,
and ``run_apart`` in-process against a real server."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator

import pytest

from cachegrid.engine.registry import POLICIES, store_class
from cachegrid.loadgen import LoadError, Plan, Refused, Target, keyspace, random_prefix, run_apart
from cachegrid.loadgen.keyspace import ENTRY_OVERHEAD, RESERVE, delete_keys, fit, room
from cachegrid.testing import ServerProcess as Server
from cachegrid.testing import running


def stats(current: int = 0, most: int = 1000, used: int = 0, limit: int = 1 << 20) -> dict:
    return {
        "current_size": current,
        "max_size": most,
        "memory_usage_bytes": used,
        "max_memory_bytes": limit,
        "evictions": 3,
        "policy": "lru",
    }


@pytest.mark.parametrize("policy", list(POLICIES))
def test_the_estimate_is_above_what_every_policy_charges(policy: str) -> None:
    store = store_class(policy)
    assert store.entry_overhead + store.ttl_overhead <= ENTRY_OVERHEAD


def test_the_room_is_the_smaller_of_items_and_bytes_less_the_reserve() -> None:
    plan = Plan(keyspace=10_000, value_size=32, prefix="p:")
    charge = len("p:9999") + 34 + ENTRY_OVERHEAD
    assert room(stats(current=100), plan).items == int(900 * (1 - RESERVE))
    by_bytes = room(stats(most=10**9, used=1000, limit=1000 + 100 * charge), plan)
    assert by_bytes.charge == charge and by_bytes.items == int(100 * charge * (1 - RESERVE)) // charge
    assert room(stats(current=2000), plan).items == 0  # over the limit already (a lowered max_size)


def test_fit_caps_or_refuses() -> None:
    plan = Plan(keyspace=500, batch=20, prefix="p:")
    same, reason = fit(plan, room(stats(), plan))
    assert same is plan and reason is None
    capped, reason = fit(plan, room(stats(current=800), plan))
    assert capped.keyspace == 180 and reason is not None and "180 keys of the 500 asked" in reason
    with pytest.raises(Refused, match="room for only 18 .* 20 needed"):
        fit(plan, room(stats(current=980), plan))  # fewer than the batch
    small = Plan(keyspace=3, prefix="p:")
    assert fit(small, room(stats(current=996), small))[0].keyspace == 3  # asked for 3, 3 fit


def test_random_prefixes() -> None:
    prefixes = {random_prefix() for _ in range(50)}
    assert len(prefixes) == 50 and all(re.fullmatch(r"loadtest:[0-9a-f]{8}:", p) for p in prefixes)
    for bad in ("", "a b", "a*", "a/b", "é", "x" * 65):
        with pytest.raises(ValueError):
            Plan(prefix=bad)


@pytest.fixture(scope="module")
def server() -> Iterator[Server]:
    with running("--max-size", "500", env={"CACHEGRID_MAX_BATCH_SIZE": "9"}, graceful=False) as started:
        yield started


def test_run_apart_leaves_the_server_as_it_was(server: Server) -> None:
    server.request("PUT", "/cache/greeting", "hello")
    report = run_apart(Target.parse(server.url), Plan(requests=300, concurrency=2, keyspace=100, prefix="ra:"))
    document = report.to_dict()
    assert document["requests"] == 300 and document["errors"] == 0
    assert document["keys_deleted"] == 100 and document["evictions_during_run"] == 0
    assert document["keyspace_capped"] is None
    after = json.loads(server.request("GET", "/stats")[2])
    assert after["current_size"] == 1 and after["evictions"] == 0
    assert json.loads(server.request("GET", "/cache/greeting")[2]) == "hello"


def test_deletes_follow_the_servers_batch_limit(server: Server) -> None:
    for n in range(25):
        server.request("PUT", f"/cache/del:{n}", n)
    assert delete_keys(Target.parse(server.url), Plan(keyspace=30, prefix="del:")) == 25


def test_a_failed_run_still_deletes_and_says_so(server: Server, monkeypatch: pytest.MonkeyPatch) -> None:
    def fill_then_fail(target: Target, plan: Plan, on_progress: object = None) -> None:
        server.request("PUT", f"/cache/{plan.prefix}0", 1)
        raise LoadError("load worker 0 failed: boom")

    monkeypatch.setattr(keyspace, "run", fill_then_fail)
    with pytest.raises(LoadError, match="boom; its keys under 'fail:' were deleted"):
        run_apart(Target.parse(server.url), Plan(keyspace=5, prefix="fail:"))
    assert json.loads(server.request("GET", "/admin/keys?pattern=fail:")[2])["keys"] == []
