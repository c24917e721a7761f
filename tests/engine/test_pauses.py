"""No engine call stalls the others: what the garbage collector walks, how
clear() frees, how much one keys() call examines. Counts, never timings."""

from __future__ import annotations

import gc
import threading
import types

import pytest

from cachegrid.engine import POLICIES, Cache, InvalidCursor
from cachegrid.engine.sweeper import RELEASE_SLICE
from cachegrid.testing import FakeClock

_OPAQUE = (type, types.ModuleType, types.FunctionType, types.BuiltinFunctionType, types.MethodType)


def tracked_references(root: object) -> int:
    """References held by the GC-tracked objects reachable from ``root``
    through tracked containers: what a full collection walks for it."""
    gc.collect()  # settles which tuples are tracked: a collection untracks some
    seen: set[int] = set()
    stack, total = [root], 0
    while stack:
        obj = stack.pop()
        if id(obj) in seen or isinstance(obj, _OPAQUE) or not gc.is_tracked(obj):
            continue
        seen.add(id(obj))
        referents = gc.get_referents(obj)
        total += len(referents)
        stack.extend(referents)
    return total


def filled(policy: str, entries: int, clock: FakeClock) -> Cache:
    cache = Cache(policy, max_size=10 * entries + 10, clock=clock)
    for i in range(entries):  # every other one with a TTL: the expiry index counts too
        cache.set(f"user:{i:06d}", b'{"name":"Alice","age":30}', 3600 if i % 2 else None)
    for i in range(0, entries, 3):  # uses, so that lfu has counts above 1 too
        cache.get(f"user:{i:06d}")
    return cache


@pytest.mark.parametrize("policy", list(POLICIES))
def test_entries_and_policy_structures_are_not_walked_by_the_garbage_collector(policy: str, clock: FakeClock) -> None:
    smaller = tracked_references(filled(policy, 2_560, clock)._store)
    store = filled(policy, 5_120, clock)._store
    gc.collect()  # the key shards are tuples: the first collection untracks them
    assert not gc.is_tracked(store._data)
    assert not any(gc.is_tracked(shard) for shard in store._key_at)
    # Twice the entries, nothing more per entry: only the list of key shards
    # grows, by one item per 64 slots.
    assert tracked_references(store) - smaller <= 2_560 // 64


def test_clear_frees_the_old_entries_in_slices_with_the_lock_free(clock: FakeClock) -> None:
    entries = 2 * RELEASE_SLICE + 500
    cache = Cache("lru", max_size=entries, clock=clock)
    cache.set_many({f"k{i}": b"v" for i in range(entries)})
    lock_held_at_pauses: list[bool] = []
    cache._sweeper.pause = lambda: lock_held_at_pauses.append(cache._lock.locked())
    assert cache.clear() == entries
    assert len(lock_held_at_pauses) >= 3  # the mapping alone takes three slices
    assert not any(lock_held_at_pauses)
    assert len(cache) == 0 and cache.memory_usage == 0
    cache.set("after", b"v")
    assert cache.keys().keys == ["after"]


def test_clear_with_the_sweeper_running_hands_the_freeing_to_its_thread() -> None:
    cache = Cache("lru", max_size=RELEASE_SLICE * 2, cleanup_interval=3600)
    cache.set_many({f"k{i}": b"v" for i in range(RELEASE_SLICE + 1)})
    callers: list[str] = []
    cache._sweeper.pause = lambda: callers.append(threading.current_thread().name)
    with cache:
        assert cache.clear() == RELEASE_SLICE + 1
    assert callers and set(callers) == {"cachegrid-sweeper"}
    assert len(cache) == 0


def _counting_examined(cache: Cache, monkeypatch: pytest.MonkeyPatch) -> list[int]:
    examined = [0]
    store_type = type(cache._store)  # a store has slots only: the count goes on its class
    key_at = store_type.key_at

    def counting(store: object, slot: int) -> str | None:
        examined[0] += 1
        return key_at(store, slot)  # type: ignore[arg-type]

    monkeypatch.setattr(store_type, "key_at", counting)
    return examined


def test_one_keys_call_examines_at_most_scan_count_slots(clock: FakeClock, monkeypatch: pytest.MonkeyPatch) -> None:
    cache = Cache("lru", max_size=50_000, clock=clock, scan_count=1_000)
    cache.set_many({f"user:{i:06d}": b"v" for i in range(50_000)})
    examined = _counting_examined(cache, monkeypatch)
    page = cache.keys("nothing-matches:", limit=10)
    assert page.keys == [] and page.cursor is not None  # an empty page is not the end
    assert examined[0] <= 1_000
    calls = 1
    while page.cursor is not None:
        examined[0] = 0
        page = cache.keys("nothing-matches:", limit=10, cursor=page.cursor)
        assert examined[0] <= 1_000
        calls += 1
    assert calls == 50  # 50,000 slots, 1,000 per call


def test_a_bounded_listing_of_a_large_cache_returns_every_key_exactly_once(clock: FakeClock) -> None:
    cache = Cache("lru", max_size=60_000, clock=clock, scan_count=1_000)
    expected = {f"user:{i:06d}" for i in range(50_000)}
    cache.set_many(dict.fromkeys(expected, b"v"))
    cache.delete_many([f"user:{i:06d}" for i in range(0, 50_000, 7)])  # free slots in the middle
    expected -= {f"user:{i:06d}" for i in range(0, 50_000, 7)}
    cache.set_many({f"short:{i}": b"v" for i in range(10)}, ttl=1)
    clock.tick(1)  # expired, never listed
    listed: list[str] = []
    page = cache.keys("user:", limit=700)
    listed += page.keys
    while page.cursor is not None:
        assert len(page.keys) <= 700
        page = cache.keys("user:", limit=700, cursor=page.cursor)
        listed += page.keys
    assert len(listed) == len(expected) and set(listed) == expected


def test_a_cursor_from_before_a_clear_is_refused(clock: FakeClock) -> None:
    cache = Cache("lru", clock=clock)
    cache.set_many({f"k{i}": b"v" for i in range(20)})
    page = cache.keys(limit=5)
    assert page.cursor is not None
    cache.clear()
    with pytest.raises(InvalidCursor):
        cache.keys(cursor=page.cursor)


def test_scan_count_must_be_positive() -> None:
    with pytest.raises(ValueError):
        Cache("lru", scan_count=0)
