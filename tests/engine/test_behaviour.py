"""The behaviour every eviction policy shares, run once per policy (the
cachetools mixin pattern). Time is a FakeClock: no test sleeps."""

from __future__ import annotations

import pytest

from cachegrid.engine import (
    ANY,
    POLICIES,
    Cache,
    IntegerOverflow,
    InvalidCursor,
    InvalidKey,
    InvalidTTL,
    KeyNotFound,
    KeyTooLong,
    NotAnInteger,
    PreconditionFailed,
    ValueTooLarge,
)
from cachegrid.testing import FakeClock


class CacheBehaviour:
    policy: str

    def make(self, clock: FakeClock, **limits: int) -> Cache:
        return Cache(self.policy, clock=clock, **limits)

    @pytest.fixture
    def cache(self, clock: FakeClock) -> Cache:
        return self.make(clock)

    # -- get / set / delete ----------------------------------------------------

    def test_get_returns_what_set_stored(self, cache: Cache) -> None:
        cache.set("user:123", b'{"name":"Alice","age":30}')
        assert cache.get("user:123") == b'{"name":"Alice","age":30}'

    def test_get_of_missing_key_returns_default(self, cache: Cache) -> None:
        assert cache.get("nope") is None
        assert cache.get("nope", b"fallback") == b"fallback"

    def test_set_reports_created_then_replaced(self, cache: Cache) -> None:
        first = cache.set("k", b"1")
        second = cache.set("k", b"2")
        assert first.created is True
        assert second.created is False
        assert cache.get("k") == b"2"
        assert len(cache) == 1

    def test_every_write_gets_a_new_version(self, cache: Cache) -> None:
        versions = [cache.set("k", b"x").version for _ in range(3)]
        versions.append(cache.set("other", b"x").version)
        assert len(set(versions)) == 4
        assert versions == sorted(versions)
        entry = cache.get_entry("other")
        assert entry is not None and entry.version == versions[-1]

    def test_delete_removes_and_reports(self, cache: Cache) -> None:
        cache.set("k", b"v")
        assert cache.delete("k") is True
        assert cache.get("k") is None
        assert cache.delete("k") is False

    def test_exists_counts_no_hit_or_miss(self, cache: Cache) -> None:
        cache.set("k", b"v")
        assert cache.exists("k") and not cache.exists("nope")
        stats = cache.stats()
        assert (stats["hits"], stats["misses"]) == (0, 0)

    def test_keys_are_any_unicode_string(self, cache: Cache) -> None:
        for key in ("a/b", "with space", "ключ", "user:123", "emoji 🗝"):
            cache.set(key, key.encode())
        for key in ("a/b", "with space", "ключ", "user:123", "emoji 🗝"):
            assert cache.get(key) == key.encode()

    def test_clear_removes_everything_and_counts(self, cache: Cache) -> None:
        for i in range(5):
            cache.set(f"k{i}", b"v")
        assert cache.clear() == 5
        assert len(cache) == 0 and cache.memory_usage == 0
        cache.set("again", b"v")
        assert cache.get("again") == b"v"

    # -- batches ---------------------------------------------------------------

    def test_get_many_returns_only_found_keys(self, cache: Cache) -> None:
        cache.set_many({"a": b"1", "b": b"2"})
        assert cache.get_many(["a", "b", "c"]) == {"a": b"1", "b": b"2"}
        stats = cache.stats()
        assert (stats["hits"], stats["misses"]) == (2, 1)

    def test_set_many_with_ttl_expires_all(self, cache: Cache, clock: FakeClock) -> None:
        assert cache.set_many({"a": b"1", "b": b"2"}, ttl=5) == 2
        clock.tick(5)
        assert cache.get_many(["a", "b"]) == {}

    def test_set_many_stores_nothing_when_one_item_is_invalid(self, cache: Cache) -> None:
        cache.set("a", b"old")
        with pytest.raises(KeyTooLong) as raised:
            cache.set_many({"a": b"new", "x" * 251: b"v", "c": b"3"})
        assert raised.value.key == "x" * 251  # the error names the item
        with pytest.raises(ValueTooLarge):
            cache.set_many({"a": b"new", "big": b"x" * (1024 * 1024 + 1)})
        assert cache.get("a") == b"old" and not cache.exists("c") and not cache.exists("big")

    def test_delete_many_counts_deleted(self, cache: Cache) -> None:
        cache.set_many({"a": b"1", "b": b"2"})
        assert cache.delete_many(["a", "b", "c"]) == 2
        assert len(cache) == 0

    # -- TTL ---------------------------------------------------------------------

    def test_entry_expires_after_ttl(self, cache: Cache, clock: FakeClock) -> None:
        cache.set("k", b"v", ttl=10)
        clock.tick(9.999)
        assert cache.get("k") == b"v"
        clock.tick(0.001)
        assert cache.get("k") is None
        assert not cache.exists("k")

    def test_expired_entry_is_never_returned_even_unswept(self, cache: Cache, clock: FakeClock) -> None:
        cache.set("k", b"v", ttl=1)
        clock.tick(2)
        assert cache.get_entry("k") is None
        assert cache.get_many(["k"]) == {}
        assert cache.keys().keys == []
        with pytest.raises(KeyNotFound):
            cache.ttl("k")
        assert cache.stats()["expired"] == 1

    def test_ttl_reports_time_left_or_none(self, cache: Cache, clock: FakeClock) -> None:
        cache.set("t", b"v", ttl=30)
        cache.set("forever", b"v")
        clock.tick(10)
        assert cache.ttl("t") == pytest.approx(20)
        assert cache.ttl("forever") is None
        with pytest.raises(KeyNotFound):
            cache.ttl("missing")

    def test_set_without_ttl_drops_the_old_ttl(self, cache: Cache, clock: FakeClock) -> None:
        cache.set("k", b"v", ttl=5)
        cache.set("k", b"w")
        clock.tick(100)
        assert cache.get("k") == b"w"

    def test_touch_sets_a_new_ttl_and_keeps_value_and_version(self, cache: Cache, clock: FakeClock) -> None:
        version = cache.set("k", b"v", ttl=5).version
        assert cache.touch("k", 100) is True
        clock.tick(50)
        entry = cache.get_entry("k")
        assert entry is not None and entry.value == b"v" and entry.version == version
        assert cache.touch("missing", 10) is False

    def test_persist_removes_the_ttl(self, cache: Cache, clock: FakeClock) -> None:
        cache.set("k", b"v", ttl=5)
        assert cache.persist("k") is True
        clock.tick(1000)
        assert cache.get("k") == b"v" and cache.ttl("k") is None
        assert cache.persist("missing") is False

    @pytest.mark.parametrize("ttl", [0, -1, float("nan"), float("inf"), 1e11, "10", True])
    def test_invalid_ttl_is_refused_and_nothing_stored(self, cache: Cache, ttl: object) -> None:
        with pytest.raises(InvalidTTL):
            cache.set("k", b"v", ttl=ttl)  # type: ignore[arg-type]
        assert not cache.exists("k")

    def test_fractional_ttl(self, cache: Cache, clock: FakeClock) -> None:
        cache.set("k", b"v", ttl=0.25)
        clock.tick(0.2)
        assert cache.exists("k")
        clock.tick(0.05)
        assert not cache.exists("k")

    # -- counters ------------------------------------------------------------------

    def test_incr_creates_at_zero_and_adds(self, cache: Cache) -> None:
        assert cache.incr("n") == 1
        assert cache.incr("n", 41) == 42
        assert cache.decr("n", 2) == 40
        assert cache.get("n") == b"40"

    def test_incr_keeps_the_ttl(self, cache: Cache, clock: FakeClock) -> None:
        cache.set("n", b"5", ttl=10)
        clock.tick(5)
        assert cache.incr("n") == 6
        assert cache.ttl("n") == pytest.approx(5)
        clock.tick(5)
        assert cache.get("n") is None

    @pytest.mark.parametrize("value", [b'"5"', b"5.0", b"1e3", b" 5", b"05", b"abc", b"", b"1_000"])
    def test_incr_refuses_a_value_that_is_not_an_integer(self, cache: Cache, value: bytes) -> None:
        cache.set("n", value)
        with pytest.raises(NotAnInteger):
            cache.incr("n")
        assert cache.get("n") == value

    def test_incr_refuses_to_overflow_64_bits(self, cache: Cache) -> None:
        cache.set("n", b"9223372036854775806")
        assert cache.incr("n") == 2**63 - 1
        with pytest.raises(IntegerOverflow):
            cache.incr("n")
        assert cache.get("n") == b"9223372036854775807"

    def test_incr_by_must_be_an_integer(self, cache: Cache) -> None:
        with pytest.raises(NotAnInteger):
            cache.incr("n", 1.5)  # type: ignore[arg-type]
        with pytest.raises(NotAnInteger):
            cache.decr("n", True)  # type: ignore[arg-type]
        assert not cache.exists("n")

    # -- conditional writes -------------------------------------------------------

    def test_only_if_absent(self, cache: Cache) -> None:
        cache.set("k", b"1", if_none_match=ANY)
        with pytest.raises(PreconditionFailed):
            cache.set("k", b"2", if_none_match=ANY)
        assert cache.get("k") == b"1"

    def test_only_if_absent_succeeds_over_an_expired_entry(self, cache: Cache, clock: FakeClock) -> None:
        cache.set("k", b"1", ttl=1)
        clock.tick(1)
        assert cache.set("k", b"2", if_none_match=ANY).created

    def test_only_if_present(self, cache: Cache) -> None:
        with pytest.raises(PreconditionFailed):
            cache.set("k", b"1", if_match=ANY)
        assert not cache.exists("k")
        cache.set("k", b"1")
        cache.set("k", b"2", if_match=ANY)
        assert cache.get("k") == b"2"

    def test_compare_and_set_against_version(self, cache: Cache) -> None:
        version = cache.set("k", b"1").version
        new_version = cache.set("k", b"2", if_match=[version]).version
        with pytest.raises(PreconditionFailed):
            cache.set("k", b"3", if_match=[version])  # stale version
        assert cache.get("k") == b"2"
        with pytest.raises(PreconditionFailed):
            cache.set("missing", b"x", if_match=[new_version])
        assert not cache.exists("missing")

    def test_if_match_with_versions_writes_when_any_of_them_is_current(self, cache: Cache) -> None:
        first = cache.set("k", b"1").version
        current = cache.set("k", b"2").version
        assert cache.set("k", b"3", if_match=[first, current, current + 100]).created is False
        with pytest.raises(PreconditionFailed):
            cache.set("k", b"4", if_match=[first, current])  # both stale now
        with pytest.raises(PreconditionFailed):
            cache.set("k", b"4", if_match=[])  # no ETag named a version
        assert cache.get("k") == b"3"

    def test_if_none_match_with_versions_writes_unless_one_of_them_is_current(self, cache: Cache) -> None:
        assert cache.set("k", b"1", if_none_match=[7]).created  # absent: nothing can match
        version = cache.get_entry("k").version  # type: ignore[union-attr]
        with pytest.raises(PreconditionFailed):
            cache.set("k", b"2", if_none_match=[version - 1, version])
        cache.set("k", b"3", if_none_match=[version - 1])
        assert cache.get("k") == b"3"

    def test_if_match_and_if_none_match_must_both_hold(self, cache: Cache) -> None:
        version = cache.set("k", b"1").version
        with pytest.raises(PreconditionFailed):
            cache.set("k", b"2", if_match=ANY, if_none_match=[version])
        cache.set("k", b"3", if_match=[version], if_none_match=[version + 1])
        assert cache.get("k") == b"3"

    def test_a_failed_condition_counts_no_hit_or_miss_and_writes_nothing(self, cache: Cache) -> None:
        version = cache.set("k", b"1").version
        for condition in ({"if_none_match": ANY}, {"if_none_match": [version]}, {"if_match": [version + 1]}):
            with pytest.raises(PreconditionFailed):
                cache.set("k", b"2", **condition)  # type: ignore[arg-type]
        with pytest.raises(PreconditionFailed):
            cache.set("absent", b"2", if_match=ANY)
        stats = cache.stats()
        assert (stats["hits"], stats["misses"], stats["sets"]) == (0, 0, 1)
        assert cache.get_entry("k").version == version  # type: ignore[union-attr]

    # -- limits --------------------------------------------------------------------

    def test_key_length_limit_is_in_utf8_bytes(self, cache: Cache) -> None:
        cache.set("k" * 250, b"v")
        with pytest.raises(KeyTooLong) as raised:
            cache.set("k" * 251, b"v")
        assert raised.value.limit == 250
        cache.set("я" * 125, b"v")  # 250 bytes
        with pytest.raises(KeyTooLong):
            cache.set("я" * 126, b"v")  # 252 bytes

    @pytest.mark.parametrize("key", ["", "\ud800", 5, None, b"bytes"])
    def test_invalid_keys_are_refused(self, cache: Cache, key: object) -> None:
        with pytest.raises(InvalidKey):
            cache.set(key, b"v")  # type: ignore[arg-type]
        assert len(cache) == 0

    def test_value_must_be_bytes(self, cache: Cache) -> None:
        with pytest.raises(TypeError):
            cache.set("k", "text")  # type: ignore[arg-type]
        assert not cache.exists("k")

    def test_value_size_limit(self, clock: FakeClock) -> None:
        cache = self.make(clock, max_value_size=10)
        cache.set("k", b"x" * 10)
        with pytest.raises(ValueTooLarge) as raised:
            cache.set("k", b"x" * 11)
        assert raised.value.limit == 10
        assert cache.get("k") == b"x" * 10
        assert cache.stats()["rejected_too_large"] == 1

    def test_a_value_over_the_limit_in_set_many_is_refused_and_counted(self, clock: FakeClock) -> None:
        cache = self.make(clock, max_value_size=10)
        with pytest.raises(ValueTooLarge) as raised:
            cache.set_many({"ok": b"x" * 10, "big": b"x" * 11})
        assert raised.value.limit == 10 and raised.value.key == "big"  # type: ignore[attr-defined]
        assert not cache.exists("ok")
        assert cache.stats()["rejected_too_large"] == 1

    def test_an_entry_over_the_memory_budget_is_counted_as_too_large(self, clock: FakeClock) -> None:
        cache = self.make(clock, max_memory=4096)
        for write in (lambda: cache.set("big", b"x" * 5000), lambda: cache.set_many({"big": b"x" * 5000})):
            with pytest.raises(ValueTooLarge):
                write()
        assert cache.stats()["rejected_too_large"] == 2

    def test_value_larger_than_the_memory_budget_is_refused_not_stored_by_evicting(self, clock: FakeClock) -> None:
        cache = self.make(clock, max_memory=4096)
        cache.set("a", b"1")
        with pytest.raises(ValueTooLarge) as raised:
            cache.set("big", b"x" * 5000)
        assert raised.value.what == "max_memory"
        assert cache.get("a") == b"1"

    def test_item_limit_holds(self, clock: FakeClock) -> None:
        cache = self.make(clock, max_size=10)
        for i in range(10):
            cache.set(f"k{i}", b"v")
        try:
            for i in range(10, 30):
                cache.set(f"k{i}", b"v")
        except Exception as error:  # noeviction refuses instead
            assert not cache._store.evicts, error
        assert len(cache) == 10

    def test_memory_limit_holds(self, clock: FakeClock) -> None:
        cache = self.make(clock, max_memory=20_000)
        try:
            for i in range(200):
                cache.set(f"k{i}", b"x" * 100 * (i % 5 + 1))
                assert cache.memory_usage <= 20_000
        except Exception as error:
            assert not cache._store.evicts, error
        assert 0 < cache.memory_usage <= 20_000

    def test_expired_entries_are_reclaimed_before_a_live_one_is_evicted(self, clock: FakeClock) -> None:
        cache = self.make(clock, max_size=4)
        cache.set("live1", b"v")
        cache.set("dies", b"v", ttl=1)
        cache.set("live2", b"v")
        cache.set("live3", b"v")
        clock.tick(2)
        cache.set("new", b"v")
        assert sorted(cache.keys().keys) == ["live1", "live2", "live3", "new"]
        stats = cache.stats()
        assert (stats["expired"], stats["evictions"]) == (1, 0)

    # -- memory accounting (small scale; test_memory.py checks the truth) ----------

    def test_memory_usage_returns_to_zero(self, cache: Cache, clock: FakeClock) -> None:
        cache.set("a", b"x" * 100, ttl=5)
        cache.set("b", b"y" * 10)
        cache.set("a", b"z" * 50)
        cache.touch("b", 3)
        cache.incr("n")
        assert cache.memory_usage > 160
        cache.delete("a")
        clock.tick(10)
        cache.sweep()
        cache.delete("n")
        assert cache.memory_usage == 0 and len(cache) == 0

    # -- statistics --------------------------------------------------------------

    def test_stats_count_every_kind_of_operation(self, clock: FakeClock) -> None:
        cache = self.make(clock, max_size=2)
        cache.set("a", b"1")
        cache.set("b", b"2", ttl=1)
        cache.get("a")
        cache.get("nope")
        cache.delete("a")
        clock.tick(1)
        cache.sweep()
        clock.tick(4)
        stats = cache.stats()
        assert stats["hits"] == 1 and stats["misses"] == 1
        assert stats["sets"] == 2 and stats["deletes"] == 1 and stats["expired"] == 1
        assert stats["current_size"] == 0 and stats["max_size"] == 2
        assert stats["hit_ratio"] == 0.5
        assert stats["policy"] == self.policy
        assert stats["uptime_seconds"] == pytest.approx(5)
        assert stats["memory_usage_bytes"] == 0 and stats["max_memory_bytes"] == 512 * 1024 * 1024

    # -- key listing ---------------------------------------------------------------

    def test_keys_pattern_without_glob_is_a_prefix(self, cache: Cache) -> None:
        cache.set_many({"user:123": b"1", "user:456": b"2", "product:1": b"3", "xuser:1": b"4"})
        assert sorted(cache.keys("user:").keys) == ["user:123", "user:456"]

    def test_keys_pattern_with_glob(self, cache: Cache) -> None:
        cache.set_many({"user:123": b"1", "user:456": b"2", "product:1": b"3", "user:4x": b"4"})
        assert sorted(cache.keys("user:[0-9][0-9][0-9]").keys) == ["user:123", "user:456"]
        assert sorted(cache.keys("*:1??").keys) == ["user:123"]
        assert sorted(cache.keys("*").keys) == ["product:1", "user:123", "user:456", "user:4x"]

    def test_keys_pages_through_everything_exactly_once(self, cache: Cache) -> None:
        expected = {f"k{i:03d}" for i in range(250)}
        cache.set_many(dict.fromkeys(expected, b"v"))
        seen: list[str] = []
        page = cache.keys(limit=100)
        seen += page.keys
        while page.cursor is not None:
            assert len(page.keys) == 100
            page = cache.keys(limit=100, cursor=page.cursor)
            seen += page.keys
        assert len(seen) == 250 and set(seen) == expected

    def test_keys_listing_skips_keys_deleted_meanwhile_and_survives_writes(self, cache: Cache) -> None:
        cache.set_many({f"k{i}": b"v" for i in range(10)})
        page = cache.keys(limit=3)
        deleted = [f"k{i}" for i in range(10) if f"k{i}" not in page.keys][:2]
        cache.delete_many(deleted)
        cache.set("new", b"v")
        rest: list[str] = []
        cursor = page.cursor
        while cursor is not None:
            next_page = cache.keys(limit=3, cursor=cursor)
            rest += next_page.keys
            cursor = next_page.cursor
        listed = page.keys + rest
        stayed = {f"k{i}" for i in range(10)} - set(deleted)
        # Every key present throughout exactly once, no deleted one; the key
        # added meanwhile may or may not be listed (as Redis SCAN).
        assert sorted(key for key in listed if key != "new") == sorted(stayed)
        assert listed.count("new") <= 1

    @pytest.mark.parametrize("cursor", ["nonsense", "abc.1", ""])
    def test_keys_unknown_cursor_is_refused(self, cache: Cache, cursor: str) -> None:
        with pytest.raises(InvalidCursor):
            cache.keys(cursor=cursor)

    def test_keys_limit_must_be_positive(self, cache: Cache) -> None:
        with pytest.raises(ValueError):
            cache.keys(limit=0)


# One concrete test class per policy, generated from the registry so that a new
# policy is tested by the shared suite as soon as it is registered.
for _policy in POLICIES:
    _name = f"Test{_policy.capitalize()}Behaviour"
    globals()[_name] = type(_name, (CacheBehaviour,), {"policy": _policy})
