"""The background sweeper, and sweeping in bounded batches."""

from __future__ import annotations

import time

import pytest

from cachegrid.engine import Cache
from cachegrid.engine.expire import ExpiryIndex
from cachegrid.engine.sweeper import SWEEP_BATCH
from cachegrid.testing import FakeClock


def test_sweep_reclaims_every_expired_entry_in_batches(clock: FakeClock) -> None:
    cache = Cache("lru", max_size=100_000, clock=clock)
    count = SWEEP_BATCH * 3 + 17
    cache.set_many({f"t{i}": b"v" for i in range(count)}, ttl=10)
    cache.set_many({f"p{i}": b"v" for i in range(50)})
    cache.set_many({f"later{i}": b"v" for i in range(50)}, ttl=100)
    clock.tick(10)
    assert cache.sweep() == count
    assert len(cache) == 100
    assert cache.stats()["expired"] == count
    assert cache.last_sweep_max_hold > 0


def test_sweep_ignores_entries_whose_ttl_changed(clock: FakeClock) -> None:
    cache = Cache("lru", clock=clock)
    cache.set("persisted", b"v", ttl=1)
    cache.persist("persisted")
    cache.set("extended", b"v", ttl=1)
    cache.touch("extended", 100)
    cache.set("rewritten", b"v", ttl=1)
    cache.set("rewritten", b"w", ttl=50)
    clock.tick(2)
    assert cache.sweep() == 0
    assert len(cache) == 3


def test_rewriting_ttl_keys_does_not_grow_the_expiry_index_without_bound(clock: FakeClock) -> None:
    cache = Cache("lru", clock=clock)
    for round_ in range(20):
        for i in range(500):
            cache.set(f"k{i}", b"v", ttl=3600 + round_)
    assert len(cache._store._expiry) <= 2 * 500 + 1024


def test_sweeper_thread_reclaims_expired_entries_within_an_interval() -> None:
    cache = Cache("lru", cleanup_interval=0.05)
    cache.set_many({f"k{i}": b"v" for i in range(100)}, ttl=0.05)
    cache.set("keep", b"v")
    with cache:
        assert cache.sweeper_alive
        deadline = time.monotonic() + 10
        while len(cache) > 1 and time.monotonic() < deadline:
            time.sleep(0.02)
    assert not cache.sweeper_alive
    assert len(cache) == 1 and cache.stats()["expired"] == 100


def test_stop_joins_the_thread_promptly_even_with_a_long_interval() -> None:
    cache = Cache("lru", cleanup_interval=3600)
    cache.start()
    started = time.monotonic()
    cache.stop()
    assert not cache.sweeper_alive
    assert time.monotonic() - started < 5


def test_start_twice_runs_one_thread() -> None:
    cache = Cache("lru", cleanup_interval=3600)
    cache.start()
    first = cache._sweeper.thread
    cache.start()
    assert first is not None and cache._sweeper.thread is first
    cache.stop()


def test_with_a_sweeper_the_index_is_rebuilt_outside_the_writes(monkeypatch: pytest.MonkeyPatch) -> None:
    inline_rebuilds = []
    compact = ExpiryIndex.compact
    monkeypatch.setattr(ExpiryIndex, "compact", lambda self: inline_rebuilds.append(1) or compact(self))
    cache = Cache("lru", cleanup_interval=3600)
    with cache:
        for round_ in range(20):
            for i in range(500):
                cache.set(f"k{i}", b"v", ttl=3600 + round_)
        deadline = time.monotonic() + 10
        while len(cache._store.expiry) > 2 * 500 + 1024 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert len(cache._store.expiry) <= 2 * 500 + 1024
    assert inline_rebuilds == []
    assert all(3600 < cache.ttl(f"k{i}") <= 3619 for i in range(500))
    # Without a sweeper, the write that crosses the line rebuilds at once.
    for i in range(3000):
        cache.set("same", b"v", ttl=100 + i)
    assert inline_rebuilds and len(cache._store.expiry) <= 2 * 501 + 1024


def test_rebuild_keeps_items_pushed_and_drops_items_popped_meanwhile(clock: FakeClock) -> None:
    cache = Cache("lru", clock=clock)
    for i in range(100):
        cache.set(f"old{i}", b"v", ttl=10)
        cache.set(f"old{i}", b"v", ttl=20)  # leaves a stale item behind
    index = cache._store.expiry
    items = index.begin_rebuild()
    assert items is not None and index.begin_rebuild() is None  # one at a time
    cache.set("new", b"v", ttl=5)  # pushed during the rebuild
    cache.delete("old0")
    index.end_rebuild(index.without_dead(items))
    assert len(index) == 100  # 99 current old items and the new one; no stale one
    clock.tick(20)
    assert cache.sweep() == 100


def test_pushes_during_a_rebuild_can_be_taken_out_of_the_lock_and_none_is_lost(clock: FakeClock) -> None:
    cache = Cache("lru", max_size=10_000, clock=clock)
    cache.set_many({f"old{i}": b"v" for i in range(100)}, ttl=10)
    index = cache._store.expiry
    items = index.begin_rebuild()
    assert items is not None
    cache.set_many({f"early{i}": b"v" for i in range(1_500)}, ttl=5)
    rebuilt = index.without_dead(items)
    pushed = index.take_pushed()
    assert len(pushed) == 1_500 and index.pending() == 0
    for expires_at, slot in pushed:  # what the sweeper does outside the lock
        rebuilt.push(expires_at, slot)
    cache.set("late", b"v", ttl=1)
    assert index.pending() == 1
    index.end_rebuild(rebuilt)
    assert len(index) == 1_601
    clock.tick(10)
    assert cache.sweep() == 1_601
