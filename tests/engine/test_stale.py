"""Stale values in the engine, on a fake clock: a stale window served with
one refresh lease, and marking a key stale instead of deleting it."""

from __future__ import annotations

import pytest

from cachegrid.engine import Cache, InvalidTTL
from cachegrid.testing import FakeClock


@pytest.fixture
def cache(clock: FakeClock) -> Cache:
    return Cache("lru", clock=clock, max_leases=3)


def test_within_the_window_the_old_value_is_served_and_one_reader_gets_the_lease(
    cache: Cache, clock: FakeClock
) -> None:
    cache.set("k", b"old", 10, stale=20)
    entry, grant = cache.get_or_lease("k", 5)
    assert entry is not None and not entry.is_stale(clock()) and grant is None
    clock.tick(10)
    entry, first = cache.get_or_lease("k", 5)
    assert entry is not None and entry.value == b"old" and entry.is_stale(clock())
    assert first is not None and first.token
    for _ in range(3):
        entry, other = cache.get_or_lease("k", 5)
        assert entry is not None and entry.value == b"old"
        assert other is not None and other.token is None
    assert cache.stats()["stale_hits"] == 4


def test_the_refresh_ends_the_lease_and_the_value_is_fresh_again(cache: Cache, clock: FakeClock) -> None:
    cache.set("k", b"old", 10, stale=20)
    clock.tick(15)
    token = cache.get_or_lease("k", 5)[1].token  # type: ignore[union-attr]
    cache.set_leased("k", b"new", token, 10, stale=20)  # type: ignore[arg-type]
    entry, grant = cache.get_or_lease("k", 5)
    assert entry is not None and entry.value == b"new" and grant is None
    assert cache.lease_remaining("k") is None


def test_after_the_window_it_is_a_miss(cache: Cache, clock: FakeClock) -> None:
    cache.set("k", b"old", 10, stale=20)
    clock.tick(30)
    entry, grant = cache.get_or_lease("k", 5)
    assert entry is None and grant is not None and grant.token


def test_a_failed_refresh_keeps_the_old_value_until_the_window_ends(cache: Cache, clock: FakeClock) -> None:
    cache.set("k", b"old", 10, stale=20)
    clock.tick(10)
    cache.get_or_lease("k", 5)  # the refresher never writes
    clock.tick(5)
    entry, grant = cache.get_or_lease("k", 5)  # its lease ran out: the next reader may try
    assert entry is not None and entry.value == b"old" and grant is not None and grant.token
    clock.tick(15)
    assert cache.get_or_lease("k", 5)[0] is None


def test_a_plain_read_of_a_stale_value_is_counted_and_asks_no_lease(cache: Cache, clock: FakeClock) -> None:
    cache.set("k", b"old", 10, stale=20)
    clock.tick(11)
    entry = cache.get_entry("k")
    assert entry is not None and entry.is_stale(clock())
    assert cache.stats()["stale_hits"] == 1 and cache.lease_remaining("k") is None


def test_with_every_lease_taken_a_stale_read_still_answers(cache: Cache, clock: FakeClock) -> None:
    for name in ("a", "b", "c"):
        cache.acquire_lease(name, 60)
    cache.set("k", b"old", 10, stale=20)
    clock.tick(11)
    entry, grant = cache.get_or_lease("k", 5)
    assert entry is not None and entry.value == b"old" and grant is None


@pytest.mark.parametrize("stale", [-1, float("inf"), float("nan"), 10**11])
def test_a_bad_stale_window_is_refused_and_changes_nothing(cache: Cache, stale: float) -> None:
    cache.set("k", b"before", 10)
    with pytest.raises(InvalidTTL):
        cache.set("k", b"after", 10, stale=stale)
    assert cache.get("k") == b"before"


# -- mark stale ----------------------------------------------------------------------


def test_marking_stale_keeps_an_entry_until_the_end_of_its_window(cache: Cache, clock: FakeClock) -> None:
    version = cache.set("k", b"v", 100, stale=50).version
    clock.tick(10)
    assert cache.mark_stale("k", grace=30)
    entry = cache.peek_entry("k")
    assert entry is not None and entry.is_stale(clock()) and entry.fresh_until == clock()
    assert entry.expires_at == 1000 + 150 and entry.version == version and entry.value == b"v"
    clock.tick(139)
    assert cache.get_or_lease("k", 5)[0] is not None
    clock.tick(1)
    assert cache.get_or_lease("k", 5)[0] is None


@pytest.mark.parametrize("ttl", [None, 1000])
def test_marking_stale_gives_an_entry_without_a_window_the_grace(
    cache: Cache, clock: FakeClock, ttl: float | None
) -> None:
    cache.set("k", b"v", ttl)
    assert cache.mark_stale("k", grace=30)
    entry, grant = cache.get_or_lease("k", 5)
    assert entry is not None and entry.value == b"v" and grant is not None and grant.token
    assert entry.expires_at == clock() + 30
    clock.tick(30)
    assert cache.get("k") is None


def test_the_grace_never_lengthens_an_entry(cache: Cache, clock: FakeClock) -> None:
    cache.set("k", b"v", 5)
    cache.mark_stale("k", grace=30)
    assert cache.peek_entry("k").expires_at == clock() + 5  # type: ignore[union-attr]


def test_marking_stale_twice_keeps_the_first_mark(cache: Cache, clock: FakeClock) -> None:
    cache.set("k", b"v", 100, stale=50)
    cache.mark_stale("k", grace=30)
    marked_at = clock()
    clock.tick(5)
    cache.mark_stale("k", grace=30)
    assert cache.peek_entry("k").fresh_until == marked_at  # type: ignore[union-attr]


def test_marking_a_missing_key_is_false_and_counts_nothing(cache: Cache) -> None:
    assert cache.mark_stale("absent", grace=30) is False
    assert cache.stats()["marked_stale"] == 0
    cache.set("k", b"v")
    assert cache.mark_stale("k", grace=30) is True
    assert cache.stats()["marked_stale"] == 1


def test_marking_stale_keeps_the_type_and_the_memory_accounting(cache: Cache) -> None:
    cache.set("k", b"\x00raw", 100, binary=True)
    before = cache.memory_usage
    cache.mark_stale("k", grace=30)
    entry = cache.peek_entry("k")
    assert entry is not None and entry.binary and entry.value == b"\x00raw"
    assert cache.memory_usage == before + 8  # fresh_until: 8 bytes, charged with the value
    cache.delete("k")
    assert cache.memory_usage == 0
