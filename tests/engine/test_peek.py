"""``Cache.peek_entry``: a read that is only a look. It counts no hit or miss
and leaves every key where it was in the eviction order, under every policy:
a cache that was peeked at evicts exactly what a twin that was not evicts."""

from __future__ import annotations

import pytest

from cachegrid.engine import POLICIES, Cache, CacheFull
from cachegrid.testing import FakeClock

COUNTERS = ("hits", "misses", "sets", "deletes", "evictions", "expired", "current_size")


def counters(cache: Cache) -> dict[str, object]:
    stats = cache.stats()
    return {name: stats[name] for name in COUNTERS}


def survivors(cache: Cache, keys: list[str]) -> set[str]:
    return {key for key in keys if cache.exists(key)}


@pytest.mark.parametrize("policy", sorted(POLICIES))
def test_peek_returns_the_entry_and_counts_nothing(policy: str, clock: FakeClock) -> None:
    cache = Cache(policy, clock=clock, max_size=10)
    written = cache.set("user:42", b'{"name":"Alice"}', ttl=30)
    before = counters(cache)
    entry = cache.peek_entry("user:42")
    assert entry is not None
    assert entry.value == b'{"name":"Alice"}' and entry.version == written.version
    assert entry.ttl(clock()) == pytest.approx(30)
    assert cache.peek_entry("absent") is None
    assert counters(cache) == before
    cache.get("user:42")  # a real read, for contrast, does count
    assert cache.stats()["hits"] == before["hits"] + 1  # type: ignore[operator]


@pytest.mark.parametrize("policy", sorted(POLICIES))
def test_peek_of_an_expired_key_finds_nothing_and_counts_no_miss(policy: str, clock: FakeClock) -> None:
    cache = Cache(policy, clock=clock, max_size=10)
    cache.set("k", b"1", ttl=1)
    clock.tick(2)
    assert cache.peek_entry("k") is None
    stats = cache.stats()
    assert (stats["misses"], stats["expired"], stats["current_size"]) == (0, 1, 0)


def _fill_then_overflow(cache: Cache, keys: list[str], look: object) -> None:
    """Write keys to the limit, read every other one twice, ``look`` at the
    coldest, then write half as many again: the policy evicts."""
    for key in keys:
        cache.set(key, b"v" * (1 + len(key)))
    for key in keys[1::2]:
        cache.get(key)
        cache.get(key)
    for key in keys[::2]:
        look(cache, key)  # type: ignore[operator]
    for index in range(len(keys) // 2):
        try:
            cache.set(f"new:{index}", b"v" * 8)
        except CacheFull:
            pass  # noeviction refuses; the twin refuses the same


@pytest.mark.parametrize("policy", sorted(POLICIES))
def test_a_peeked_cache_evicts_what_an_untouched_twin_evicts(policy: str, clock: FakeClock) -> None:
    keys = [f"key:{index}" for index in range(8)]
    untouched, peeked = (Cache(policy, clock=clock, max_size=len(keys)) for _ in range(2))
    _fill_then_overflow(untouched, keys, lambda cache, key: None)
    _fill_then_overflow(peeked, keys, lambda cache, key: cache.peek_entry(key))
    assert survivors(peeked, keys) == survivors(untouched, keys)
    assert counters(peeked) == counters(untouched)


def test_the_twin_check_can_tell_a_read_from_a_peek(clock: FakeClock) -> None:
    """Under LRU, reading the cold keys instead of peeking at them keeps them
    and evicts the others: the twin comparison above would catch a peek that
    moved keys."""
    keys = [f"key:{index}" for index in range(8)]
    untouched, read = (Cache("lru", clock=clock, max_size=len(keys)) for _ in range(2))
    _fill_then_overflow(untouched, keys, lambda cache, key: None)
    _fill_then_overflow(read, keys, lambda cache, key: cache.get(key))
    assert survivors(read, keys) != survivors(untouched, keys)
