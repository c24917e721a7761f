"""The near cache without a server (client/near.py): a fake clock, fake
answers and fake stream events fed through ``stream_live``, ``stream_lost``
and ``stream_event`` (what a stream reader calls)."""

from __future__ import annotations

import os
import statistics
import sys
import time
from typing import Any

import orjson
import pytest

from cachegrid.client import near as near_module
from cachegrid.client.near import NearCache, cacheable
from cachegrid.testing import FakeClock

NODE = "http://127.0.0.1:1"
OTHER = "http://127.0.0.1:2"
JSON_HEADERS = {"X-Cache-Type": "json", "Content-Type": "application/json"}


def make(**options: Any) -> tuple[NearCache, FakeClock]:
    clock = FakeClock()
    near = NearCache(clock=clock, wall_clock=lambda: 5000.0, **options)
    near.stream_live(NODE)
    near.stream_live(OTHER)
    return near, clock


def store(near: NearCache, key: str, value: Any = None, node: str = NODE, **headers: str) -> None:
    ticket = near.reserve(key, node)
    assert ticket is not None
    near.fill(ticket, 200, JSON_HEADERS | headers, orjson.dumps(value if value is not None else {"k": key}))


def test_a_filled_answer_is_a_hit_and_a_miss_before() -> None:
    near, _ = make()
    assert near.lookup("a") == (False, None)
    store(near, "a", {"x": [1, 2]})
    assert near.lookup("a") == (True, {"x": [1, 2]})
    stats = near.stats()
    assert (stats["hits"], stats["misses"], stats["entries"]) == (1, 1, 1)
    assert stats["bytes"] == len(b'{"x":[1,2]}') + 1


def test_a_returned_value_can_be_mutated_without_changing_the_copy() -> None:
    near, _ = make()
    store(near, "a", {"x": [1, 2]})
    first = near.lookup("a")[1]
    first["x"].append(3)
    first["y"] = 1
    assert near.lookup("a") == (True, {"x": [1, 2]})


def test_binary_values_are_returned_as_bytes() -> None:
    near, _ = make()
    ticket = near.reserve("b", NODE)
    near.fill(ticket, 200, {"x-cache-type": "binary", "content-type": "application/octet-stream"}, b"\x00\xff")
    assert near.lookup("b") == (True, b"\x00\xff")
    # Known by its Content-Type alone too (lower-case names, as a lean transport gives them).
    ticket = near.reserve("c", NODE)
    near.fill(ticket, 200, {"content-type": "application/octet-stream"}, bytearray(b"\x01"))
    assert near.lookup("c") == (True, b"\x01")


@pytest.mark.parametrize(
    ("status", "headers"),
    [
        (404, JSON_HEADERS),
        (304, JSON_HEADERS),
        (200, JSON_HEADERS | {"X-Cache-Stale": "true"}),
        (200, {"Content-Type": "text/html"}),
        (200, {}),
        (200, JSON_HEADERS | {"X-Cache-TTL": "0.000"}),
        (200, JSON_HEADERS | {"X-Cache-TTL": "nan"}),
        (200, JSON_HEADERS | {"X-Cache-TTL": "soon"}),
    ],
)
def test_answers_that_are_not_cached(status: int, headers: dict[str, str]) -> None:
    near, _ = make()
    near.fill(near.reserve("a", NODE), status, headers, b"1")
    assert near.lookup("a") == (False, None)
    assert near.stats()["entries"] == 0


def test_a_local_entry_lives_at_most_the_server_ttl_and_max_ttl() -> None:
    near, clock = make(max_ttl=10.0)
    store(near, "short", **{"X-Cache-TTL": "2.500"})
    store(near, "long", **{"X-Cache-TTL": "3600.000"})
    store(near, "forever")  # no TTL on the server: max_ttl
    clock.tick(2.4)
    assert near.lookup("short")[0]
    clock.tick(0.2)
    assert near.lookup("short") == (False, None)
    clock.tick(7.3)
    assert near.lookup("long")[0] and near.lookup("forever")[0]
    clock.tick(0.2)
    assert near.lookup("long") == (False, None) and near.lookup("forever") == (False, None)
    assert near.stats()["entries"] == 0


def test_bounded_by_entries_least_recently_used_first() -> None:
    near, _ = make(max_entries=3)
    for key in "abc":
        store(near, key)
    assert near.lookup("a")[0]  # a is now the most recent: b goes first
    store(near, "d")
    assert [near.lookup(key)[0] for key in "abcd"] == [True, False, True, True]
    assert near.stats()["entries"] == 3


def test_bounded_by_bytes() -> None:
    near, _ = make(max_bytes=100)
    for key in "abcd":
        store(near, key, "x" * 28)  # 30 bytes of JSON + 1 of key each
    assert near.stats()["entries"] == 3 and near.stats()["bytes"] == 93
    assert near.lookup("a") == (False, None)
    store(near, "huge", "x" * 200)  # larger than the whole cache: never stored, nothing evicted for it
    assert near.lookup("huge") == (False, None)
    assert near.stats()["entries"] == 3


def test_a_refill_replaces_the_entry_and_its_bytes() -> None:
    near, _ = make()
    store(near, "a", "x" * 10, **{"X-Cache-Tags": "t1"})
    store(near, "a", "y", **{"X-Cache-Tags": "t2"})
    assert near.lookup("a") == (True, "y")
    assert near.stats()["bytes"] == len(b'"y"') + 1
    near.stream_event(NODE, "invalidate", {"tag": "t1"})  # the old tag no longer names it
    assert near.lookup("a") == (True, "y")


def test_key_events_drop_the_key_whichever_node_sent_them() -> None:
    near, _ = make()
    for kind, key in [("set", "a"), ("delete", "b"), ("expire", "c"), ("evict", "d")]:
        store(near, key)
        near.stream_event(OTHER, kind, {"key": key, "time": 4999.5})
        assert near.lookup(key) == (False, None), kind
    stats = near.stats()
    assert stats["invalidations"] == 4 and stats["last_event_delay"] == 0.5


def test_tag_events_drop_every_entry_with_the_tag() -> None:
    near, _ = make()
    store(near, "a", **{"X-Cache-Tags": "t1,t2"})
    store(near, "b", **{"x-cache-tags": "t2"})
    store(near, "c", **{"X-Cache-Tags": "t3"})
    store(near, "d")
    near.stream_event(NODE, "invalidate", {"tag": "t2"})
    assert [near.lookup(key)[0] for key in "abcd"] == [False, False, True, True]
    near.forget_tags(["t3"])
    assert near.lookup("c") == (False, None)


def test_clear_and_restore_drop_only_that_nodes_entries() -> None:
    near, _ = make()
    store(near, "a", node=NODE)
    store(near, "b", node=OTHER)
    near.stream_event(NODE, "clear", {"key": None})
    assert near.lookup("a") == (False, None) and near.lookup("b")[0]
    store(near, "a", node=NODE)
    near.stream_event(OTHER, "reset", {"key": None})
    assert near.lookup("a")[0] and near.lookup("b") == (False, None)


def test_unknown_event_kinds_still_drop_what_they_name() -> None:
    near, _ = make()
    store(near, "a")
    near.stream_event(NODE, "touch", {"key": "a"})
    assert near.lookup("a") == (False, None)
    near.stream_event(NODE, "noise", {})  # names nothing: nothing to drop
    assert near.stats()["invalidations"] == 1


def test_a_lost_stream_drops_its_entries_and_reads_pass_through_until_it_is_back() -> None:
    near, _ = make()
    store(near, "a", node=NODE)
    store(near, "b", node=OTHER)
    near.stream_lost(NODE)
    assert near.lookup("a") == (False, None) and near.lookup("b")[0]
    assert near.reserve("a", NODE) is None
    assert near.stats()["resets"] == 1 and near.stats()["streams_live"] == 1
    near.stream_live(NODE)
    store(near, "a", node=NODE)
    assert near.lookup("a")[0]


def test_the_clients_own_writes_drop_at_once() -> None:
    near, _ = make()
    store(near, "a")
    store(near, "b")
    near.forget("a")
    assert near.lookup("a") == (False, None) and near.lookup("b")[0]
    near.forget_all()
    assert near.lookup("b") == (False, None) and near.stats()["bytes"] == 0


# -- the fill race, step by step ----------------------------------------------------------


@pytest.mark.parametrize(
    "between",
    [
        lambda near: near.stream_event(OTHER, "set", {"key": "a"}),
        lambda near: near.stream_event(NODE, "delete", {"key": "a"}),
        lambda near: near.stream_event(NODE, "invalidate", {"tag": "whatever"}),
        lambda near: near.stream_event(NODE, "clear", {"key": None}),
        lambda near: near.stream_lost(NODE),
        lambda near: (near.stream_lost(NODE), near.stream_live(NODE)),  # lost and back: still a gap
        lambda near: near.forget("a"),
        lambda near: near.forget_tags(["t"]),
        lambda near: near.forget_all(),
    ],
    ids=["set", "delete", "tag", "clear", "lost", "lost-and-back", "forget", "forget_tags", "forget_all"],
)
def test_an_invalidation_while_a_read_is_in_flight_wins(between: Any) -> None:
    """The read is reserved and sent; the server answers with the old value
    after the change's event was handled here: the old value is not stored."""
    near, _ = make()
    ticket = near.reserve("a", NODE)
    between(near)
    near.fill(ticket, 200, JSON_HEADERS, b'"old"')
    assert near.lookup("a") == (False, None)
    # The next read, reserved after the change (and the stream back), is stored.
    near.stream_live(NODE)
    store(near, "a", "new")
    assert near.lookup("a") == (True, "new")


def test_events_of_other_keys_or_nodes_do_not_cancel_a_fill() -> None:
    near, _ = make()
    ticket = near.reserve("a", NODE)
    near.stream_event(NODE, "set", {"key": "b"})
    near.stream_event(OTHER, "clear", {"key": None})
    near.stream_lost(OTHER)
    near.fill(ticket, 200, JSON_HEADERS, b"1")
    assert near.lookup("a") == (True, 1)


def test_two_reads_in_flight_an_event_cancels_both_and_a_ticket_fills_once() -> None:
    near, _ = make()
    first, second = near.reserve("a", NODE), near.reserve("a", NODE)
    near.stream_event(NODE, "set", {"key": "a"})
    third = near.reserve("a", NODE)
    near.fill(third, 200, JSON_HEADERS, b"3")
    near.fill(first, 200, JSON_HEADERS, b"1")
    near.fill(second, 200, JSON_HEADERS, b"2")
    assert near.lookup("a") == (True, 3)
    near.forget("a")
    near.fill(third, 200, JSON_HEADERS, b"3")  # used already: nothing
    assert near.lookup("a") == (False, None)


def test_pending_reservations_stay_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(near_module, "MAX_PENDING", 8)
    near, _ = make()
    tickets = [near.reserve(f"k{i}", NODE) for i in range(20)]  # never filled
    assert len(near._pending) <= 8
    near.cancel(tickets[-1])
    assert near._pending.get("k19") is None
    same = [near.reserve("x", NODE) for _ in range(20)]
    assert len(near._pending["x"]) <= 8
    near.fill(same[-1], 200, JSON_HEADERS, b"1")
    assert near.lookup("x") == (True, 1)


def test_cacheable_reads_the_headers() -> None:
    assert cacheable(200, JSON_HEADERS | {"X-Cache-TTL": "5", "X-Cache-Tags": "a, b,"}, 60) == (False, 5.0, ("a", "b"))
    assert cacheable(200, {"X-Cache-Type": "binary"}, 60) == (True, 60, ())


# -- fork -------------------------------------------------------------------------------


def test_after_fork_the_child_starts_empty_with_no_readers() -> None:
    near, _ = make()
    store(near, "a")
    near._readers[NODE] = object()  # type: ignore[assignment]  # (a reader as the parent had one)
    near_module._after_fork_in_child()  # what os.register_at_fork runs in a child
    assert near.lookup("a") == (False, None)
    assert near.reserve("a", NODE) is None  # no stream in the child until it watches
    assert near._readers == {} and near.stats()["streams_live"] == 0
    assert near.stats()["hits"] == 0


@pytest.mark.skipif(not hasattr(os, "fork"), reason="fork only")
def test_after_a_real_fork_the_child_holds_nothing() -> None:
    near, _ = make()
    store(near, "a")
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: report and leave at once
        try:
            result = f"{near.lookup('a')[0]} {near.reserve('a', NODE) is None} {near.stats()['entries']}"
            os.write(write, result.encode())
        finally:
            os._exit(0)
    os.close(write)
    answer = os.read(read, 100).decode()
    os.close(read)
    os.waitpid(pid, 0)
    assert answer == "False True 0"
    assert near.lookup("a")[0]  # the parent keeps its own


def test_a_closed_near_cache_stores_nothing() -> None:
    near, _ = make()
    store(near, "a")
    near.close()
    assert near.lookup("a") == (False, None) and near.reserve("a", NODE) is None
    near.stream_live(NODE)
    assert near.reserve("a", NODE) is None


def test_bad_bounds_are_refused() -> None:
    with pytest.raises(ValueError):
        NearCache(max_entries=0)
    with pytest.raises(ValueError):
        NearCache(max_ttl=float("nan"))


def test_lookup_hit_micro_benchmark() -> None:
    """A figure, printed, not asserted: a hit's median and p99 over 100k calls."""
    near = NearCache()
    near.stream_live(NODE)
    near.fill(near.reserve("user:42", NODE), 200, JSON_HEADERS, orjson.dumps({"id": 42, "name": "Ada", "tags": [1, 2]}))
    lookup, clock = near.lookup, time.perf_counter_ns
    samples = []
    for _ in range(100_000):
        start = clock()
        lookup("user:42")
        samples.append(clock() - start)
    samples.sort()
    median, p99 = statistics.median(samples) / 1000, samples[int(len(samples) * 0.99)] / 1000
    print(f"\nnear cache lookup hit: median {median:.2f} us, p99 {p99:.2f} us", file=sys.stderr)
    assert near.stats()["hits"] == 100_000
    body, reserve, fill = orjson.dumps({"id": 42}), near.reserve, near.fill
    samples = []
    for i in range(20_000):  # what a miss adds around its request: reserve, then fill
        start = clock()
        fill(reserve(f"k{i % 100}", NODE), 200, JSON_HEADERS, body)
        samples.append(clock() - start)
    samples.sort()
    print(f"near cache reserve + fill: median {statistics.median(samples) / 1000:.2f} us", file=sys.stderr)


def test_a_ring_change_drops_only_the_nodes_entries() -> None:
    near, _ = make()
    store(near, "a", node=NODE)
    store(near, "b", node=OTHER)
    pending = near.reserve("c", NODE)
    near.forget_node(NODE)
    near.fill(pending, 200, JSON_HEADERS, b"1")
    assert [near.lookup(key)[0] for key in "abc"] == [False, True, False]
    assert near.reserve("c", NODE) is not None  # its stream is still followed
    near.unwatch(OTHER)
    assert near.lookup("b") == (False, None) and near.reserve("b", OTHER) is None
