"""The ``adaptive`` policy's own behaviour: the small queue grows where only
recency counts, stays small where frequency does, a read hit only counts a
use, a ghost sends a returning key to main, the counters show the share and
a snapshot keeps the queues, the counts and the share."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from cachegrid.engine import Cache
from cachegrid.engine.adaptive import IN_MAIN, MAIN, SMALL, STAMP_MASK, USES, AdaptiveStore
from cachegrid.engine.snapshot import Snapshotter
from cachegrid.engine.store import Limits


def replay(store: AdaptiveStore, keys: list[int]) -> float:
    for key in keys:
        name = str(key)
        if store.get(name) is None:
            store.set(name, b"v")
    return store.hits / len(keys)


def recency_trace(size: int, requests: int, seed: int = 1) -> list[int]:
    """10% new keys; the rest repeat a request of the last 4 × size."""
    rng, trace, fresh = random.Random(seed), [0], 1
    for _ in range(requests):
        if rng.random() < 0.1:
            trace.append(fresh)
            fresh += 1
        else:
            trace.append(trace[-1 - rng.randrange(min(4 * size, len(trace)))])
    return trace


def loop_trace(size: int, requests: int, seed: int = 1) -> list[int]:
    """A cyclic scan over 1.5 × size keys, and 40% of the requests to a hot
    set of size / 2 keys: LRU hits nothing."""
    rng, trace, position, hot = random.Random(seed), [], 0, 0
    for _ in range(requests):
        if rng.random() < 0.4:
            trace.append(10 * size + hot)
            hot = (hot + 1) % (size // 2)
        else:
            trace.append(position)
            position = (position + 1) % (3 * size // 2)
    return trace


def lru_ratio(size: int, keys: list[int]) -> float:
    lru = Cache("lru", max_size=size)._store
    for key in keys:
        if lru.get(str(key)) is None:
            lru.set(str(key), b"v")
    return lru.hits / len(keys)


def in_main(store: AdaptiveStore, key: str) -> bool:
    return bool(store._marks[store.slot_of(key)] & IN_MAIN)  # type: ignore[index]


def test_the_small_queue_grows_where_only_recency_counts() -> None:
    store = AdaptiveStore(Limits(max_size=500))
    trace = recency_trace(500, 100_000)
    ratio = replay(store, trace)
    assert store.small_share > 0.2
    assert ratio > lru_ratio(500, trace) - 0.02
    assert store.ghost_hits[0] > store.ghost_hits[1]


def test_the_small_queue_stays_small_on_a_loop_lru_cannot_hold() -> None:
    store = AdaptiveStore(Limits(max_size=500))
    ratio = replay(store, loop_trace(500, 100_000))
    assert store.small_share < 0.03  # the hot keys' ghost hits while it filled came from far back
    assert ratio > 0.5  # the hot keys (40% of the requests) stay, and part of the scan


def test_a_small_ghost_from_further_back_than_small_is_long_moves_the_share_less() -> None:
    store = AdaptiveStore(Limits(max_size=100))
    for i in range(100):
        store.set(f"k{i}", b"v")  # no eviction yet: small holds its 10%, the balance is even
    assert store._lengths == [10, 90]
    for age, step in ((5, 0.01), (10, 0.01), (40, 0.01 * 10 / 40)):
        share = store.small_share
        store._ghost_hit((store._evicted[SMALL] - age) & STAMP_MASK)
        assert store.small_share - share == pytest.approx(step)
    unweighed = AdaptiveStore(Limits(max_size=100), weigh_age=False)
    for i in range(100):
        unweighed.set(f"k{i}", b"v")
    unweighed._ghost_hit((unweighed._evicted[SMALL] - 40) & STAMP_MASK)
    assert unweighed.small_share == pytest.approx(0.11)


def test_a_read_hit_counts_a_use_up_to_three_and_moves_nothing() -> None:
    store = AdaptiveStore(Limits(max_size=10))
    for key in "abc":
        store.set(key, b"v")
    order = list(store._next)
    slot = store.slot_of("b")
    for expected in (1, 2, 3, 3):
        store.get("b")
        assert store._marks[slot] & USES == expected
    assert list(store._next) == order


def test_a_key_evicted_from_small_and_asked_for_again_enters_main() -> None:
    store = AdaptiveStore(Limits(max_size=100), gain=0.0)
    for i in range(100):
        store.set(f"k{i}", b"v")
    for i in range(100):  # new keys until one pushes an unused entry out of small
        in_small = {key for key in map(store.key_at, range(2, store.slot_end)) if key and not in_main(store, key)}
        store.set(f"new{i}", b"v")
        evicted = [key for key in in_small if not store.exists(key)]
        if evicted:
            break
    store.set(evicted[0], b"v")
    assert store.ghost_hits == [1, 0]
    assert in_main(store, evicted[0])


def test_the_counters_show_the_share_and_the_ghost_hits() -> None:
    cache = Cache("adaptive", max_size=500)
    replay(cache._store, recency_trace(500, 20_000))  # type: ignore[arg-type]
    stats = cache.stats()
    assert stats["policy"] == "adaptive"
    assert stats["policy_small_share"] == round(cache._store.small_share, 4)  # type: ignore[attr-defined]
    assert stats["policy_ghost_hits_small"] + stats["policy_ghost_hits_main"] > 0


def test_a_snapshot_keeps_the_queues_the_counts_and_the_share(tmp_path: Path) -> None:
    cache = Cache("adaptive", max_size=500)
    store: AdaptiveStore = cache._store  # type: ignore[assignment]
    replay(store, recency_trace(500, 30_000))
    share = store.small_share
    assert share != 0.1

    def queues(store: AdaptiveStore) -> list[list[tuple[str | None, int]]]:
        out = []
        for head in (SMALL, MAIN):
            queue, slot = [], store._next[head]
            while slot != head:
                queue.append((store.key_at(slot), store._marks[slot]))
                slot = store._next[slot]
            out.append(queue)
        return out

    path = tmp_path / "cache.snap"
    Snapshotter(cache, path, producer="test").write_now()
    restored = Cache("adaptive", max_size=500)
    assert Snapshotter(restored, path).load().result == "ok"
    assert restored._store.small_share == pytest.approx(share, abs=1e-4)  # type: ignore[attr-defined]
    assert queues(restored._store) == queues(store)  # type: ignore[arg-type]
    assert restored._store._lengths == store._lengths  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    "options",
    [
        {"gain": -1},
        {"gain": "2"},
        {"ghosts": -1.0},
        {"balance": "yes"},
        {"weigh_age": 1},
        {"min_share": 1.5},
        {"promote_at": 0},
    ],
)
def test_bad_options_are_refused(options: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        AdaptiveStore(Limits(max_size=10), **options)  # type: ignore[arg-type]
