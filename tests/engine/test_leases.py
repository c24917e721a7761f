"""Leases and locks in the engine (leases.py, through Cache), on a fake clock."""

from __future__ import annotations

import gc
import tracemalloc

import pytest

from cachegrid.engine import Cache, InvalidKey, InvalidLease, LeaseNotHeld, TooManyLeases, ValueTooLarge
from cachegrid.engine.leases import LEASE_OVERHEAD, Leases
from cachegrid.testing import FakeClock


@pytest.fixture
def cache(clock: FakeClock) -> Cache:
    return Cache("lru", clock=clock, max_leases=5, max_lease_time=60)


def test_on_a_miss_exactly_one_caller_gets_the_lease(cache: Cache) -> None:
    entry, first = cache.get_or_lease("k", 10)
    assert entry is None and first is not None and first.token
    for _ in range(3):
        entry, other = cache.get_or_lease("k", 10)
        assert entry is None and other is not None
        assert other.token is None and other.wait == pytest.approx(10)


def test_the_others_are_told_how_long_the_holder_has_left(cache: Cache, clock: FakeClock) -> None:
    cache.get_or_lease("k", 10)
    clock.tick(4)
    assert cache.get_or_lease("k", 10)[1].wait == pytest.approx(6)  # type: ignore[union-attr]


def test_a_hit_asks_for_no_lease(cache: Cache) -> None:
    cache.set("k", b"1")
    entry, grant = cache.get_or_lease("k", 10)
    assert entry is not None and entry.value == b"1" and grant is None
    assert cache.lease_remaining("k") is None


def test_the_holders_write_stores_and_ends_the_lease(cache: Cache) -> None:
    token = cache.get_or_lease("k", 10)[1].token  # type: ignore[union-attr]
    cache.set_leased("k", b"42", token, ttl=30)  # type: ignore[arg-type]
    assert cache.get("k") == b"42"
    assert cache.lease_remaining("k") is None
    assert cache.stats()["leases_filled"] == 1


@pytest.mark.parametrize("token", ["forged", "", "x" * 22])
def test_a_forged_token_writes_nothing_and_keeps_the_lease(cache: Cache, token: str) -> None:
    cache.set("other", b"1")
    real = cache.get_or_lease("k", 10)[1].token  # type: ignore[union-attr]
    with pytest.raises(LeaseNotHeld):
        cache.set_leased("k", b"2", token)
    assert cache.get("k") is None and cache.get("other") == b"1"
    assert cache.lease_remaining("k") == pytest.approx(10)
    cache.set_leased("k", b"3", real)  # type: ignore[arg-type]
    assert cache.get("k") == b"3"


def test_the_token_of_another_key_is_not_this_keys(cache: Cache) -> None:
    token = cache.get_or_lease("a", 10)[1].token  # type: ignore[union-attr]
    cache.get_or_lease("b", 10)
    with pytest.raises(LeaseNotHeld):
        cache.set_leased("b", b"1", token)  # type: ignore[arg-type]


def test_an_expired_lease_lets_the_next_caller_win_and_its_token_is_void(cache: Cache, clock: FakeClock) -> None:
    old = cache.get_or_lease("k", 10)[1].token  # type: ignore[union-attr]
    clock.tick(10)
    new = cache.get_or_lease("k", 10)[1].token  # type: ignore[union-attr]
    assert new and new != old
    with pytest.raises(LeaseNotHeld):
        cache.set_leased("k", b"late", old)  # type: ignore[arg-type]
    assert cache.get("k") is None
    cache.set_leased("k", b"fresh", new)  # type: ignore[arg-type]
    assert cache.get("k") == b"fresh"
    assert cache.stats()["leases_expired"] == 1


def test_a_plain_write_works_and_leaves_the_lease_alone(cache: Cache) -> None:
    token = cache.get_or_lease("k", 10)[1].token  # type: ignore[union-attr]
    cache.set("k", b"plain")
    assert cache.get("k") == b"plain"
    assert cache.lease_remaining("k") == pytest.approx(10)
    cache.set_leased("k", b"leased", token)  # type: ignore[arg-type]
    assert cache.get("k") == b"leased"


def test_a_failed_write_keeps_the_lease(clock: FakeClock) -> None:
    cache = Cache("lru", clock=clock, max_value_size=4)
    token = cache.get_or_lease("k", 10)[1].token  # type: ignore[union-attr]
    with pytest.raises(ValueTooLarge):
        cache.set_leased("k", b"too large", token)  # type: ignore[arg-type]
    assert cache.lease_remaining("k") == pytest.approx(10)


# -- locks -------------------------------------------------------------------------


def test_a_lock_is_acquired_once_until_released(cache: Cache) -> None:
    token = cache.acquire_lease("job", 30).token
    assert token
    assert cache.acquire_lease("job", 30).token is None
    assert cache.lease_remaining("job") == pytest.approx(30)
    cache.release_lease("job", token)
    assert cache.lease_remaining("job") is None
    assert cache.acquire_lease("job", 30).token


def test_a_release_with_a_wrong_token_changes_nothing(cache: Cache) -> None:
    cache.acquire_lease("job", 30)
    with pytest.raises(LeaseNotHeld):
        cache.release_lease("job", "guess")
    assert cache.lease_remaining("job") == pytest.approx(30)


def test_a_lock_expires_by_itself(cache: Cache, clock: FakeClock) -> None:
    token = cache.acquire_lease("job", 5).token
    clock.tick(5)
    assert cache.lease_remaining("job") is None
    with pytest.raises(LeaseNotHeld):
        cache.release_lease("job", token)  # type: ignore[arg-type]
    assert cache.acquire_lease("job", 5).token


def test_deleting_or_clearing_the_key_does_not_hand_the_lock_on(cache: Cache) -> None:
    cache.set("job", b"1")
    cache.acquire_lease("job", 30)
    cache.delete("job")
    cache.clear()
    assert cache.acquire_lease("job", 30).token is None
    assert cache.get_or_lease("job", 30)[1].token is None  # type: ignore[union-attr]


def test_a_lock_and_a_miss_lease_are_the_same_lease(cache: Cache) -> None:
    cache.acquire_lease("k", 30)
    entry, grant = cache.get_or_lease("k", 30)
    assert entry is None and grant is not None and grant.token is None


# -- limits ------------------------------------------------------------------------


@pytest.mark.parametrize("seconds", [0, -1, 61, float("inf"), float("nan"), "5", True])
def test_a_bad_lease_time_is_refused_and_grants_nothing(cache: Cache, seconds: object) -> None:
    with pytest.raises(InvalidLease):
        cache.acquire_lease("k", seconds)  # type: ignore[arg-type]
    with pytest.raises(InvalidLease):
        cache.get_or_lease("k", seconds)  # type: ignore[arg-type]
    assert cache.lease_remaining("k") is None and cache.stats()["leases_held"] == 0


def test_a_bad_key_is_refused(cache: Cache) -> None:
    with pytest.raises(InvalidKey):
        cache.acquire_lease("", 5)
    with pytest.raises(InvalidKey):
        cache.acquire_lease("k" * 300, 5)


def test_at_most_max_leases_are_held_and_expired_ones_make_room(cache: Cache, clock: FakeClock) -> None:
    for number in range(5):
        assert cache.acquire_lease(f"k{number}", 10).token
    with pytest.raises(TooManyLeases) as refused:
        cache.acquire_lease("one-more", 10)
    assert refused.value.limit == 5
    assert cache.stats()["leases_held"] == 5
    clock.tick(10)
    for number in range(5):  # the dead ones make room for as many new ones
        assert cache.acquire_lease(f"new{number}", 10).token
    assert cache.stats()["leases_held"] == 5


def test_dead_leases_are_reclaimed_as_new_ones_come(clock: FakeClock) -> None:
    leases = Leases(clock, max_leases=1000, max_lease_time=60)
    for number in range(500):
        leases.acquire(f"k{number}", 1)
        clock.tick(0.1)
    # At most the last 10 s of leases (1 s each, one every 0.1 s) are live.
    assert len(leases) <= 12
    assert leases.counters()["leases_expired"] >= 488


def test_lease_memory_is_accounted_and_returned(cache: Cache) -> None:
    token = cache.acquire_lease("ключ", 10).token
    assert cache.stats()["lease_memory_bytes"] == len("ключ".encode()) + LEASE_OVERHEAD
    cache.release_lease("ключ", token)  # type: ignore[arg-type]
    assert cache.stats()["lease_memory_bytes"] == 0


def test_the_charge_per_lease_covers_what_it_really_takes(clock: FakeClock) -> None:
    leases = Leases(clock, max_leases=20_000, max_lease_time=60)
    keys = [f"user:{number:06d}" for number in range(10_000)]
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for key in keys:
            leases.acquire(key, 30)
        measured = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    accounted = leases.memory_usage - sum(map(len, keys))  # keys are the caller's strings, charged anyway
    # The charge is at least what they take, and not wildly more.
    assert measured <= accounted <= 2 * measured
