"""The ``adaptive`` policy: W-TinyLFU whose window is sized by ghost hits.

``tinylfu`` (tinylfu.py) keeps a window LRU of 1% of the entries in front
of a main space that admits by frequency. That is right when popularity
lasts (Zipf, loops, scans) and wrong when only recency counts: a key read
again soon after it left the window seldom beats main's victim in the duel,
so on recency-heavy traces ``tinylfu`` misses 17 points more than ``lru``.
A window of 100% is LRU. This policy keeps ``tinylfu``'s machinery and
moves the window's share between 1% (``min_share``) and 100% as ARC
moves its target, from *ghost hits*: misses on keys evicted a short while
ago.

The ghosts
----------
Every eviction is remembered as a ghost, with where the key left from: the
window (a candidate that lost its duel, or the window's oldest when main is
empty) or main (a victim that lost to the candidate, or main's oldest while
the window is below its share). A ghost is one 32-bit word of a
direct-mapped table: 8 bits of the key's hash as a tag, one bit for where it
left from, and the eviction's sequence number. Only one key in 8 (by its
hash) is remembered, so the table holds one word for 16 of the sketch's (a
byte or less per entry); a key mapped to a taken word replaces the ghost
there. A ghost counts while it is younger than ``span`` × the entries held
(in evictions): ARC's ghost lists hold as many keys as the cache.

The rule
--------
A new key (the store's insert) whose ghost is found consumes it and moves
the share: a key that left from the window came back, so a larger window
would have kept it (the share grows); one that left from main came back, so
a larger main would have (the share shrinks). A step is ``gain`` (2)
entries per key that came back (8 × ``gain`` per sampled ghost, as each
stands for 8), times, as in ARC, the ratio of the recent evictions of the
other kind to those of this kind when that is above one (``balance``):
with a 1% window nearly every eviction is a lost duel, so window ghosts are
many and each weighs less. The recent evictions are sampled counts, both
halved whenever they add up to ``span`` × the entries. Where only recency
counts, lost candidates come back and the share climbs towards LRU; where
frequency counts, main's victims come back more often per ghost and it
stays small.

Measured (docs/benchmarks-hit-ratio.md, with what was tried and not
kept): on recency-heavy traces it comes within 0.1 to 2.8 points of
``lru`` (``tinylfu``: 17 to 18 below); on frequency-heavy ones it stays
within 0.6 points of ``tinylfu`` at 10,000 entries and 1.7 at 1,000, where
sampled ghosts are few and the share wanders up.

State and cost
--------------
``/stats`` shows ``policy_window_share`` (what it favours: 0.01 is
``tinylfu``'s, 1 is LRU) and its ghost hits of each kind. A snapshot keeps
the share in the hints of the window's entries (from bit 8 on, in
1/10,000ths, with bit 5 marking a window entry), set back when the restore reaches the window
(the last records); the ghosts, a short-term memory, start empty. The read
path is ``tinylfu``'s, unchanged; an insert and an eviction each add a hash
and one table look-up for the sampled keys.
"""

from __future__ import annotations

import time
from array import array
from typing import Any

from .limits import DEFAULT_LIMITS, Limits
from .slots import SHARD_BITS
from .store import Clock
from .tinylfu import WINDOW, TinyLFUStore

GAIN = 2.0
SPAN = 1.0
MIN_SHARE = 0.01  # tinylfu's window: below it, loops lose their hot keys' recency
SAMPLE = 8  # one key in SAMPLE (a power of two) is remembered when evicted
_SAMPLE_MASK = SAMPLE - 1
_SAMPLE_SHIFT = 40  # the hash bits that pick the sample, the word and the tag: clear of the sketch's low bits
_INDEX_SHIFT = 43
_TAG_SHIFT = 32
GHOST_WORDS_PER_SKETCH_WORD = 16
STAMP_BITS = 23
STAMP_MASK = (1 << STAMP_BITS) - 1
FROM_WINDOW = 1 << STAMP_BITS
TAG_AT = 24  # a ghost word: tag (8 bits) << 24 | FROM_WINDOW | stamp
HINT_WINDOW = 32  # in a snapshot hint: the entry was in the window; the share follows in bits 8 on
HINT_SHARE_SHIFT = 8
SHARE_UNITS = 10_000
_SHARD_MASK = (1 << SHARD_BITS) - 1


class AdaptiveStore(TinyLFUStore):
    __slots__ = (
        "_evicted",
        "_ghost",
        "_ghost_mask",
        "_lately",
        "_share_restored",
        "balance",
        "gain",
        "ghost_hits",
        "min_share",
        "span",
    )
    name = "adaptive"
    # Measured by `python -m cachegrid.engine.calibrate` (100,000 entries, CPython 3.11):
    # tinylfu's and the ghost table (under a byte per entry; it rounds to the same).
    entry_overhead = 160
    ttl_overhead = 20

    def __init__(
        self,
        limits: Limits = DEFAULT_LIMITS,
        clock: Clock = time.monotonic,
        gain: float = GAIN,
        span: float = SPAN,
        balance: bool = True,
        min_share: float = MIN_SHARE,
    ) -> None:
        for name, value in (("gain", gain), ("span", span)):
            if value.__class__ not in (int, float) or not 0 < value <= 1000:
                raise ValueError(f"{name} must be a number above 0 and at most 1000, not {value!r}")
        if min_share.__class__ not in (int, float) or not 0 <= min_share <= 1:
            raise ValueError(f"min_share must be a number from 0 to 1, not {min_share!r}")
        self.min_share = float(min_share)
        if balance.__class__ is not bool:
            raise ValueError(f"balance must be true or false, not {balance!r}")
        self.gain, self.span, self.balance = float(gain), float(span), balance
        super().__init__(limits, clock)

    def _init_policy(self) -> None:
        super()._init_policy()
        self._evicted = 1  # sampled evictions so far (the ghosts' clock)
        self._lately = [0.0, 0.0]  # sampled evictions lately from the window, from main
        self.ghost_hits = [0, 0]  # new keys found as ghosts: left from the window, from main
        self._share_restored = False
        self._size_ghosts()

    def _size_ghosts(self) -> None:
        """A new, empty ghost table sized to the sketch (it grows with it)."""
        words = max(64, (self._sketch.mask + 1) // GHOST_WORDS_PER_SKETCH_WORD)
        self._ghost = array("I", bytes(4 * words))
        self._ghost_mask = words - 1

    @property
    def window_share(self) -> float:
        """The window's share of the entries: 0.01 at first, ``min_share`` to 1."""
        return self._window_share

    # -- the ghosts: remembered on eviction, looked up on insert ------------------

    def _on_insert(self, slot: int, size: int) -> None:  # type: ignore[override]
        key_hash = hash(self._key_at[slot >> SHARD_BITS][slot & _SHARD_MASK])
        if not (key_hash >> _SAMPLE_SHIFT) & _SAMPLE_MASK:
            index = (key_hash >> _INDEX_SHIFT) & self._ghost_mask
            word = self._ghost[index]
            if word and word >> TAG_AT == (key_hash >> _TAG_SHIFT) & 0xFF:
                self._ghost_hit(index, word)
        super()._on_insert(slot, size)
        if (self._ghost_mask + 1) * GHOST_WORDS_PER_SKETCH_WORD < self._sketch.mask + 1:
            self._size_ghosts()

    def _ghost_hit(self, index: int, word: int) -> None:
        """A new key matched the ghost ``word``: if recent, move the share."""
        entries = len(self._data) or 1
        if ((self._evicted - word) & STAMP_MASK) * SAMPLE > self.span * entries:
            return  # too old: it would have been evicted from a ghost list of the cache's size
        self._ghost[index] = 0
        from_window, from_main = self._lately
        step = self.gain * SAMPLE / entries
        if word & FROM_WINDOW:
            self.ghost_hits[0] += 1
            if self.balance and from_main > from_window:
                step *= from_main / from_window if from_window else from_main
        else:
            self.ghost_hits[1] += 1
            step = -step
            if self.balance and from_window > from_main:
                step *= from_window / from_main if from_main else from_window
        self._window_share = min(1.0, max(self.min_share, self._window_share + step))

    def _victim(self) -> int:
        slot = self._evict_from_main()
        key_hash = hash(self._key_at[slot >> SHARD_BITS][slot & _SHARD_MASK])
        if not (key_hash >> _SAMPLE_SHIFT) & _SAMPLE_MASK:
            self._evicted += 1
            word = ((key_hash >> _TAG_SHIFT) & 0xFF) << TAG_AT | (self._evicted & STAMP_MASK)
            lately = self._lately
            if self._list[slot] == WINDOW:
                word |= FROM_WINDOW
                lately[0] += 1
            else:
                lately[1] += 1
            if (lately[0] + lately[1]) * SAMPLE > self.span * len(self._data):
                lately[0] /= 2
                lately[1] /= 2
            self._ghost[(key_hash >> _INDEX_SHIFT) & self._ghost_mask] = word
        return slot

    # -- statistics and snapshots -------------------------------------------------

    def counters(self) -> dict[str, Any]:
        counters = super().counters()
        counters["policy_window_share"] = round(self._window_share, 4)
        counters["policy_ghost_hits_window"] = self.ghost_hits[0]
        counters["policy_ghost_hits_main"] = self.ghost_hits[1]
        return counters

    def _snapshot_hint(self, slot: int) -> int:
        """tinylfu's hint; a window entry also carries the window's share."""
        hint = super()._snapshot_hint(slot)
        if self._list[slot] == WINDOW:
            hint |= HINT_WINDOW | round(self._window_share * SHARE_UNITS) << HINT_SHARE_SHIFT
        return hint

    def _restore_hint(self, slot: int, hint: int) -> None:
        """tinylfu's; the first window entry (they come last) brings the share back."""
        super()._restore_hint(slot, hint & 31)
        if hint & HINT_WINDOW and not self._share_restored:
            self._share_restored = True
            share = (hint >> HINT_SHARE_SHIFT) / SHARE_UNITS
            self._window_share = min(1.0, max(self.min_share, share))
