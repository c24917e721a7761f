"""The engine's change hook (engine/changes.py): every change is reported
once, after it is applied, with its kind; nothing else is."""

from __future__ import annotations

import time

import pytest

from cachegrid.engine import Cache, PreconditionFailed
from tests.fixtures import FakeClock

Changes = list[tuple[str, str | None]]


def watched(clock: FakeClock | None = None, **options: object) -> tuple[Cache, Changes]:
    cache = Cache("lru", clock=clock or FakeClock(), cleanup_interval=3600, **options)  # type: ignore[arg-type]
    seen: Changes = []
    cache.set_change_hook(lambda kind, name: seen.append((kind, name)))
    return cache, seen


def test_writes_of_every_kind_are_sets() -> None:
    cache, seen = watched()
    cache.set("a", b"1")
    cache.set("a", b"2")  # a replacement
    cache.set("t", b"1", ttl=10, tags=["x"], stale=5)
    cache.set_many({"b": b"1", "c": b"2"})
    cache.incr("n")
    cache.decr("n")
    cache.touch("a", 30)
    cache.persist("a")
    cache.mark_stale("a", 10)
    assert seen == [("set", key) for key in ("a", "a", "t", "b", "c", "n", "n", "a", "a", "a")]


def test_a_failed_write_reports_nothing() -> None:
    cache, seen = watched()
    cache.set("a", b"1")
    seen.clear()
    with pytest.raises(PreconditionFailed):
        cache.set("a", b"2", if_none_match="*")
    assert not cache.delete("absent")
    assert not cache.touch("absent", 5)
    assert seen == []


def test_deletes_one_by_one_and_by_pattern() -> None:
    cache, seen = watched()
    for key in ("user:1", "user:2", "other"):
        cache.set(key, b"1")
    seen.clear()
    cache.delete("other")
    cursor = None
    while True:
        _, cursor, _ = cache.delete_page("user:*", cursor)
        if cursor is None:
            break
    assert seen[0] == ("delete", "other")
    assert sorted(seen[1:]) == [("delete", "user:1"), ("delete", "user:2")]
    cache.set("x", b"1")
    seen.clear()
    cache.delete_many(["x", "y"])
    assert seen == [("delete", "x")]


def test_expiry_found_by_a_read_by_the_sweeper_and_by_the_eviction_rule() -> None:
    clock = FakeClock()
    cache, seen = watched(clock, max_size=2)
    cache.set("read", b"1", ttl=1)
    cache.set("swept", b"1", ttl=1)
    clock.tick(2)
    seen.clear()
    assert cache.get("read") is None
    assert cache.sweep() == 1
    assert seen == [("expire", "read"), ("expire", "swept")]
    cache.set("a", b"1", ttl=1)
    cache.set("b", b"1")
    clock.tick(2)
    seen.clear()
    cache.set("c", b"1")  # full: the expired one makes room
    assert seen == [("expire", "a"), ("set", "c")]


def test_evictions() -> None:
    cache, seen = watched(max_size=2)
    for key in ("a", "b", "c"):
        cache.set(key, b"1")
    assert seen == [("set", "a"), ("set", "b"), ("evict", "a"), ("set", "c")]


def test_clear_tags_and_restore() -> None:
    cache, seen = watched()
    cache.set("a", b"1", tags=["t"])
    records = list(cache.export_locked(lambda entries, _: list(entries), time.time()))
    seen.clear()
    assert cache.invalidate_tags(["t", "unused"]) == 1
    assert seen == [("invalidate", "t"), ("invalidate", "unused")]
    seen.clear()
    cache.clear()
    assert seen == [("clear", None)]
    seen.clear()
    assert cache.restore(records, time.time())[0] == 1
    assert seen == [("reset", None)]  # not one set per key restored
    cache.set("b", b"1")
    assert seen[-1] == ("set", "b")  # the hook is back after the restore


def test_the_hook_is_called_after_the_change_is_applied() -> None:
    cache = Cache("lru", cleanup_interval=3600)
    observed: list[object] = []
    cache.set_change_hook(lambda kind, name: observed.append(cache._store.peek_entry(name) if name else None))
    cache.set("a", b"1")
    cache.delete("a")
    assert observed[0] is not None and observed[0].value == b"1"  # type: ignore[attr-defined]
    assert observed[1] is None


def test_no_hook_no_reports_and_removal() -> None:
    cache, seen = watched()
    cache.set_change_hook(None)
    cache.set("a", b"1")
    cache.delete("a")
    assert seen == []
