"""The inflations kept for identity reads (compression.py ``InflatedValues``):
a slot answers only for the very gzip member it was inflated from, the bound
holds after every call, large values are not kept, and threads reading and
replacing the same keys always get the value of the member they read.
tests/integration/test_inflated_reads.py holds the same through a real server."""

from __future__ import annotations

import json
import random
import threading

import pytest

from cachegrid.daemon.compression import SLOT_OVERHEAD, InflatedValues, gzip_bytes, inflated_values


def document(seed: int, users: int = 40) -> bytes:
    rows = [{"id": n, "name": f"user {seed}-{n}", "active": n % 2 == 0} for n in range(users)]
    return json.dumps(rows, separators=(",", ":")).encode()


def cost(value: bytes) -> int:
    return len(gzip_bytes(value)) + len(value) + SLOT_OVERHEAD


def test_a_second_read_is_a_hit_and_gives_the_same_value() -> None:
    kept = InflatedValues(1 << 20)
    value = document(1)
    held = gzip_bytes(value)
    assert kept.value("k", held, len(value)) == value
    again = kept.value("k", bytes(held), len(value))  # an equal copy, as each engine read makes
    assert again == value
    stats = kept.stats()
    assert (stats["inflated_cache_hits"], stats["inflated_cache_misses"], stats["inflated_cache_entries"]) == (1, 1, 1)
    assert stats["inflated_cache_bytes"] == cost(value)
    assert stats["inflated_cache_max_bytes"] == 1 << 20


def test_another_member_for_the_key_is_never_answered_from_the_slot() -> None:
    kept = InflatedValues(1 << 20)
    first, second = document(1), document(2)
    assert len(first) == len(second)  # same size: only the bytes tell them apart
    kept.value("k", gzip_bytes(first), len(first))
    assert kept.value("k", gzip_bytes(second), len(second)) == second
    assert kept.value("k", gzip_bytes(second), len(second)) == second
    assert kept.value("k", gzip_bytes(first), len(first)) == first  # the key's value changed back
    stats = kept.stats()
    assert stats["inflated_cache_entries"] == 1 and stats["inflated_cache_bytes"] == cost(first)
    assert (stats["inflated_cache_hits"], stats["inflated_cache_misses"]) == (1, 3)


def test_drop_and_clear_free_the_slots() -> None:
    kept = InflatedValues(1 << 20)
    for key in ("a", "b", "c"):
        value = document(ord(key))
        kept.value(key, gzip_bytes(value), len(value))
    kept.drop("b")
    kept.drop("missing")
    stats = kept.stats()
    assert stats["inflated_cache_entries"] == 2
    assert stats["inflated_cache_bytes"] == cost(document(ord("a"))) + cost(document(ord("c")))
    kept.clear()
    assert kept.stats()["inflated_cache_entries"] == kept.stats()["inflated_cache_bytes"] == 0


def test_least_recently_read_goes_first() -> None:
    values = {key: document(n) for n, key in enumerate("abcde")}
    kept = InflatedValues(4 * max(cost(value) for value in values.values()) + 10)  # room for four
    for key in "abcd":
        kept.value(key, gzip_bytes(values[key]), len(values[key]))
    kept.value("a", gzip_bytes(values["a"]), len(values["a"]))  # a read: "b" is now the oldest
    kept.value("e", gzip_bytes(values["e"]), len(values["e"]))
    assert list(kept._slots) == ["c", "d", "a", "e"]
    hits = kept.stats()["inflated_cache_hits"]
    kept.value("a", gzip_bytes(values["a"]), len(values["a"]))
    kept.value("b", gzip_bytes(values["b"]), len(values["b"]))
    assert kept.stats()["inflated_cache_hits"] == hits + 1  # "a" kept, "b" was not


@pytest.mark.parametrize("seed", range(5))
def test_the_bound_holds_after_every_read(seed: int) -> None:
    chance = random.Random(seed)
    values = [document(n, chance.randrange(5, 200)) for n in range(60)]
    members = [gzip_bytes(value) for value in values]
    capacity = chance.randrange(20_000, 120_000)
    kept = InflatedValues(capacity)
    for _ in range(2000):
        key, n = f"k{chance.randrange(30)}", chance.randrange(len(values))
        assert kept.value(key, members[n], len(values[n])) == values[n]
        if chance.random() < 0.05:
            kept.drop(key)
        stats = kept.stats()
        assert stats["inflated_cache_bytes"] <= capacity
        slots = kept._slots  # the bookkeeping matches the slots
        assert stats["inflated_cache_bytes"] == sum(len(a) + len(b) + SLOT_OVERHEAD for a, b in slots.values())
        assert stats["inflated_cache_entries"] == len(slots)


def test_a_value_over_a_quarter_of_the_bound_is_not_kept() -> None:
    value = document(7, 400)
    kept = InflatedValues(4 * cost(value) - 1)
    assert kept.value("big", gzip_bytes(value), len(value)) == value
    assert kept.stats()["inflated_cache_entries"] == 0
    kept = InflatedValues(4 * cost(value))
    kept.value("big", gzip_bytes(value), len(value))
    assert kept.stats()["inflated_cache_entries"] == 1


def test_size_zero_keeps_and_counts_nothing() -> None:
    kept = inflated_values(0)
    value = document(3)
    for _ in range(3):
        assert kept.value("k", gzip_bytes(value), len(value)) == value
    assert kept.stats() == {
        "inflated_cache_bytes": 0,
        "inflated_cache_entries": 0,
        "inflated_cache_max_bytes": 0,
        "inflated_cache_hits": 0,
        "inflated_cache_misses": 0,
    }


def test_threads_reading_and_replacing_the_same_keys_get_the_value_they_read() -> None:
    members = [(gzip_bytes(document(n)), document(n)) for n in range(8)]
    kept = InflatedValues(4 * cost(members[0][1]))  # room for four: slots come and go all the time
    failures: list[str] = []

    def reader(seed: int) -> None:
        chance = random.Random(seed)
        for _ in range(3000):
            held, plain = members[chance.randrange(len(members))]
            key = f"k{chance.randrange(3)}"
            if kept.value(key, held, len(plain)) != plain:
                failures.append(key)
            if chance.random() < 0.01:
                kept.clear()

    threads = [threading.Thread(target=reader, args=(seed,)) for seed in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []
    stats = kept.stats()
    assert stats["inflated_cache_bytes"] <= kept.capacity
    assert stats["inflated_cache_bytes"] == sum(len(a) + len(b) + SLOT_OVERHEAD for a, b in kept._slots.values())
    assert stats["inflated_cache_hits"] + stats["inflated_cache_misses"] == 6 * 3000
