"""Each policy's eviction order, on small hand-made cases."""

from __future__ import annotations

import pytest

from cachegrid.engine import Cache, CacheFull, PreconditionFailed
from cachegrid.testing import FakeClock


def fill(cache: Cache, *keys: str, value: bytes = b"v") -> None:
    for key in keys:
        cache.set(key, value)


def survivors(cache: Cache) -> set[str]:
    return set(cache.keys(limit=1000).keys)


def test_lru_evicts_least_recently_used(clock: FakeClock) -> None:
    cache = Cache("lru", max_size=3, clock=clock)
    fill(cache, "a", "b", "c")
    cache.get("a")  # order now b, c, a
    cache.set("d", b"v")
    assert survivors(cache) == {"a", "c", "d"}
    cache.set("c", b"new")  # a write is a use too: order a, d, c
    cache.set("e", b"v")
    assert survivors(cache) == {"c", "d", "e"}
    assert cache.stats()["evictions"] == 2


def test_lru_exists_does_not_count_as_a_use(clock: FakeClock) -> None:
    cache = Cache("lru", max_size=2, clock=clock)
    fill(cache, "a", "b")
    cache.exists("a")
    cache.set("c", b"v")
    assert survivors(cache) == {"b", "c"}


def test_lfu_evicts_least_frequently_used(clock: FakeClock) -> None:
    cache = Cache("lfu", max_size=3, clock=clock)
    fill(cache, "a", "b", "c")
    for _ in range(3):
        cache.get("a")
    cache.get("b")
    cache.set("d", b"v")  # c has the fewest uses
    assert survivors(cache) == {"a", "b", "d"}


def test_lfu_breaks_ties_by_recency(clock: FakeClock) -> None:
    cache = Cache("lfu", max_size=3, clock=clock)
    fill(cache, "a", "b", "c")
    cache.get("b")
    cache.get("a")
    cache.get("c")  # all used twice; b reached that count first
    cache.set("d", b"v")
    assert survivors(cache) == {"a", "c", "d"}


def test_lfu_new_entry_is_the_next_victim_against_used_ones(clock: FakeClock) -> None:
    cache = Cache("lfu", max_size=2, clock=clock)
    fill(cache, "a", "b")
    cache.get("a")
    cache.get("b")
    cache.set("c", b"v")  # evicts a (tie, older), then c has count 1
    cache.set("d", b"v")
    assert survivors(cache) == {"b", "d"}


def test_lfu_deleting_keeps_the_structure_consistent(clock: FakeClock) -> None:
    cache = Cache("lfu", max_size=3, clock=clock)
    fill(cache, "a", "b", "c")
    cache.get("a")
    cache.delete("b")
    cache.delete("c")  # the count-1 node is now empty and gone
    fill(cache, "d", "e")
    cache.get("d")
    cache.set("f", b"v")
    assert survivors(cache) == {"a", "d", "f"}


def test_ttl_evicts_soonest_to_expire_first(clock: FakeClock) -> None:
    cache = Cache("ttl", max_size=3, clock=clock)
    cache.set("late", b"v", ttl=300)
    cache.set("soon", b"v", ttl=10)
    cache.set("mid", b"v", ttl=100)
    cache.set("new", b"v")
    assert survivors(cache) == {"late", "mid", "new"}


def test_ttl_evicts_entries_without_ttl_last_in_lru_order(clock: FakeClock) -> None:
    cache = Cache("ttl", max_size=3, clock=clock)
    cache.set("p1", b"v")
    cache.set("p2", b"v")
    cache.set("t", b"v", ttl=1000)
    cache.get("p1")
    cache.set("x", b"v")  # t goes first
    assert survivors(cache) == {"p1", "p2", "x"}
    cache.set("y", b"v")  # then the least recently used of p1, p2, x: p2
    assert survivors(cache) == {"p1", "x", "y"}


def test_ttl_policy_ignores_stale_expiry_records(clock: FakeClock) -> None:
    cache = Cache("ttl", max_size=2, clock=clock)
    cache.set("a", b"v", ttl=10)
    cache.set("b", b"v", ttl=20)
    cache.persist("a")  # a's expiry record is now stale
    cache.set("c", b"v")
    assert survivors(cache) == {"a", "c"}


def test_size_evicts_largest_first(clock: FakeClock) -> None:
    cache = Cache("size", max_size=3, clock=clock)
    cache.set("small", b"x")
    cache.set("big", b"x" * 100)
    cache.set("mid", b"x" * 10)
    cache.set("new", b"x")
    assert survivors(cache) == {"small", "mid", "new"}
    cache.set("new2", b"x")
    assert survivors(cache) == {"small", "new", "new2"}


def test_size_breaks_ties_by_recency(clock: FakeClock) -> None:
    cache = Cache("size", max_size=3, clock=clock)
    cache.set("a", b"xx")
    cache.set("b", b"xx")
    cache.set("c", b"x")
    cache.get("a")
    cache.set("d", b"x")  # a and b are the largest; b was used longer ago
    assert survivors(cache) == {"a", "c", "d"}


def test_size_follows_a_value_that_changes_size(clock: FakeClock) -> None:
    cache = Cache("size", max_size=2, clock=clock)
    cache.set("a", b"x" * 100)
    cache.set("b", b"x" * 10)
    cache.set("a", b"x")  # a is now the smaller one
    cache.set("c", b"x")
    assert survivors(cache) == {"a", "c"}


def test_size_evicts_by_memory_budget(clock: FakeClock) -> None:
    cache = Cache("size", max_memory=3000, clock=clock)
    cache.set("big", b"x" * 1500)
    cache.set("s1", b"x" * 10)
    cache.set("s2", b"x" * 10)
    cache.set("more", b"x" * 1200)
    assert survivors(cache) == {"s1", "s2", "more"}


def test_noeviction_refuses_writes_when_full_and_keeps_everything(clock: FakeClock) -> None:
    cache = Cache("noeviction", max_size=2, clock=clock)
    fill(cache, "a", "b")
    with pytest.raises(CacheFull):
        cache.set("c", b"v")
    cache.set("a", b"replacing is fine")
    assert survivors(cache) == {"a", "b"}
    stats = cache.stats()
    assert stats["rejected_full"] == 1 and stats["evictions"] == 0


def test_noeviction_refuses_a_growing_replacement_without_losing_the_old_value(clock: FakeClock) -> None:
    cache = Cache("noeviction", max_memory=2000, clock=clock)
    cache.set("a", b"x" * 500)
    cache.set("b", b"x" * 500)
    with pytest.raises(CacheFull):
        cache.set("a", b"x" * 1500)
    assert cache.get("a") == b"x" * 500


def test_noeviction_refuses_a_whole_batch_that_does_not_fit(clock: FakeClock) -> None:
    cache = Cache("noeviction", max_size=3, clock=clock)
    cache.set("a", b"v")
    with pytest.raises(CacheFull):
        cache.set_many({"b": b"v", "c": b"v", "d": b"v"})
    assert survivors(cache) == {"a"}
    cache.set_many({"a": b"w", "b": b"v", "c": b"v"})  # a is replaced: fits
    assert survivors(cache) == {"a", "b", "c"}


def test_noeviction_makes_room_from_expired_entries(clock: FakeClock) -> None:
    cache = Cache("noeviction", max_size=2, clock=clock)
    cache.set("a", b"v", ttl=1)
    cache.set("b", b"v")
    clock.tick(1)
    cache.set("c", b"v")
    assert survivors(cache) == {"b", "c"}


def test_noeviction_a_replacement_whose_old_entry_expires_while_room_is_made(clock: FakeClock) -> None:
    # The old entry is live when the write looks it up, and expired when the
    # write reclaims expired entries to make room for its growth: the write
    # must then store a fresh entry, not reuse the slot just freed.
    cache = Cache("noeviction", max_memory=3000, clock=clock)
    cache.set("a", b"x" * 500, ttl=1)
    cache.set("b", b"x" * 500)
    cache.set("c", b"x" * 800, ttl=1.2)
    clock.tick(0.5)
    store = cache._store
    plain, with_ttl = store._overheads
    # A new value whose growth over the old one needs the room that only the
    # old entry's expiry gives (the policy's overheads are measured, so derived).
    free = 3000 - cache.memory_usage
    length = free + 50 + 500 + with_ttl - plain
    real_clock = store.clock
    calls = []

    def one_second_a_call() -> float:
        calls.append(1)
        return real_clock() + len(calls) - 1

    store.clock = one_second_a_call
    cache.set("a", b"y" * length)
    store.clock = real_clock
    assert len(calls) >= 2  # the old entry was seen live, then expired
    assert cache.get("a") == b"y" * length and cache.get("b") == b"x" * 500 and cache.get("c") is None
    assert cache.delete("a") and cache.delete("b")
    assert len(cache) == 0 and cache.memory_usage == 0


@pytest.mark.parametrize("policy", ["lru", "lfu", "tinylfu", "adaptive", "ttl", "size"])
def test_a_growing_replacement_never_evicts_the_key_being_written(policy: str, clock: FakeClock) -> None:
    cache = Cache(policy, max_memory=2000, clock=clock)
    cache.set("a", b"x" * 400)
    cache.set("b", b"x" * 400)
    cache.set("c", b"x" * 10)
    cache.set("a", b"y" * 1300)
    assert cache.get("a") == b"y" * 1300
    assert cache.memory_usage <= 2000


def test_lru_a_failed_conditional_write_is_not_a_use(clock: FakeClock) -> None:
    cache = Cache("lru", max_size=3, clock=clock)
    version = cache.set("a", b"1").version
    cache.set("b", b"1")
    cache.set("c", b"1")
    with pytest.raises(PreconditionFailed):
        cache.set("a", b"2", if_none_match=[version])
    cache.set("d", b"1")
    assert survivors(cache) == {"b", "c", "d"}


def test_lfu_counts_halve_after_the_decay_time(clock: FakeClock) -> None:
    cache = Cache("lfu", max_size=3, clock=clock, policy_options={"decay_time": 60})
    fill(cache, "old", "a")
    for _ in range(20):
        cache.get("old")  # hot once: count 21
    store = cache._store
    clock.tick(61)
    cache.get("a")  # a use notices the period that passed
    assert store.count_of(store.slot_of("old")) == 10
    clock.tick(5 * 60)  # five more periods at once: 10 >> 5
    cache.get("a")
    assert store.count_of(store.slot_of("old")) == 0


def after_old_hot_key(clock: FakeClock, decay_time: float) -> set[str]:
    """The survivors of an lfu cache of 3 where "old" was read 100 times, then
    never again over ten minutes in which "a" and "b" are read a little, and
    then "new" arrives."""
    cache = Cache("lfu", max_size=3, clock=clock, policy_options={"decay_time": decay_time})
    fill(cache, "old")
    for _ in range(100):
        cache.get("old")
    for minute in range(10):
        clock.tick(60)
        for key in ("a", "b"):
            if cache.get(key) is None:
                cache.set(key, b"v")
            cache.get(key)
    cache.set("new", b"v")
    return survivors(cache)


def test_lfu_a_key_hot_long_ago_gives_way_to_keys_used_now(clock: FakeClock) -> None:
    assert after_old_hot_key(clock, decay_time=60) == {"a", "b", "new"}


def test_lfu_without_decay_keeps_a_key_hot_long_ago(clock: FakeClock) -> None:
    assert "old" in after_old_hot_key(clock, decay_time=0)


def test_lfu_counts_saturate_and_keep_their_recency_order(clock: FakeClock) -> None:
    cache = Cache("lfu", max_size=2, clock=clock, policy_options={"decay_time": 0})
    fill(cache, "x", "y")
    for _ in range(300):
        cache.get("x")
        cache.get("y")
    store = cache._store
    assert store.count_of(store.slot_of("x")) == store.count_of(store.slot_of("y")) == 255
    cache.get("x")  # y is now the less recent of two saturated keys
    cache.set("z", b"v")  # evicts y
    cache.set("w", b"v")  # evicts z, the newcomer at count 1
    assert survivors(cache) == {"x", "w"}


def test_lfu_merges_counts_when_they_halve_and_stays_consistent(clock: FakeClock) -> None:
    cache = Cache("lfu", max_size=50, clock=clock, policy_options={"decay_time": 60})
    for i in range(40):
        cache.set(f"k{i}", b"v")
        for _ in range(i):
            cache.get(f"k{i}")
    clock.tick(120)  # two halvings: counts 1..40 fold onto 0..10
    cache.get("k0")
    store = cache._store
    counts = [store.count_of(store.slot_of(f"k{i}")) for i in range(1, 40)]
    assert counts == [(i + 1) >> 2 for i in range(1, 40)]
    assert sorted(store._node_at) == sorted(set(counts) | {store.count_of(store.slot_of("k0"))})
    for i in range(60):  # evicting walks the merged nodes: least used first
        cache.set(f"new{i}", b"v")
    assert len(cache) == 50
    assert all(cache.get(f"k{i}") is not None for i in range(30, 40))


@pytest.mark.parametrize("decay_time", [-1, float("nan"), float("inf"), "60"])
def test_lfu_refuses_a_decay_time_that_is_not_a_number_of_seconds(decay_time: object) -> None:
    with pytest.raises(ValueError, match="decay_time"):
        Cache("lfu", policy_options={"decay_time": decay_time})
