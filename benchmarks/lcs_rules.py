"""``tinylfu`` with libcachesim's counting rules, one rule at a time.

A benchmark aid (hit_ratio.py's ``tinylfu, lcs rules`` column and its
``--ablation`` table), not a policy: it is not registered and nothing of
CacheGrid uses it. ``LcsRulesStore`` is ``TinyLFUStore`` (tinylfu.py) with
its frequency sketch replaced by ``RuleSketch`` below, written in plain
Python, and the hooks that count uses written again around it. What it
keeps of ``tinylfu`` unchanged is the machinery under test: the three lists,
the window of 1% of the entries, probation and protected (80% of main), when
a duel happens, which entry is each side of it and who is evicted (the
candidate on a tie): the duel is ``tinylfu``'s own ``_admit``, fed with
this module's estimates.

Each of the rules below is either ``tinylfu``'s (as Caffeine) or, when its
name is in ``rules``, libcachesim 0.3.5's ``WTinyLFU`` (its source files
``cache/eviction/WTinyLFU.c``, ``cache/eviction/SLRU.c`` and
``dataStructure/minimalIncrementCBF.c``):

``ceiling``
    a counter stops at 15 (4 bits) / has no ceiling (32 bits).
``layout``
    a key's 4 counters are 4 of the 7 of one word, in a table of 2 words per
    entry rounded up to a power of two (sketch.py) / a counting Bloom filter
    of ceil(14.38 × main's size) counters (a false-positive rate of 0.001),
    in which a key has 10 counters picked by double hashing (a + i·b modulo
    the count, for i in 0..9, in 32-bit arithmetic; two of them may coincide,
    and then count twice), a and b hashed as libcachesim hashes them (XXH64
    of the key as an 8-byte integer: the benchmark's keys are integers),
    so that the same keys collide as in libcachesim.
    Both estimate a key by the smallest of its counters, and a use adds one
    to each of its counters (libcachesim's filter is named "minimal
    increment", but its loop adds one to every counter of the key).
``counted``
    every read hit and every write is counted / read hits in main only (a hit
    in the window is not), inserts, and one more for every window entry that
    leaves for main or duels (after the duel, whoever won).
``aging``
    every counter is halved once per 5 × (the table's words) counted uses,
    in slices of 1,024 words' counters (10.24 uses per entry at 1,000
    entries, 16.4 at 10,000: the table is rounded up to a power of two) /
    every counter halved at once after 32 × main's size hits in main.
``admission``
    a candidate estimated at 6 or more that loses its duel gets in 1 time in
    128 (tinylfu.py) / never.
``protected``
    protected in CLOCK order with up to 4 second chances (tinylfu.py) / in
    LRU order (a hit moves the entry to protected's end).
``fill``
    while the store fills, the window keeps its 1% and the rest moves on to
    probation / the window keeps every entry (libcachesim's window is an LRU
    whose size is checked only when the cache must evict), and when the
    store is full the first time, the window's oldest entries move on to
    main, without a duel, until main holds its 99%: into probation while it
    holds less than its 20%, then into protected (libcachesim's SLRU puts an
    entry into the lowest segment with room). Main hits, which libcachesim
    counts and ages by, start only then.

With no rule switched the store replays ``tinylfu`` (its figures within a
few tenths of a point of the real one, which grows its sketch while the
store fills, counts its reads lazily and halves at most four slices per
write). With all of them (``RULES``) it replays libcachesim's W-TinyLFU hit
for hit on every trace of hit_ratio.py: ``tinylfu``'s window, main and duel
are libcachesim's, and the rules above are all that tell them apart.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterable

from cachegrid.engine.limits import DEFAULT_LIMITS, Limits
from cachegrid.engine.sketch import COUNTERS_PER_WORD, PATTERNS, SAMPLE_FACTOR, SLICE_WORDS, WORDS_PER_ENTRY
from cachegrid.engine.store import Clock
from cachegrid.engine.tinylfu import (
    PROBATION,
    PROTECTED,
    PROTECTED_SHARE,
    USED,
    WINDOW,
    WINDOW_SHARE,
    TinyLFUStore,
)

RULES = ("ceiling", "layout", "counted", "aging", "admission", "protected", "fill")

CEILING = 15
# libcachesim's filter: sized for main's entries at a false-positive rate of
# 0.001: -ln(0.001) / ln(2)^2 counters per entry, ceil(ln(2) × that) hashes.
FILTER_ERROR = 0.001
FILTER_COUNTERS_PER_ENTRY = -math.log(FILTER_ERROR) / math.log(2) ** 2  # 14.38
FILTER_HASHES = math.ceil(math.log(2) * FILTER_COUNTERS_PER_ENTRY)  # 10
AGING_MAIN_HITS_PER_ENTRY = 32
# libcachesim hashes an object's 8-byte id with XXH64 under these two seeds
# (``HASH_SEED0`` and ``HASH_SEED1`` of its hash.h) and keeps the low 32 bits
# of each: a and b of the double hashing.
FILTER_SEEDS = (0x12345678, 0x12344321)
_WORD = 0xFFFFFFFF


_MASK64 = (1 << 64) - 1
_PRIME64 = (0x9E3779B185EBCA87, 0xC2B2AE3D27D4EB4F, 0x165667B19E3779F9, 0x85EBCA77C2B2AE63, 0x27D4EB2F165667C5)


def xxh64_of_id(object_id: int, seed: int) -> int:
    """XXH64 (as its specification, xxhash.com) of an 8-byte little-endian
    integer: one 8-byte lane and the final avalanche."""
    p1, p2, p3, p4, p5 = _PRIME64
    lane = object_id & _MASK64
    k1 = (lane * p2) & _MASK64
    k1 = (((k1 << 31) | (k1 >> 33)) & _MASK64) * p1 & _MASK64
    acc = ((seed + p5 + 8) & _MASK64) ^ k1
    acc = ((((acc << 27) | (acc >> 37)) & _MASK64) * p1 + p4) & _MASK64
    acc ^= acc >> 33
    acc = acc * p2 & _MASK64
    acc ^= acc >> 29
    acc = acc * p3 & _MASK64
    return acc ^ (acc >> 32)


class RuleSketch:
    """Frequency counters under the rules ``ceiling``, ``layout`` and
    ``aging`` (module docstring); ``add`` a use, ``estimate`` a key, ``tick``
    a hit in main (libcachesim's aging clock)."""

    def __init__(self, max_size: int, main_size: int, rules: frozenset[str]) -> None:
        words = 1 << (max(1, WORDS_PER_ENTRY * max_size) - 1).bit_length()  # sketch.py's widest table
        self.ceiling = None if "ceiling" in rules else CEILING
        self.filter = "layout" in rules
        if self.filter:
            self.size = max(2 * FILTER_HASHES, math.ceil(FILTER_COUNTERS_PER_ENTRY * main_size))
        else:
            self.words = words
            self.size = COUNTERS_PER_WORD * words
        self.counts = [0] * self.size
        self._indices: dict[str, tuple[int, ...]] = {}
        self.main_aging = "aging" in rules
        if self.main_aging:
            self.period = AGING_MAIN_HITS_PER_ENTRY * main_size
            self.slice_counters = self.size
        else:
            slices = max(1, words // SLICE_WORDS)
            self.period = max(1, SAMPLE_FACTOR * words // slices)
            self.slice_counters = -(-self.size // slices)
        self.clock = 0
        self.next_slice = 0
        self.halvings = 0  # slices halved (a full table counts as one)

    def indices(self, key: str) -> tuple[int, ...]:
        found = self._indices.get(key)
        if found is None:
            if self.filter:
                a, b = (xxh64_of_id(int(key), seed) & _WORD for seed in FILTER_SEEDS)
                size = self.size
                found = tuple(((a + i * b) & _WORD) % size for i in range(FILTER_HASHES))
            else:
                key_hash = hash(key)
                base = COUNTERS_PER_WORD * (key_hash & (self.words - 1))
                found = tuple(base + position for position in PATTERNS[key_hash % len(PATTERNS)])
            self._indices[key] = found
        return found

    def estimate(self, key: str) -> int:
        counts = self.counts
        return min(counts[i] for i in self.indices(key))

    def add(self, key: str) -> None:
        counts, ceiling = self.counts, self.ceiling
        for i in self.indices(key):
            if ceiling is None or counts[i] < ceiling:
                counts[i] += 1
        if not self.main_aging:
            self.tick()  # tinylfu's aging clock: every use

    def tick(self) -> None:
        """One step of the aging clock: a hit in main under libcachesim's aging."""
        self.clock += 1
        if self.clock >= self.period:
            self.clock = 0
            self._halve()

    def _halve(self) -> None:
        start = self.next_slice * self.slice_counters
        end = min(start + self.slice_counters, self.size)
        counts = self.counts
        counts[start:end] = [count >> 1 for count in counts[start:end]]
        self.next_slice = 0 if end >= self.size else self.next_slice + 1
        self.halvings += 1


class LcsRulesStore(TinyLFUStore):
    """``tinylfu`` with the rules named in ``rules`` switched to libcachesim's.

    The duel is ``tinylfu``'s own (``_evict_from_main`` and ``_admit``):
    this class changes only what the rules change, namely where the
    estimates come from (``_estimate``), whether a loser may be admitted at
    random (``admit_at_random_from``), what is counted (``_bind_access``,
    ``_on_insert``, ``_evict_from_window`` and after each ``_admit``), how
    protected is ordered (``_bind_access``) and how main fills (``_victim``).
    """

    name = "tinylfu, lcs rules"

    def __init__(
        self, limits: Limits = DEFAULT_LIMITS, clock: Clock = time.monotonic, rules: Iterable[str] = RULES
    ) -> None:
        self.rules = frozenset(rules)
        unknown = self.rules - set(RULES)
        if unknown:
            raise ValueError(f"unknown rules {sorted(unknown)}; the rules: {', '.join(RULES)}")
        super().__init__(limits, clock)

    def _init_policy(self) -> None:
        main_size = self.max_size - max(1, int(WINDOW_SHARE * self.max_size))
        self.counters = RuleSketch(self.max_size, main_size, self.rules)
        self._count_main_only = "counted" in self.rules
        self._lru_protected = "protected" in self.rules
        if "admission" in self.rules:
            self.admit_at_random_from = math.inf  # a loser is never admitted
        self._fill = "fill" in self.rules
        self._dueled = -1  # the window entry that dueled last (counted once, not again when it moves)
        super()._init_policy()

    def _bind_access(self) -> None:
        counters, main_only, lru_protected = self.counters, self._count_main_only, self._lru_protected
        add, tick, main_aging = counters.add, counters.tick, counters.main_aging
        kinds, move, lengths, data = self._list, self._move, self._lengths, self._data
        demote_from_main_protected = self._demote_from_main_protected

        def on_access(slot: int, key: str) -> None:
            where = kinds[slot]
            if where != WINDOW:
                add(key)
                if main_aging:
                    tick()
            elif not main_only:
                add(key)
            if where in (PROTECTED, USED):
                if lru_protected:
                    move(slot, PROTECTED)
                else:
                    kinds[slot] = USED
            elif where == WINDOW:
                move(slot, WINDOW)
            else:  # probation: promoted
                move(slot, PROTECTED)
                if lengths[PROTECTED] > PROTECTED_SHARE * (len(data) - lengths[WINDOW]):
                    demote_from_main_protected()  # protected's oldest (or one past its second chances) to probation
                    lengths[PROTECTED] -= 1
                    lengths[PROBATION] += 1

        self._on_access = on_access  # type: ignore[method-assign]

    def _on_update(self, slot: int, old_size: int, new_size: int) -> None:
        self._on_access(slot, self.key_at(slot))

    def _on_insert(self, slot: int, size: int) -> None:
        if slot >= len(self._list):
            self._grow(slot)
        self.counters.add(self.key_at(slot))
        self._list[slot] = WINDOW
        self._append(slot, WINDOW)
        self._lengths[WINDOW] += 1
        if self._fill and len(self._data) < self.max_size:
            self._dueled = -1
            return  # the window keeps every entry while the store fills
        self._evict_from_window(len(self._data))
        self._dueled = -1

    def _evict_from_window(self, entries: int) -> None:
        """One entry at most (libcachesim's window never shrinks), counted
        as it leaves for main under ``counted`` unless it just dueled."""
        if self._lengths[WINDOW] > self._window_size(entries):
            oldest = self._oldest(WINDOW)
            if self._count_main_only and oldest != self._dueled:
                self.counters.add(self.key_at(oldest))  # it leaves for main without a duel
            self._move(oldest, PROBATION)

    def _victim(self) -> int:
        if self._fill and self._lengths[WINDOW] > self._window_size(self.max_size):
            self._fill_main()
        return self._evict_from_main()

    def _estimate(self, slot: int) -> int:  # type: ignore[override]
        return self.counters.estimate(self.key_at(slot))  # type: ignore[arg-type]

    def _admit(self, candidate: int, victim: int) -> bool:
        admitted = super()._admit(candidate, victim)
        if self._count_main_only:
            self.counters.add(self.key_at(candidate))  # type: ignore[arg-type]  # a duel counts the candidate, winner or not
            self._dueled = candidate
        return admitted

    def _fill_main(self) -> None:
        """The store is full for the first time (rule ``fill``): the window's
        oldest entries leave for main until main holds its share, into
        probation while it is under its share, then into protected."""
        lengths, window = self._lengths, self._window_size(self.max_size)
        main = self.max_size - window
        while lengths[WINDOW] > window and lengths[PROBATION] + lengths[PROTECTED] < main:
            oldest = self._oldest(WINDOW)
            if self._count_main_only:
                self.counters.add(self.key_at(oldest))
            self._move(oldest, PROBATION if lengths[PROBATION] < main - int(PROTECTED_SHARE * main) else PROTECTED)
