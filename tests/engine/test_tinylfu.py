"""The ``tinylfu`` policy's own behaviour: admission, the window, the
sketch's aging, and a hit ratio above LRU's on a skewed trace."""

from __future__ import annotations

import itertools
import random

from cachegrid.engine import Cache
from cachegrid.engine.sketch import SAMPLE_FACTOR, SLICE_WORDS, FrequencySketch
from cachegrid.engine.store import Limits
from cachegrid.engine.tinylfu import ADMIT_AT_RANDOM_ONE_IN, TinyLFUStore
from cachegrid.testing import FakeClock


def read(cache: Cache, key: str, times: int) -> None:
    for _ in range(times):
        assert cache.get(key) is not None


def filled_with_frequent_keys(clock: FakeClock, size: int = 100, reads: int = 3) -> Cache:
    cache = Cache("tinylfu", max_size=size, clock=clock)
    for i in range(size):
        cache.set(f"hot:{i}", b"v")
        read(cache, f"hot:{i}", reads)
    return cache


# -- admission -------------------------------------------------------------------


def test_a_key_used_once_does_not_displace_frequent_keys(clock: FakeClock) -> None:
    cache = filled_with_frequent_keys(clock, size=1000)
    for i in range(1000):  # a scan of as many keys, each asked for once
        cache.set(f"scan:{i}", b"v")
    held = set(cache.keys(limit=2000).keys)
    hot = {f"hot:{i}" for i in range(1000)}
    # The window's share (1%: 10) goes to the scan; a few more may go where
    # the sketch's counters collide (Python's hash, so it varies per process).
    # Over 40 hash seeds: 926 to 989 stayed. LRU would keep none of them.
    assert len(hot & held) >= 880
    assert cache.stats()["evictions"] == 1000


def test_a_key_used_again_in_the_window_is_admitted_over_a_less_used_one(clock: FakeClock) -> None:
    cache = filled_with_frequent_keys(clock, reads=1)  # estimate 2 each
    cache.set("newcomer", b"v")
    read(cache, "newcomer", 10)  # estimate 11, while in the window: beyond any collision
    cache.set("next", b"v")  # pushes the newcomer out of the window: it wins its duel
    assert cache.get("newcomer") == b"v"
    held = set(cache.keys(limit=1000).keys)
    # One went when the newcomer arrived (the window's last hot key lost a tie),
    # one when the newcomer won its duel.
    assert len({f"hot:{i}" for i in range(100)} - held) == 2


def test_keys_used_once_lose_their_duels_and_go(clock: FakeClock) -> None:
    cache = filled_with_frequent_keys(clock)
    for i in range(50):
        cache.set(f"once:{i}", b"v")
    assert cache.get("once:49") == b"v"  # the window keeps the newest entry
    # The others lost their duels (a rare one may win where the sketch's
    # counters collide with a frequent key's: Python's hash, so it varies per
    # process). Over 1,301 hash seeds: 0 to 6 stayed, 1 most often. LRU would
    # keep all 49.
    assert sum(cache.get(f"once:{i}") is not None for i in range(49)) <= 12


def test_a_frequent_candidate_is_admitted_at_random_about_once_in_128() -> None:
    store = TinyLFUStore(Limits(max_size=100))
    store._random.seed(7)
    candidate, victim = hash("candidate"), hash("victim")
    for _ in range(15):
        store._sketch.increment(victim)
    for _ in range(8):  # 8: at or above the random-admission threshold, below the victim
        store._sketch.increment(candidate)
    store.set("candidate", b"v")
    store.set("victim", b"v")
    trials = 128 * 40
    slots = {key: store.slot_of(key) for key in ("candidate", "victim")}
    admitted = sum(store._admit(slots["candidate"], slots["victim"]) for _ in range(trials))
    assert 10 <= admitted <= 90, admitted  # 40 expected
    assert trials // ADMIT_AT_RANDOM_ONE_IN == 40


# -- the window ------------------------------------------------------------------


def test_the_newest_entries_stay_in_the_window_whatever_their_frequency(clock: FakeClock) -> None:
    cache = filled_with_frequent_keys(clock, size=1000)  # window: 10 entries
    for i in range(500):
        cache.set(f"new:{i}", b"v")
    for i in range(490, 500):
        assert cache.get(f"new:{i}") == b"v"
    # The older ones lost their duels, but for those whose counters collide
    # with a frequent key's (Python's hash: 10 to 47 of 490 over 60 seeds).
    assert sum(cache.get(f"new:{i}") is not None for i in range(490)) <= 100


def test_entries_read_twice_move_to_protected_and_survive_probation(clock: FakeClock) -> None:
    cache = Cache("tinylfu", max_size=100, clock=clock)
    for i in range(100):
        cache.set(f"k:{i}", b"v")
    read(cache, "k:0", 1)  # k:0 is in probation (pushed out of the window); now protected
    store = cache._store
    assert store._list[store.slot_of("k:0")] == 2
    for i in range(100, 400):
        cache.set(f"k:{i}", b"v")
        read(cache, f"k:{i}", 2)  # frequent newcomers: they win duels against probation
    assert cache.get("k:0") == b"v"


# -- aging -----------------------------------------------------------------------


def test_the_sketch_saturates_at_15() -> None:
    sketch = FrequencySketch(1000)
    for _ in range(40):
        sketch.increment(hash("k"))
    assert sketch.frequency(hash("k")) == 15
    assert sketch.frequency(hash("other")) <= 1


def test_the_sketch_halves_its_counters_after_ten_uses_per_entry() -> None:
    sketch = FrequencySketch(16)  # one slice: halved all at once
    key = hash("hot")
    for _ in range(12):
        sketch.increment(key)
    assert sketch.frequency(key) == 12
    uses = sketch.uses
    rng = random.Random(1)
    while sketch.uses >= uses:  # until the halving resets the count of uses
        uses = sketch.uses
        sketch.increment(rng.getrandbits(64))
    assert sketch.frequency(key) in (6, 7)  # halved (a collision may add one)


def test_a_wide_sketch_halves_one_slice_at_a_time() -> None:
    sketch = FrequencySketch(4 * SLICE_WORDS)  # two words per entry: 8 slices
    sketch.ensure_width(4 * SLICE_WORDS)
    assert sketch.width == 8 * SLICE_WORDS
    # Keys whose word is in the first slice and in the last one.
    first = next(h for h in itertools.count(1) if (h & sketch.mask) < SLICE_WORDS)
    last = next(h for h in itertools.count(1) if (h & sketch.mask) >= 7 * SLICE_WORDS)
    for _ in range(15):
        sketch.increment(first)
        sketch.increment(last)
    before = sketch.table.tobytes()
    sketch.age()
    after = sketch.table.tobytes()
    changed = [i for i in range(0, len(before), 8) if before[i : i + 8] != after[i : i + 8]]
    assert changed and max(changed) < 8 * SLICE_WORDS  # only the first slice's words
    assert sketch.frequency(first) == 7 and sketch.frequency(last) == 15
    # A whole period halves every slice once.
    for _ in range(7):
        sketch.age()
    assert sketch.frequency(last) == 7
    assert sketch.period == SAMPLE_FACTOR * SLICE_WORDS


def test_growing_the_sketch_keeps_every_estimate() -> None:
    sketch = FrequencySketch(1 << 20)
    keys = [hash(f"k{i}") for i in range(50)]
    for n, key in enumerate(keys):
        for _ in range(n % 16):
            sketch.increment(key)
    estimates = [sketch.frequency(key) for key in keys]
    sketch.ensure_width(5000)
    assert sketch.width == 16384  # two words per entry, a power of two
    assert [sketch.frequency(key) for key in keys] == estimates


def test_keys_hot_long_ago_give_way_to_keys_hot_now(clock: FakeClock) -> None:
    cache = filled_with_frequent_keys(clock, reads=30)  # every old key saturated at 15
    for _ in range(200):
        for i in range(100):
            if cache.get(f"now:{i}") is None:
                cache.set(f"now:{i}", b"v")
    held = set(cache.keys(limit=1000).keys)
    # Without aging the old keys would keep winning every duel (15 against at
    # most 15): only the window would ever hold a new key.
    assert len({f"now:{i}" for i in range(100)} & held) >= 90


# -- hit ratio -------------------------------------------------------------------


def zipf_trace(keys: int, requests: int, alpha: float, seed: int) -> list[str]:
    rng = random.Random(seed)
    names = [f"key:{i}" for i in range(keys)]
    rng.shuffle(names)
    weights = list(itertools.accumulate(rank**-alpha for rank in range(1, keys + 1)))
    return rng.choices(names, cum_weights=weights, k=requests)


def hit_ratio(policy: str, trace: list[str], size: int) -> float:
    cache = Cache(policy, max_size=size)
    for key in trace:
        if cache.get(key) is None:
            cache.set(key, b"v")
    stats = cache.stats()
    return stats["hits"] / len(trace)


def test_tinylfu_beats_lru_by_5_points_on_a_zipf_trace() -> None:
    # Zipf 0.8 over 10,000 keys, cache of 10%: the benchmark measures about
    # +9 points on the full-size trace; 5 leaves room for the smaller trace.
    trace = zipf_trace(10_000, 100_000, 0.8, seed=13)
    lru, tinylfu = hit_ratio("lru", trace, 1000), hit_ratio("tinylfu", trace, 1000)
    assert tinylfu - lru >= 0.05, (lru, tinylfu)


# -- protected in CLOCK order, aging counted by the store, the hill climber --------


def test_a_protected_entry_read_again_gets_a_second_chance_when_protected_overflows(clock: FakeClock) -> None:
    store = TinyLFUStore(Limits(max_size=100), clock)
    for i in range(100):
        store.set(f"k:{i}", b"v")
    for i in range(1, 80):  # promoted in this order, 79 of them (80% of main): k:1 is protected's oldest
        store.get(f"k:{i}")
    protected = [slot for slot in store._snapshot_order() if store._head_of(slot) == 2]
    assert store.key_at(protected[0]) == "k:1" and store.key_at(protected[1]) == "k:2"
    store.get("k:1")  # marked used: no relinking
    assert store._list[store.slot_of("k:1")] == 3
    store.get("k:80")  # one more promotion: protected overflows
    assert store._head_of(store.slot_of("k:1")) == 2  # second chance: unmarked, to the end
    assert store._list[store.slot_of("k:1")] == 2
    assert store._head_of(store.slot_of("k:2")) == 1  # the next oldest went back to probation


def test_reads_counted_by_the_store_age_the_sketch_at_the_next_write() -> None:
    sketch = FrequencySketch(16)  # one slice
    key = hash("k")
    for _ in range(12):
        sketch.add(key)  # as the read path: not counted here
    assert sketch.frequency(key) == 12 and sketch.uses == 0
    sketch.catch_up(sketch.period - 1)  # reads counted by the owner, one short of a halving
    assert sketch.frequency(key) == 12
    sketch.catch_up(sketch.period)
    assert sketch.frequency(key) == 6


def test_aging_owed_is_halved_a_few_slices_per_call() -> None:
    sketch = FrequencySketch(8 * SLICE_WORDS)
    sketch.ensure_width(8 * SLICE_WORDS)
    slices = sketch.width // SLICE_WORDS
    sketch.catch_up(10 * slices * sketch.period)  # far more than four full halvings owed
    assert sketch.next_slice == 4  # four slices in this call
    assert sketch.uses == (4 * slices - 4) * sketch.period  # the rest owed, beyond four full halvings dropped


def test_climb_must_be_true_or_false() -> None:
    try:
        TinyLFUStore(Limits(max_size=10), climb="yes")  # type: ignore[arg-type]
    except ValueError as error:
        assert "climb" in str(error)
    else:
        raise AssertionError("climb='yes' was accepted")


def test_the_hill_climber_moves_the_window_and_without_it_the_window_stays(clock: FakeClock) -> None:
    shares = {}
    for climb in (False, True):
        cache = Cache("tinylfu", max_size=100, clock=clock, policy_options={"climb": climb})
        rng = random.Random(5)
        for i in range(20_000):  # recency: mostly keys asked for a moment ago
            key = f"k:{i - rng.randrange(min(i, 300) + 1)}"
            if cache.get(key) is None:
                cache.set(key, b"v")
        shares[climb] = cache._store.window_share
        assert len(cache) == 100
    assert shares[False] == 0.01
    assert shares[True] != 0.01
