"""Tags (engine/tags.py): grouped entries made a miss at once, in O(1), for
every policy; the sweeper's walk that reclaims them; the limits; snapshots.
Time is a FakeClock: no test sleeps (but the one of the sweeper's thread)."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from cachegrid.engine import POLICIES, Cache, CacheFull, PreconditionFailed
from cachegrid.engine.snapshot import Snapshotter
from cachegrid.engine.tags import (
    TAG_OVERHEAD,
    InvalidTag,
    TagLimitReached,
    TagLimits,
    TagTooLong,
    TooManyTags,
    measure_tag_overhead,
)
from cachegrid.testing import FakeClock
from tests.fixtures import median_seconds


@pytest.fixture(params=sorted(POLICIES))
def cache(request: pytest.FixtureRequest, clock: FakeClock) -> Cache:
    return Cache(request.param, max_size=1000, clock=clock)


def test_an_invalidated_tag_makes_its_entries_misses_and_leaves_the_others(cache: Cache) -> None:
    cache.set("a", b"1", tags=["user:1", "page"])
    cache.set("b", b"2", tags=["page"])
    cache.set("c", b"3", tags=["user:2"])
    cache.set("d", b"4")
    assert cache.invalidate_tags(["page"]) == 1
    assert (cache.get("a"), cache.get("b")) == (None, None)
    assert (cache.get("c"), cache.get("d")) == (b"3", b"4")
    stats = cache.stats()
    assert stats["tag_invalidations"] == 1 and stats["tag_invalidated_entries"] == 2
    assert stats["current_size"] == 2


def test_an_entry_written_after_the_invalidation_is_kept(cache: Cache) -> None:
    cache.set("a", b"old", tags=["page"])
    cache.invalidate_tags(["page"])
    cache.set("a", b"new", tags=["page"])
    assert cache.get("a") == b"new"
    assert cache.get_entry("a").tag_refs  # carries the tag's new generation


def test_every_kind_of_read_sees_an_invalidated_entry_as_gone(cache: Cache) -> None:
    for key in ("get", "entry", "peek", "exists", "ttl", "many", "listed", "write"):
        cache.set(key, b"1", ttl=60, tags=["t"])
    cache.invalidate_tags(["t"])
    assert cache.get("get") is None and cache.get_entry("entry") is None
    assert cache.peek_entry("peek") is None and not cache.exists("exists")
    with pytest.raises(KeyError):
        cache.ttl("ttl")
    assert cache.get_many(["many"]) == {}
    assert "listed" not in cache.keys(limit=100).keys
    assert cache.set("write", b"2").created  # an invalidated entry is not replaced: it is gone
    with pytest.raises(PreconditionFailed):
        cache.set("listed", b"2", if_match="*")  # only if present: it is not


def test_a_replacement_write_replaces_the_tags(cache: Cache) -> None:
    cache.set("k", b"1", tags=["old"])
    cache.set("k", b"2", tags=["new"])
    assert cache.tags_of(cache.get_entry("k")) == ("new",)
    cache.invalidate_tags(["old"])
    assert cache.get("k") == b"2"
    cache.set("k", b"3")  # a write without tags drops them
    assert cache.get_entry("k").tag_refs == ()
    assert cache.invalidate_tags(["new"]) == 0 and cache.get("k") == b"3"
    assert cache.stats()["tags"] == 0  # no entry holds a tag: none is kept


def test_tags_of_an_entry_are_its_names_and_repeats_are_dropped(cache: Cache) -> None:
    cache.set("k", b"1", tags=["b", "a", "b"])
    assert cache.tags_of(cache.get_entry("k")) == ("b", "a")


def test_batch_sets_tag_every_item(cache: Cache) -> None:
    cache.set_many({"a": b"1", "b": b"2"}, tags=["batch"])
    cache.set("c", b"3", tags=["other"])
    cache.invalidate_tags(["batch"])
    assert cache.get_many(["a", "b", "c"]) == {"c": b"3"}


def test_touch_incr_and_persist_keep_the_tags(cache: Cache) -> None:
    cache.set("n", b"1", ttl=60, tags=["t"])
    cache.incr("n")
    cache.touch("n", 120)
    cache.persist("n")
    assert cache.get("n") == b"2"
    cache.invalidate_tags(["t"])
    assert cache.get("n") is None


def test_a_tag_no_entry_holds_is_forgotten_and_its_memory_returned(cache: Cache) -> None:
    empty = cache.memory_usage
    cache.set("a", b"1", tags=["t1", "t2"])
    cache.set("b", b"1", tags=["t1"])
    with_tags = cache.memory_usage
    cache.delete("a")
    assert cache.stats()["tags"] == 1  # t1 is still held by b
    cache.delete("b")
    assert cache.stats()["tags"] == 0 and cache.memory_usage == empty
    assert with_tags - empty >= 2 * TAG_OVERHEAD


def test_eviction_gives_back_the_tags_of_its_victims(clock: FakeClock) -> None:
    for policy in POLICIES:
        if policy == "noeviction":
            continue
        cache = Cache(policy, max_size=10, clock=clock)
        for number in range(100):
            cache.set(f"k{number}", b"v", tags=[f"t{number}"])
        assert cache.stats()["tags"] == len(cache) == 10, policy


def test_a_failed_write_leaves_no_tag_behind(clock: FakeClock) -> None:
    cache = Cache("noeviction", max_size=1, clock=clock)
    cache.set("a", b"1")
    before = cache.memory_usage
    with pytest.raises(CacheFull):
        cache.set("b", b"2", tags=["new"])  # the cache is full
    with pytest.raises(PreconditionFailed):
        cache.set("a", b"2", tags=["new"], if_none_match="*")
    assert cache.stats()["tags"] == 0 and cache.memory_usage == before


def test_expired_entries_give_back_their_tags(cache: Cache, clock: FakeClock) -> None:
    cache.set("a", b"1", ttl=10, tags=["t"])
    clock.tick(11)
    cache.sweep()
    assert cache.stats()["tags"] == 0


def test_clear_forgets_every_tag_and_keeps_the_limits(clock: FakeClock) -> None:
    cache = Cache("lru", clock=clock, tag_limits=TagLimits(max_tags=2))
    cache.set("a", b"1", tags=["t1", "t2"])
    cache.invalidate_tags(["t1"])
    cache.clear()
    stats = cache.stats()
    assert stats["tags"] == 0 and stats["tag_memory_bytes"] == 0
    assert stats["tag_invalidations"] == 1  # the counters stay, as hits and misses do
    with pytest.raises(TagLimitReached):
        cache.set("a", b"1", tags=["t1", "t2", "t3"])


# -- the O(1) promise and the sweeper -------------------------------------------------


@pytest.mark.parametrize("policy", ["lru", "tinylfu"])
def test_invalidating_100_000_entries_costs_what_a_get_does(policy: str, clock: FakeClock) -> None:
    small = Cache(policy, max_size=200_000, clock=clock)
    large = Cache(policy, max_size=200_000, clock=clock)
    for cache, count in ((small, 100), (large, 100_000)):
        for start in range(0, count, 1000):
            cache.set_many({f"user:{n}": b'{"a":1}' for n in range(start, min(count, start + 1000))}, tags=["users"])
        cache.set("other", b"2", tags=["admins"])
    # An invalidation of a tag that stays in use each time: the same work as the first.
    small_time = median_seconds(lambda: small.invalidate_tags(["users"]))
    large_time = median_seconds(lambda: large.invalidate_tags(["users"]))
    get_time = median_seconds(lambda: large.get("other"))
    # Generous bounds (a shared, noisy machine): a scan of 100,000 entries
    # would be a thousand times slower than either.
    assert large_time < 10 * small_time + 20e-6, (large_time, small_time)
    assert large_time < 20 * get_time + 20e-6, (large_time, get_time)
    # Every one of them reads as a miss now; the other tag's entry is untouched.
    assert all(large.get(f"user:{n}") is None for n in range(0, 100_000, 7))
    assert large.get("other") == b"2"


def test_the_sweeper_reclaims_invalidated_entries_and_their_memory(cache: Cache) -> None:
    cache = Cache(cache.policy, max_size=20_000, clock=cache.clock)
    empty = cache.memory_usage
    cache.set_many({f"k{n}": b"v" * 10 for n in range(10_000)}, tags=["gone"])
    cache.set("kept", b"1", tags=["kept"])
    kept_alone = None
    cache.invalidate_tags(["gone"])
    assert len(cache) == 10_001  # an invalidation removes nothing itself
    assert cache.reclaim_invalidated() == 10_000
    assert len(cache) == 1 and cache.get("kept") == b"1"
    kept_alone = cache.memory_usage
    cache.delete("kept")
    assert cache.memory_usage == empty and kept_alone > empty
    assert cache.stats()["tag_invalidated_entries"] == 10_000
    assert cache.reclaim_invalidated() == 0  # nothing new: no walk


def test_a_walk_overtaken_by_an_invalidation_is_run_again(clock: FakeClock) -> None:
    cache = Cache("lru", max_size=20_000, clock=clock)
    cache.set_many({f"a{n}": b"v" for n in range(5_000)}, tags=["a"])
    cache.set_many({f"b{n}": b"v" for n in range(5_000)}, tags=["b"])
    cache.invalidate_tags(["a"])
    sweeper = cache._sweeper
    calls = 0

    def invalidate_b_midway() -> None:
        nonlocal calls
        calls += 1
        if calls == 2:
            cache.invalidate_tags(["b"])

    sweeper.pause = invalidate_b_midway
    assert cache.reclaim_invalidated() == 10_000 and len(cache) == 0


def test_the_sweeper_thread_reclaims_after_an_invalidation() -> None:
    with Cache("lru", max_size=20_000, cleanup_interval=3600) as cache:
        cache.set_many({f"k{n}": b"v" for n in range(5_000)}, tags=["gone"])
        cache.invalidate_tags(["gone"])
        deadline = time.monotonic() + 10
        while len(cache) and time.monotonic() < deadline:
            time.sleep(0.01)
        assert len(cache) == 0 and cache.stats()["tags"] == 0


# -- limits and bad input: refused, nothing changed ----------------------------------------


@pytest.mark.parametrize(
    "tags, error",
    [
        ([f"t{n}" for n in range(33)], TooManyTags),
        (["x" * 129], TagTooLong),
        (["has space"], InvalidTag),
        ([""], InvalidTag),
        (["ключ"], InvalidTag),
        ([3], InvalidTag),
        ("one-string", InvalidTag),
    ],
)
def test_bad_tags_are_refused_and_nothing_changes(cache: Cache, tags, error) -> None:
    cache.set("k", b"old", tags=["kept"])
    before = (cache.memory_usage, cache.stats()["tags"])
    with pytest.raises(error):
        cache.set("k", b"new", tags=tags)
    with pytest.raises(error):
        cache.set_many({"k": b"new", "other": b"1"}, tags=tags)
    assert cache.get("k") == b"old" and cache.get("other") is None
    assert (cache.memory_usage, cache.stats()["tags"]) == before


def test_a_bad_name_in_an_invalidation_invalidates_none_of_them(cache: Cache) -> None:
    cache.set("k", b"1", tags=["good"])
    with pytest.raises(InvalidTag):
        cache.invalidate_tags(["good", "not good"])
    assert cache.get("k") == b"1" and cache.stats()["tag_invalidations"] == 0


def test_the_limits_are_settings(clock: FakeClock) -> None:
    cache = Cache("lru", clock=clock, tag_limits=TagLimits(max_tags_per_entry=2, max_tag_length=4, max_tags=3))
    cache.set("a", b"1", tags=["abcd", "b"])
    with pytest.raises(TooManyTags):
        cache.set("a", b"1", tags=["a", "b", "c"])
    with pytest.raises(TagTooLong):
        cache.set("a", b"1", tags=["abcde"])
    cache.set("b", b"1", tags=["c"])
    with pytest.raises(TagLimitReached):
        cache.set("c", b"1", tags=["d"])
    assert cache.get("c") is None and cache.stats()["tags"] == 3
    cache.set("c", b"1", tags=["c"])  # a tag in use is no new one
    with pytest.raises(ValueError):
        TagLimits(max_tags_per_entry=256)


# -- memory and snapshots ----------------------------------------------------------------


@pytest.mark.slow
def test_the_charge_of_a_tag_is_within_20_percent_of_tracemalloc() -> None:
    measured = measure_tag_overhead(100_000)
    assert abs(measured - TAG_OVERHEAD) <= 0.2 * TAG_OVERHEAD, measured


def test_snapshots_keep_tags_by_name_and_drop_invalidated_entries(tmp_path: Path, clock: FakeClock) -> None:
    cache = Cache("lru", clock=clock)
    cache.set("a", b"1", tags=["page", "user:1"])
    cache.set("b", b"2", tags=["gone"])
    cache.set("c", b"3", ttl=60, stale=30, tags=["page"])
    cache.set("d", b"4")
    cache.invalidate_tags(["gone"])
    Snapshotter(cache, tmp_path / "s.snap", producer="test").write_now()
    restored = Cache("lru", clock=FakeClock(5.0))
    Snapshotter(restored, tmp_path / "s.snap", producer="test").load()
    assert restored.get("b") is None and restored.get("d") == b"4"
    assert restored.tags_of(restored.get_entry("a")) == ("page", "user:1")
    restored.invalidate_tags(["page"])
    assert restored.get("a") is None and restored.get("c") is None and restored.get("d") == b"4"


def test_a_restored_entry_whose_tags_this_cache_refuses_is_left_out(tmp_path: Path, clock: FakeClock) -> None:
    cache = Cache("lru", clock=clock)
    cache.set("a", b"1", tags=["a-rather-long-tag"])
    cache.set("b", b"2", tags=["ok"])
    Snapshotter(cache, tmp_path / "s.snap", producer="test").write_now()
    restored = Cache("lru", clock=clock, tag_limits=TagLimits(max_tag_length=8))
    Snapshotter(restored, tmp_path / "s.snap", producer="test").load()
    assert restored.get("a") is None and restored.get("b") == b"2"


def _counted_right(cache: Cache) -> bool:
    """Every tag's count is the number of entries holding a ref to it, and
    the registry's memory is what its tags cost."""
    store = cache._store
    registry = store.tags
    held: dict[int, int] = {}
    for _, entry in store.entries():
        for tag_id, _ in entry.tag_refs:
            held[tag_id] = held.get(tag_id, 0) + 1
    counted = {registry._ids[name]: registry.entries_of(name) for name in registry}
    memory = sum(TAG_OVERHEAD + len(name) for name in registry)
    return counted == held and registry.memory == memory


@pytest.mark.parametrize("policy", sorted(POLICIES))
def test_counts_stay_true_through_a_random_mix_of_operations(policy: str, clock: FakeClock) -> None:
    import random

    rng = random.Random(14)
    cache = Cache(policy, max_size=50, clock=clock)
    names = [f"t{n}" for n in range(8)]
    for step in range(3000):
        key = f"k{rng.randrange(80)}"
        tags = rng.sample(names, rng.randrange(3))
        choice = rng.randrange(10)
        try:
            if choice < 4:
                cache.set(key, b"1", ttl=rng.choice([None, 5, 50]), tags=tags)
            elif choice == 4:
                cache.set_many({key: b"2", f"k{rng.randrange(80)}": b"3"}, tags=tags)
            elif choice == 5:
                cache.invalidate_tags(rng.sample(names, 1))
            elif choice == 6:
                cache.incr(key) if rng.random() < 0.5 else cache.touch(key, 30)
            elif choice == 7:
                cache.delete(key)
            elif choice == 8:
                cache.get(key)
            else:
                clock.tick(3)
                cache.sweep() if rng.random() < 0.5 else cache.reclaim_invalidated()
        except Exception as error:  # noeviction's full cache, incr of a non-integer
            assert type(error).__name__ in ("CacheFull", "NotAnInteger"), error
        assert _counted_right(cache), step


def test_invalidated_tags_names_those_in_use_in_one_call(clock: FakeClock) -> None:
    cache = Cache("lru", clock=clock)
    cache.set("a", b"1", tags=["red"])
    cache.set("b", b"2", tags=["blue"])
    assert cache.invalidated_tags(["blue", "green", "red"]) == ["blue", "red"]
    assert cache.get("a") is None and cache.get("b") is None
    assert cache.invalidate_tags(["green"]) == 0
