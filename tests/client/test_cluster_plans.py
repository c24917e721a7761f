"""The sharded router's plans driven step by step with the answers a node
would give (no process, no transport): what each step sends, and what the
router makes of failures, misses and hits. The same behaviours against real
nodes are in tests/integration/test_cluster.py."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from typing import Any

import pytest

from cachegrid.client import (
    CacheGridConnectionError,
    CacheGridTimeoutError,
    RequestError,
    SyncCacheGridClient,
    Unavailable,
)
from cachegrid.client.cluster import REPAIR_PAUSE, Sharded, merge_stats
from cachegrid.client.protocol import (
    Answer,
    Call,
    ConnectTimedOut,
    MaybeSent,
    NotSent,
    Plan,
    TimedOut,
    copy_call,
    get_call,
)

HOSTS = ["127.0.0.1:7001", "127.0.0.1:7002", "127.0.0.1:7003"]
Reply = Callable[[str, Call], Any]


def drive(plan: Plan, reply: Reply) -> tuple[Any, list[list[tuple[str, Call]]]]:
    """Run ``plan``, answering each request with ``reply(host, call)``; the
    result and every step's requests."""
    steps = []
    try:
        _, sends = next(plan)
        while True:
            steps.append(sends)
            _, sends = plan.send([reply(host, call) for host, call in sends])
    except StopIteration as done:
        return done.value, steps


MISS_BODY = b'{"error": "not_found", "message": "no such key: \'k\'", "key": "k"}'


def answer(status: int, body: bytes | None = None, **headers: str) -> Answer:
    """An answer; a 404 without a body is CacheGrid's miss (which names its key)."""
    if body is None:
        body = MISS_BODY if status == 404 else b"{}"
    return Answer(status, body, {name.replace("_", "-"): value for name, value in headers.items()})


def router(replicas: int = 2) -> tuple[Sharded, SyncCacheGridClient]:
    client = SyncCacheGridClient(HOSTS, replicas=replicas, cooldown=30.0)
    assert isinstance(client.router, Sharded)
    return client.router, client


def test_a_hit_on_a_later_replica_repairs_the_earlier_one() -> None:
    sharded, client = router()
    first, second = client.node_for("k")

    def reply(host: str, call: Call) -> Any:
        if call.method == "PUT":
            return answer(201)
        return (
            answer(404) if host == first else answer(200, b'"v"', X_Cache_TTL="41.500", Content_Type="application/json")
        )

    value, steps = drive(sharded.read("k", get_call("k"), repair=True), reply)
    assert value == "v"
    assert [[host for host, _ in step] for step in steps] == [[first], [second], [first]]
    repair = steps[2][0][1]
    assert repair.method == "PUT" and repair.params == {"ttl": "41.500"} and repair.body == b'"v"'
    assert repair.headers["If-None-Match"] == "*"


def test_a_refused_repair_is_quiet_and_paused_for_a_while() -> None:
    """A read-only token's repair is refused (403): the read still answers,
    the refusal is not retried, and no repair is tried again until
    REPAIR_PAUSE has passed (then once more: the ACL may have changed)."""
    now = [1000.0]
    client = SyncCacheGridClient(HOSTS, replicas=2, cooldown=30.0)
    sharded = client.router
    assert isinstance(sharded, Sharded)
    sharded.pool.clock = lambda: now[0]
    first, second = client.node_for("k")

    def reply(host: str, call: Call) -> Any:
        if call.method == "PUT":
            return answer(403, b'{"error": "forbidden", "message": "lacks write", "permission": "write"}')
        return answer(404) if host == first else answer(200, b'"v"', Content_Type="application/json")

    value, steps = drive(sharded.read("k", get_call("k"), repair=True), reply)
    assert value == "v" and [[host for host, _ in step] for step in steps] == [[first], [second], [first]]
    assert not sharded.pool.cooling(first, now[0])  # a refusal is an answer, not a failing node
    value, steps = drive(sharded.read("k", get_call("k"), repair=True), reply)
    assert value == "v" and [[host for host, _ in step] for step in steps] == [[first], [second]]
    now[0] += REPAIR_PAUSE
    _, steps = drive(sharded.read("k", get_call("k"), repair=True), reply)
    assert [[host for host, _ in step] for step in steps] == [[first], [second], [first]]


def test_read_repair_copies_a_binary_value_as_binary() -> None:
    sharded, client = router()
    first, second = client.node_for("k")
    value_bytes = bytes(range(256))

    def reply(host: str, call: Call) -> Any:
        if call.method == "PUT":
            return answer(201)
        return (
            answer(404)
            if host == first
            else answer(200, value_bytes, Content_Type="application/octet-stream", X_Cache_Type="binary")
        )

    value, steps = drive(sharded.read("k", get_call("k"), repair=True), reply)
    assert value == value_bytes and type(value) is bytes
    repair = steps[2][0][1]
    assert repair.method == "PUT" and repair.body == value_bytes
    assert repair.headers["Content-Type"] == "application/octet-stream"


def test_a_miss_on_every_replica_is_a_miss_not_an_error() -> None:
    sharded, client = router()
    value, steps = drive(sharded.read("k", get_call("k", "default"), repair=True), lambda h, c: answer(404))
    assert value == "default" and len(steps) == 2  # R nodes asked, no repair


def test_a_failed_node_cools_down_and_its_keys_go_to_the_next_node() -> None:
    sharded, client = router(replicas=1)
    home = client.node_for("k")[0]
    value, steps = drive(
        sharded.read("k", get_call("k")), lambda h, c: NotSent("refused") if h == home else answer(200, b"1")
    )
    assert value == 1 and steps[0][0][0] == home and steps[1][0][0] != home
    assert home not in client.node_for("k")  # skipped while it cools down
    # Later calls do not ask it at all.
    _, later = drive(sharded.read("k", get_call("k")), lambda h, c: answer(200, b"1"))
    assert [host for step in later for host, _ in step] == [client.node_for("k")[0]]


def test_unavailable_only_when_every_candidate_failed() -> None:
    sharded, _ = router()
    with pytest.raises(Unavailable) as raised:
        drive(sharded.read("k", get_call("k")), lambda h, c: answer(503))
    assert len(raised.value.errors) == 3


def test_a_write_goes_to_r_nodes_and_a_failed_one_is_replaced() -> None:
    sharded, client = router()
    first, second = client.node_for("k")
    call = Call("PUT", "/cache/k", lambda s, b: s)
    result, steps = drive(sharded.write("k", call), lambda h, c: MaybeSent("reset") if h == second else answer(201))
    third = next(host for host in client.hosts if host not in (first, second))
    assert result == 201
    assert sorted(host for host, _ in steps[0]) == sorted([first, second]) and steps[1] == [(third, call)]


def test_a_counter_that_may_have_been_applied_is_not_repeated() -> None:
    sharded, _ = router()
    call = Call("POST", "/cache/n/incr", lambda s, b: s, idempotent=False)
    with pytest.raises(Unavailable, match="may or may not"):
        drive(sharded.counter("n", call), lambda h, c: MaybeSent("timed out"))


def test_the_cursor_holds_every_node_and_refuses_another_clusters() -> None:
    sharded, _ = router(replicas=1)
    pages = {
        host: {"keys": [f"{host}-a"], "cursor": None if host.endswith("7002") else "e.1"} for host in sharded.pool.hosts
    }
    page, _ = drive(sharded.scan(None, 30, None), lambda h, c: answer(200, json.dumps(pages[h]).encode()))
    assert page["count"] == 3 and page["cursor"].startswith("c1.")
    _, steps = drive(sharded.scan(None, 30, page["cursor"]), lambda h, c: answer(200, b'{"keys": [], "cursor": null}'))
    assert sorted(host for host, _ in steps[0]) == sorted(h for h in sharded.pool.hosts if not h.endswith("7002"))
    assert all(call.params["cursor"] == "e.1" and call.params["limit"] == "15" for _, call in steps[0])
    finished = "c1." + base64.urlsafe_b64encode(b"[null,null,null]").decode()
    assert drive(sharded.scan(None, 30, finished), lambda h, c: answer(200)) == (
        {"keys": [], "count": 0, "cursor": None, "pattern": None},
        [],
    )
    with pytest.raises(RequestError) as raised:
        drive(sharded.scan(None, 30, "not-a-cursor"), lambda h, c: answer(200))
    assert raised.value.code == "invalid_cursor"


def test_stats_are_summed_with_ratios_recomputed() -> None:
    one = {
        "hits": 3,
        "misses": 1,
        "current_size": 10,
        "hit_ratio": 0.75,
        "uptime_seconds": 50.0,
        "memory_usage_bytes": 2**20,
        "memory_usage_mb": 1.0,
        "policy": "lru",
        "node_id": "a",
    }
    two = {**one, "hits": 1, "misses": 3, "hit_ratio": 0.25, "uptime_seconds": 5.0, "node_id": "b"}
    total = merge_stats({"x": one, "y": two}, {"z": "NotSent: refused"})
    assert total["hits"] == 4 and total["current_size"] == 20 and total["hit_ratio"] == 0.5
    assert total["uptime_seconds"] == 5.0 and total["memory_usage_mb"] == 2.0
    assert total["policy"] == "lru" and total["node_id"] is None
    assert total["nodes_up"] == 2 and total["nodes"]["z"] == {"down": True, "error": "NotSent: refused"}


def test_an_entry_copy_carries_its_ttl_and_never_copies_an_expired_one() -> None:
    copy = copy_call("k", answer(200, b"1", X_Cache_TTL="9.000"), overwrite=True)
    assert copy is not None and copy.params == {"ttl": "9.000"} and "If-None-Match" not in copy.headers
    assert copy_call("k", answer(200, b"1", X_Cache_TTL="0.000"), overwrite=False) is None
    forever = copy_call("k", answer(200, b"1"), overwrite=False)
    assert forever is not None and forever.params is None


def test_client_options_are_checked() -> None:
    for options in ({"replicas": 0}, {"replicas": 1.5}, {"ring": "md5"}):
        with pytest.raises(ValueError):
            SyncCacheGridClient(HOSTS, **options)
    assert SyncCacheGridClient(HOSTS, replicas=5).replicas == 3  # no more copies than nodes
    assert SyncCacheGridClient(HOSTS, sharding=False).replicas == 1


# -- which Unavailable an outage raises, and keys() as a list over pages ----------------


@pytest.mark.parametrize("sharding", [True, False])
@pytest.mark.parametrize(
    ("failures", "connection", "timeout"),
    [
        ([ConnectTimedOut("connect timed out"), TimedOut("read timed out")], False, True),
        ([NotSent("refused"), TimedOut("read timed out")], True, False),
        ([MaybeSent("reset")], True, False),
        ([NotSent("refused"), answer(503)], False, False),
        ([answer(500)], False, False),
    ],
)
def test_the_outage_says_why(sharding: bool, failures: list[Any], connection: bool, timeout: bool) -> None:
    client = SyncCacheGridClient(HOSTS[: len(failures)], max_retries=len(failures) - 1, sharding=sharding)
    outcomes = iter(failures)
    with pytest.raises(Unavailable) as raised:
        drive(client.router.read("k", get_call("k")), lambda h, c: next(outcomes))
    assert isinstance(raised.value, CacheGridConnectionError) is connection
    assert isinstance(raised.value, CacheGridTimeoutError) is timeout


def test_keys_is_a_list_over_short_pages_and_stops_at_the_limit() -> None:
    client = SyncCacheGridClient(HOSTS[:1])
    pages = iter(
        [
            {"keys": ["a", "b"], "cursor": "1"},
            {"keys": [], "cursor": "2"},
            {"keys": ["c", "d", "e"], "cursor": "3"},
            {"keys": ["f"], "cursor": None},
        ]
    )
    listed, steps = drive(client._key_list(None, 4), lambda h, c: answer(200, json.dumps(next(pages)).encode()))
    assert listed == ["a", "b", "c", "d"]
    assert [step[0][1].params for step in steps] == [
        {"limit": "4"},
        {"limit": "2", "cursor": "1"},
        {"limit": "2", "cursor": "2"},
    ]
    pages = iter([{"keys": ["a"], "cursor": "1"}, {"keys": ["b"], "cursor": None}])
    listed, steps = drive(client._key_list("p:", None), lambda h, c: answer(200, json.dumps(next(pages)).encode()))
    assert listed == ["a", "b"] and steps[0][0][1].params == {"limit": "1000", "pattern": "p:"}


def test_fail_open_answers_the_absent_value_and_lets_refusals_through() -> None:
    client = SyncCacheGridClient(HOSTS[:1], max_retries=0, fail_open=True)
    assert drive(client._or("absent", client.router.read("k", get_call("k"))), lambda h, c: NotSent("x"))[0] == "absent"
    with pytest.raises(RequestError):
        drive(
            client._or("absent", client.router.read("k", get_call("k"))),
            lambda h, c: answer(400, b'{"error": "invalid_key", "message": "no"}'),
        )
    closed = SyncCacheGridClient(HOSTS[:1], max_retries=0)
    with pytest.raises(Unavailable):
        drive(closed._or("absent", closed.router.read("k", get_call("k"))), lambda h, c: NotSent("x"))
