"""GET /events in process (daemon/events.py): the wire format, resuming,
filters, the bounded queues and the limits. Streams are read through the
WSGI app directly, one chunk at a time, so no read waits unbounded; the
same against real servers of both workers is in
tests/integration/test_events.py."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from falcon import testing

from cachegrid.config import Settings
from cachegrid.daemon import build_cache, create_app
from cachegrid.daemon.events import EventHub, close_all
from cachegrid.engine import Cache
from cachegrid.testing import FakeClock


def parse(chunk: bytes) -> list[dict[str, Any]]:
    """The events (id, event, data) of a chunk of the stream; comments as {"comment": ...}."""
    events = []
    for block in chunk.decode().split("\n\n"):
        if not block:
            continue
        if block.startswith(":"):
            events.append({"comment": block[1:].strip()})
            continue
        fields = dict(line.split(": ", 1) for line in block.split("\n"))
        data = json.loads(fields["data"])
        if fields["event"] != "reset":  # every change carries its time (checked by its own test)
            assert isinstance(data.pop("time"), float)
        events.append({"id": fields["id"], "event": fields["event"], "data": data})
    return events


def hub_of(**settings: Any) -> tuple[EventHub, Cache]:
    config = Settings(node_id="test-node", **settings)
    cache = build_cache(config, FakeClock())
    return EventHub(cache, config), cache


def test_every_change_carries_the_wall_clock_time_it_was_made() -> None:
    hub, cache = hub_of()
    sub = hub.subscribe(None, None)
    sub.take()
    before = time.time()
    cache.set("a", b"1")
    cache.invalidate_tags(["t"])
    after = time.time()
    for block in sub.take().decode().split("\n\n")[:-1]:
        data = json.loads(block.rsplit("data: ", 1)[1])
        assert before - 0.001 <= data["time"] <= after + 0.001


def test_a_new_stream_starts_with_reset_then_gets_every_change_in_order() -> None:
    hub, cache = hub_of()
    sub = hub.subscribe(None, None)
    first = parse(sub.take())
    assert [e["event"] for e in first] == ["reset"] and first[0]["data"] == {"key": None}
    assert first[0]["id"].startswith(hub.epoch + "-")
    cache.set("a", b"1")
    cache.set("t", b"1", tags=["tag1"])
    cache.delete("a")
    cache.invalidate_tags(["tag1"])
    cache.clear()
    events = parse(sub.take())
    assert [(e["event"], e["data"]) for e in events] == [
        ("set", {"key": "a"}),
        ("set", {"key": "t"}),
        ("delete", {"key": "a"}),
        ("invalidate", {"tag": "tag1"}),
        ("clear", {"key": None}),
    ]
    seqs = [int(e["id"].split("-")[1]) for e in first + events]
    assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)


def test_resume_from_the_ring_and_reset_otherwise() -> None:
    hub, cache = hub_of(events_ring_size=3)
    keeper = hub.subscribe(None, None)  # keeps the hook installed between the others
    cache.set("a", b"1")
    last_id = parse(keeper.take())[-1]["id"]
    cache.set("b", b"1")
    cache.set("c", b"1")
    resumed = parse(hub.subscribe(last_id, None).take())
    assert [(e["event"], e["data"]["key"]) for e in resumed] == [("set", "b"), ("set", "c")]
    up_to_date = hub.subscribe(resumed[-1]["id"], None)
    assert up_to_date.take() == b""  # nothing missed: no reset either
    epoch, seq = last_id.split("-")
    for bad in ("nonsense", "", f"{epoch}-", f"{epoch}-x", f"other-{seq}", f"{epoch}-{int(seq) + 99}"):
        events = parse(hub.subscribe(bad, None).take())
        assert [e["event"] for e in events] == ["reset"], bad
    cache.set("d", b"1")
    cache.set("e", b"1")  # the ring holds c, d, e: b is gone, so resuming after a is too old
    assert [e["event"] for e in parse(hub.subscribe(last_id, None).take())] == ["reset"]


def test_a_gap_without_listeners_is_never_resumed_over() -> None:
    hub, cache = hub_of()
    sub = hub.subscribe(None, None)
    cache.set("a", b"1")
    last_id = parse(sub.take())[-1]["id"]
    hub.unsubscribe(sub)
    assert cache._store.on_change is None  # nobody listens: no hook
    cache.set("b", b"1")  # not recorded
    events = parse(hub.subscribe(last_id, None).take())
    assert [e["event"] for e in events] == ["reset"]


def test_prefix_filter() -> None:
    hub, cache = hub_of()
    sub = hub.subscribe(None, ("user:", "session:"))
    sub.take()
    for key in ("user:1", "other", "session:9", "users"):
        cache.set(key, b"1")
    cache.invalidate_tags(["t"])
    cache.clear()
    events = [(e["event"], e["data"]) for e in parse(sub.take())]
    assert events == [
        ("set", {"key": "user:1"}),
        ("set", {"key": "session:9"}),
        ("invalidate", {"tag": "t"}),
        ("clear", {"key": None}),
    ]


def test_a_subscriber_that_falls_behind_gets_reset_and_is_dropped() -> None:
    hub, cache = hub_of(events_queue_size=100)
    slow = hub.subscribe(None, None)
    fast = hub.subscribe(None, None)
    slow.take()
    fast.take()
    started = time.perf_counter()
    for i in range(5_000):
        cache.set(f"k{i}", b"1")
        if i % 50 == 0:
            fast.take()
    elapsed = time.perf_counter() - started
    assert slow.overflowed and slow not in hub.subscribers
    assert fast in hub.subscribers and not fast.overflowed
    assert elapsed < 2.0  # 5,000 writes: nothing waits for the slow reader
    # Its stream sends the reset (all it holds) and ends.
    assert [e["event"] for e in parse(b"".join(hub.stream(slow)))] == ["reset"]


def test_when_the_last_subscriber_is_dropped_in_the_hook_nothing_deadlocks() -> None:
    hub, cache = hub_of(events_queue_size=10)
    sub = hub.subscribe(None, None)
    cache.set_many({f"k{i}": b"1" for i in range(50)})  # dropped inside the hook, under the engine's lock
    assert sub.overflowed and hub.subscribers == []
    assert [e["event"] for e in parse(b"".join(hub.stream(sub)))] == ["reset"]
    assert cache._store.on_change is None  # the stream's end took the hook away
    cache.set("after", b"1")


# Slow: a heartbeat comes after a whole second of quiet (the shortest setting).
@pytest.mark.slow
def test_an_idle_stream_sends_heartbeats() -> None:
    hub, cache = hub_of(events_heartbeat=1)
    stream = hub.stream(hub.subscribe(None, None))
    assert parse(next(stream))[0]["event"] == "reset"
    started = time.monotonic()
    assert parse(next(stream)) == [{"comment": "heartbeat"}]
    assert 0.5 < time.monotonic() - started < 5
    cache.set("a", b"1")
    assert parse(next(stream))[0]["data"] == {"key": "a"}


def test_close_all_ends_every_stream_at_once() -> None:
    hub, cache = hub_of(events_heartbeat=300)
    sub = hub.subscribe(None, None)
    stream = hub.stream(sub)
    assert parse(next(stream))[0]["event"] == "reset"
    cache.set("a", b"1")
    assert parse(next(stream))[0]["data"] == {"key": "a"}
    threading.Timer(0.05, close_all).start()
    started = time.monotonic()
    with pytest.raises(StopIteration):
        next(stream)
    assert time.monotonic() - started < 1
    assert sub not in hub.subscribers and cache._store.on_change is None


# -- through the app --------------------------------------------------------------


def open_stream(app: Any, query: str = "", headers: dict[str, str] | None = None) -> tuple[str, Iterator[bytes]]:
    environ = testing.create_environ(path="/events", query_string=query, headers=headers or {})
    answer: list[str] = []
    body = app(environ, lambda status, head, exc_info=None: answer.append(status))
    return answer[0], iter(body)


def make_app(**settings: Any) -> tuple[Any, Cache]:
    config = Settings(node_id="test-node", **settings)
    cache = build_cache(config, FakeClock())
    return create_app(config, cache=cache), cache


def test_through_the_app_with_a_filter() -> None:
    app, cache = make_app()
    status, body = open_stream(app, "prefix=a&prefix=b")
    assert status.startswith("200")
    assert parse(next(body))[0]["event"] == "reset"
    cache.set("c", b"1")
    cache.set("b1", b"1")
    assert parse(next(body)) == [{"id": _id_of(cache), "event": "set", "data": {"key": "b1"}}]
    body.close()  # type: ignore[attr-defined]


def _id_of(cache: Cache) -> str:
    hub = cache._store.on_change.__self__  # type: ignore[union-attr]
    return f"{hub.epoch}-{hub.seq}"


def test_bad_prefix_too_many_subscribers_and_auth() -> None:
    app, _ = make_app(max_key_length=8)
    client = testing.TestClient(app)
    for query in ("prefix=", "prefix=" + "x" * 9):
        answer = client.simulate_get("/events", query_string=query)
        assert answer.status_code == 400 and answer.json["error"] == "invalid_prefix", query
    full = testing.TestClient(make_app(events_max_subscribers=0)[0]).simulate_get("/events")
    assert full.status_code == 503 and full.json["error"] == "too_many_subscribers" and full.json["limit"] == 0
    locked = testing.TestClient(make_app(auth_token="secret")[0]).simulate_get("/events")
    assert locked.status_code == 401
    app, _ = make_app(auth_token="secret")
    status, body = open_stream(app, headers={"Authorization": "Bearer secret"})
    assert status.startswith("200") and parse(next(body))[0]["event"] == "reset"
    body.close()  # type: ignore[attr-defined]


def test_gthread_streams_are_bounded_by_its_threads() -> None:
    config = Settings(node_id="test-node", threads=3)
    cache = build_cache(config, FakeClock())
    client = testing.TestClient(create_app(config, cache=cache, worker="gthread"))
    hub = cache  # the app's hub is reached through a stream: two open ones fill threads - 1
    app = client.app
    bodies = [open_stream(app)[1] for _ in range(2)]
    for body in bodies:
        next(body)
    answer = client.simulate_get("/events")
    assert answer.status_code == 503 and answer.json["limit"] == 2
    for body in bodies:
        body.close()  # type: ignore[attr-defined]
    assert hub._store.on_change is None  # the last one gone: the hook with it


def test_subscribing_and_leaving_while_writers_write_never_deadlocks() -> None:
    hub, cache = hub_of(events_queue_size=50)
    cache.start()  # the sweeper too: it reports expiries from its own thread
    stop = threading.Event()

    def write() -> None:
        i = 0
        while not stop.is_set():
            cache.set(f"k{i % 500}", b"1", ttl=0.001 if i % 3 else None)
            i += 1

    def churn() -> None:
        while not stop.is_set():
            sub = hub.subscribe(None, None)
            sub.take()
            hub.unsubscribe(sub)

    threads = [threading.Thread(target=write) for _ in range(2)] + [threading.Thread(target=churn) for _ in range(2)]
    for thread in threads:
        thread.start()
    time.sleep(0.5)
    stop.set()
    for thread in threads:
        thread.join(5)
    cache.stop()
    assert not any(thread.is_alive() for thread in threads), "deadlocked"
    assert hub.subscribers == [] and cache._store.on_change is None
