"""The ``adaptive`` policy's own behaviour: the window grows towards LRU where
only recency counts, stays small where frequency does, shows its share in
the counters and keeps it across a snapshot."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from cachegrid.engine import Cache
from cachegrid.engine.adaptive import AdaptiveStore
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


def test_the_window_grows_where_only_recency_counts() -> None:
    store = AdaptiveStore(Limits(max_size=500))
    lru = Cache("lru", max_size=500)._store
    trace = recency_trace(500, 100_000)
    ratio = replay(store, trace)
    for key in trace:
        if lru.get(str(key)) is None:
            lru.set(str(key), b"v")
    assert store.window_share > 0.5
    assert ratio > lru.hits / len(trace) - 0.03
    assert store.ghost_hits[0] > store.ghost_hits[1]


def test_the_window_stays_small_on_a_loop_lru_cannot_hold() -> None:
    store = AdaptiveStore(Limits(max_size=500))
    ratio = replay(store, loop_trace(500, 100_000))
    assert store.window_share < 0.2
    assert ratio > 0.4  # the hot keys (40% of the requests) stay


def test_the_counters_show_the_share_and_the_ghost_hits() -> None:
    cache = Cache("adaptive", max_size=500)
    replay(cache._store, recency_trace(500, 20_000))  # type: ignore[arg-type]
    stats = cache.stats()
    assert stats["policy"] == "adaptive"
    assert stats["policy_window_share"] == round(cache._store.window_share, 4)  # type: ignore[attr-defined]
    assert stats["policy_ghost_hits_window"] + stats["policy_ghost_hits_main"] > 0


def test_a_snapshot_keeps_the_share(tmp_path: Path) -> None:
    cache = Cache("adaptive", max_size=500)
    replay(cache._store, recency_trace(500, 30_000))  # type: ignore[arg-type]
    share = cache._store.window_share  # type: ignore[attr-defined]
    assert share > 0.01
    path = tmp_path / "cache.snap"
    Snapshotter(cache, path, producer="test").write_now()
    restored = Cache("adaptive", max_size=500)
    assert Snapshotter(restored, path).load().result == "ok"
    assert restored._store.window_share == pytest.approx(share, abs=1e-4)  # type: ignore[attr-defined]
    assert len(restored) == len(cache)


@pytest.mark.parametrize("options", [{"gain": 0}, {"gain": "2"}, {"span": -1.0}, {"balance": "yes"}])
def test_bad_options_are_refused(options: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        AdaptiveStore(Limits(max_size=10), **options)  # type: ignore[arg-type]
