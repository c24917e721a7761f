"""The ``adaptive`` policy: S3-FIFO whose small queue is sized by ghost hits.

S3-FIFO (Yang et al., "FIFO queues are all you need for cache eviction",
SOSP 2023) keeps two FIFO queues and a *ghost* list of keys recently
evicted. A hit moves nothing: it only adds one to the entry's use count
(two bits, at most 3), which makes a read cheaper than ``lru``'s
move-to-end. The work happens at eviction:

- a new key enters the *small* queue (a share of the entries, 10% at
  first), unless it is found among the ghosts: it was evicted a short
  while ago and asked for again, so it enters *main* at once;
- while the small queue holds more than its share, its oldest entry
  leaves it: to main's end if it was used while in small (``promote_at``:
  once), keeping its count (``keep_uses``; S3-FIFO resets it), else out of
  the cache, remembered as a ghost;
- otherwise main's oldest entry leaves: one with a count goes back to
  main's end with one less (CLOCK with a 2-bit counter), one without is
  evicted.

So a key asked for once passes through the small queue and out (a scan
cannot flush main), a key used again while in small or soon after it left
stays in main as long as it is used. Until the first eviction, a new key
that finds the small queue at its share enters main (libcachesim's
S3-FIFO does the same): main starts with what came first rather than
empty.

Adapting the small queue (ARC's rule)
-------------------------------------
A fixed 10% small queue loses where only recency counts: a key asked for
again a little later than the small queue holds it misses once more before
it reaches main (S3-FIFO 84.4% against LRU's 89.4% on the recency trace of
benchmarks/hit_ratio.py at 1,000 entries). Here the small queue's share moves between
``min_share`` (1%) and 99% as ARC moves its target, from ghost hits:

- a new key that left from the small queue (a *small ghost*) came back: a
  larger small queue would have kept it, so the share grows;
- a key evicted from main came back (a *main ghost*): a larger main would
  have kept it, so the share shrinks.

A step is ``gain`` (1) entry, times, as in ARC, the ratio of recent
evictions of the other kind to those of this kind when that is above one
(``balance``; the recent counts are halved whenever they add up to the
ghosts' reach). Without the balance, small ghosts (most evictions leave
from small) drive the share up on every Zipf trace. ``gain`` 0 keeps the
share where it starts (S3-FIFO's 10%). When the share shrinks, small's
oldest entries move on to main, with their counts, until it holds less
than a whole entry over its share: otherwise small would come down only
as main takes entries from it (by promotion or from the ghosts), and
where everything worth keeping is already in main (a loop once it has
settled) none comes, so small kept the size it had when the store filled
(a loop of 1.2 × the cache with a hot third: 64.7% against 67.3%).

A small ghost's step is also weighed by how far back its key left
(``weigh_age``): a key that left ``age`` small evictions ago needed a small
queue about ``age`` entries longer, so beyond the small queue's own length
the step is small / age of a full one. ARC moves by a full step whatever
the distance, and on a loop that is what went wrong: while it fills, the
hot keys come back from about half the cache's evictions ago and push the
share up (to 5-8%); once they are all in main no ghost hit comes any more,
and the small queue keeps that share, filled with scanned keys that pass
through (loop @ 1,000, hash seed 0: 56.7 with neither this rule nor the
give-back above, 59.2 weighed, 59.4 with both, 59.0 with the give-back
alone). Near misses, the recency traces', still move it by a full step.

The ghosts
----------
One direct-mapped table of 32-bit words, two words per entry held (rounded
up to a power of two, grown with the store): 8 bits of the key's hash as a
tag, one bit for where it left from, and the eviction's sequence number in
its kind (23 bits). Every small eviction is remembered (S3-FIFO needs them
all: they are the way into main); one main eviction in ``MAIN_SAMPLE`` (8,
by hash) is, so that main's ghosts do not overwrite small's, and a main
ghost hit counts 8 times. A ghost counts while fewer than ``ghosts`` (0.5)
× the entries held were evicted from its queue since (its sequence
number's age); a key whose word was taken by another is forgotten. Half
the cache rather than ARC's whole cache: on a loop a little longer than
the cache, keys come back after about one cache's worth of evictions, and
a reach of one cache lets some of them in as ghosts and some not, by the
hash seed (docs/benchmarks-hit-ratio.md: loop @ 10,000 −5.2 points
against −1.6).

State and cost
--------------
Per entry: two links in two ``array('I')`` (the queues' heads are slots 0
and 1), one byte (the use count, and whether the entry is in main) and 8
bytes of ghost table (a power of two of words: 8 to 16 bytes). A read hit
reads and writes one byte; an insert adds a hash and one table look-up; an
eviction amortizes the reinsertions of main (each undoes a use counted
before, so they are at most 3 per use). The read hook is a closure over
the marks, bound in ``_bind_access``; the common eviction writes out the
remembering of its ghost (``# PERF:``); the lists' links are links.py's.
tests/engine/test_adaptive_model.py drives the policy against a plainly
written model of the rules above. ``/stats`` shows ``policy_small_share`` (what it favours: near 1%
frequency, towards 99% recency) and the ghost hits of each kind. A
snapshot keeps each entry's queue and count in its hint and the share in
bits 8 on; the ghosts, a short-term memory, start empty.
docs/benchmarks-hit-ratio.md has the measurements and the ablation.
"""

from __future__ import annotations

import time
from array import array
from collections.abc import Iterator
from typing import Any

from .limits import DEFAULT_LIMITS, Limits
from .links import HeadedLists, grow_links
from .slots import SHARD_BITS
from .store import Clock, Store

SMALL, MAIN = 0, 1  # the heads of the two queues (slots 0 and 1), and an entry's mark >> 2
IN_MAIN = 4  # in an entry's mark: it is in main; bits 0-1 hold its use count
USES = 3  # the use count's mask and ceiling
SHARE = 0.10  # the small queue's share at first (S3-FIFO's)
MIN_SHARE = 0.01
MAX_SHARE = 0.99
GAIN = 1.0
PROMOTE_AT = 1  # uses while in small that take an entry to main
GHOSTS = 0.5  # how far back a ghost counts, in evictions of its kind per entry held
GHOST_WORDS = 2  # ghost words per entry held (before rounding up to a power of two)
MAIN_SAMPLE = 8  # one main eviction in MAIN_SAMPLE (by hash) is remembered
STAMP_BITS = 23
STAMP_MASK = (1 << STAMP_BITS) - 1
FROM_MAIN = 1 << STAMP_BITS
TAG_AT = 24  # a ghost word: tag (8 bits) << 24 | FROM_MAIN | stamp
_TAG_SHIFT = 40  # the hash bits of the tag: clear of the index's low bits
_SAMPLE_SHIFT = 48  # the hash bits that pick main's sampled evictions
_SAMPLE_MASK = MAIN_SAMPLE - 1  # (MAIN_SAMPLE is a power of two)
_SHARD_MASK = (1 << SHARD_BITS) - 1
HINT_SHARE_SHIFT = 8  # a snapshot hint: the mark (bits 0-2), the share in 1/10,000ths from bit 8
SHARE_UNITS = 10_000


def _number(name: str, value: object, low: float, high: float) -> float:
    if value.__class__ not in (int, float) or not low <= value <= high:
        raise ValueError(f"{name} must be a number from {low} to {high}, not {value!r}")
    return float(value)


class AdaptiveStore(HeadedLists, Store):
    __slots__ = (
        "_evicted",
        "_full",
        "_ghost",
        "_ghost_mask",
        "_lately",
        "_lengths",
        "_marks",
        "_next",
        "_on_access",
        "_prev",
        "_share",
        "balance",
        "gain",
        "ghost_hits",
        "ghosts",
        "keep_uses",
        "min_share",
        "promote_at",
        "start_share",
        "weigh_age",
    )
    name = "adaptive"
    # Measured by `python -m cachegrid.engine.calibrate` (100,000 entries, CPython 3.11).
    entry_overhead = 160
    ttl_overhead = 20
    list_heads = 2  # slots 0 and 1: the heads of SMALL and MAIN

    def __init__(
        self,
        limits: Limits = DEFAULT_LIMITS,
        clock: Clock = time.monotonic,
        gain: float = GAIN,
        balance: bool = True,
        min_share: float = MIN_SHARE,
        share: float = SHARE,
        ghosts: float = GHOSTS,
        promote_at: int = PROMOTE_AT,
        keep_uses: bool = True,
        weigh_age: bool = True,
    ) -> None:
        self.gain = _number("gain", gain, 0, 1000)  # 0: the share stays where it starts (S3-FIFO)
        self.ghosts = _number("ghosts", ghosts, 0, 1000)
        self.min_share = _number("min_share", min_share, 0, MAX_SHARE)
        self.start_share = _number("share", share, self.min_share, MAX_SHARE)
        for name, value in (("balance", balance), ("keep_uses", keep_uses), ("weigh_age", weigh_age)):
            if value.__class__ is not bool:
                raise ValueError(f"{name} must be true or false, not {value!r}")
        self.keep_uses, self.weigh_age = keep_uses, weigh_age
        if promote_at not in (1, 2, 3):
            raise ValueError(f"promote_at must be 1, 2 or 3, not {promote_at!r}")
        self.balance, self.promote_at = balance, promote_at
        super().__init__(limits, clock)

    def _init_policy(self) -> None:
        self._next = array("I", range(self.list_heads))  # each head alone in its circular list
        self._prev = array("I", range(self.list_heads))
        self._marks = array("B", bytes(self.list_heads))  # by slot: use count | IN_MAIN
        self._lengths = [0, 0]  # entries in small, in main
        self._share = self.start_share
        self._full = False  # whether the store has evicted since it was built or cleared
        self._evicted = [0, 0]  # evictions from small and from main so far (the ghosts' clocks)
        self._lately = [0.0, 0.0]  # evictions lately, from small and from main (ARC's balance)
        self.ghost_hits = [0, 0]  # new keys found as ghosts: left from small, from main
        self._ghost = array("I", bytes(4 * 64))
        self._ghost_mask = 63
        self._bind_access()

    def _bind_access(self) -> None:
        """Bind ``_on_access``, the read hit: one more use, up to 3. A closure
        over the marks (bound again when the array is replaced)."""
        marks, uses = self._marks, USES

        def on_access(slot: int, key: str) -> None:
            mark = marks[slot]
            if mark & uses != uses:
                marks[slot] = mark + 1

        self._on_access = on_access  # type: ignore[method-assign]

    @property
    def small_share(self) -> float:
        """The small queue's share of the entries: 0.1 at first, ``min_share`` to 0.99."""
        return self._share

    # -- the queues ---------------------------------------------------------------

    def _to_main(self, slot: int, mark: int) -> None:
        """Move ``slot`` to main's end with the mark ``mark``."""
        lengths = self._lengths
        lengths[self._marks[slot] >> 2] -= 1
        lengths[MAIN] += 1
        self._marks[slot] = mark
        self._unlink(slot)
        self._append(slot, MAIN)

    def _on_update(self, slot: int, old_size: int, new_size: int) -> None:
        self._on_access(slot, "")  # a write to a held key is a use

    def _on_insert(self, slot: int, size: int) -> None:
        marks = self._marks
        if slot >= len(marks):
            marks.frombytes(bytes(grow_links(self._next, self._prev, slot)))
        entries = len(self._data)
        ghosts = self._ghost
        if entries * GHOST_WORDS > len(ghosts):
            ghosts = self._grow_ghosts(entries)
        key_hash = hash(self._key_at[slot >> SHARD_BITS][slot & _SHARD_MASK])
        index = key_hash & self._ghost_mask
        word = ghosts[index]
        head = SMALL
        if (
            word
            and word >> TAG_AT == (key_hash >> _TAG_SHIFT) & 0xFF
            and ((self._evicted[word >> STAMP_BITS & 1] - word) & STAMP_MASK) <= self.ghosts * entries
        ):
            ghosts[index] = 0
            self._ghost_hit(word)
            head = MAIN
        elif not self._full and self._lengths[SMALL] >= self._share * entries:
            head = MAIN  # while the store fills, main takes what small has no room for
        marks[slot] = head << 2  # IN_MAIN for main, no use yet
        self._lengths[head] += 1
        self._append(slot, head)

    def _ghost_hit(self, word: int) -> None:
        """A new key matched the ghost ``word``: move the small queue's share."""
        step = self.gain / (len(self._data) or 1)
        from_small, from_main = self._lately
        if word & FROM_MAIN:
            self.ghost_hits[MAIN] += 1
            step *= MAIN_SAMPLE  # one main ghost stands for MAIN_SAMPLE
            if self.balance and from_small > from_main:
                step *= from_small / from_main if from_main else from_small
            self._share = max(self.min_share, self._share - step)
            self._give_back()
        else:
            self.ghost_hits[SMALL] += 1
            if self.balance and from_main > from_small:
                step *= from_main / from_small if from_small else from_main
            if self.weigh_age:
                # A key that left ``age`` small evictions ago needed a small
                # queue about ``age`` entries longer: beyond small's own length
                # the step shrinks as small / age, so that keys back from far
                # (a loop's hot keys while it fills) do not leave a large small
                # queue behind that no ghost hit then shrinks.
                small, age = self._lengths[SMALL], (self._evicted[SMALL] - word) & STAMP_MASK
                if age > small:
                    step *= small / age
            self._share = min(MAX_SHARE, self._share + step)

    def _give_back(self) -> None:
        """Move small's oldest entries on to main (with their counts) while it
        holds a whole entry more than its share: a share that shrank would
        otherwise bring it down only as main takes entries from it."""
        lengths, marks, limit = self._lengths, self._marks, self._share * len(self._data) + 1
        while lengths[SMALL] >= limit:
            slot = self._next[SMALL]
            self._to_main(slot, IN_MAIN | marks[slot] & USES)

    def _grow_ghosts(self, entries: int) -> array:
        """A new, empty ghost table for ``entries`` entries (the ghosts are forgotten)."""
        words = 64
        while words < entries * GHOST_WORDS:
            words *= 2
        self._ghost = array("I", bytes(4 * words))
        self._ghost_mask = words - 1
        return self._ghost

    def _on_remove(self, slot: int, size: int) -> None:
        self._lengths[self._marks[slot] >> 2] -= 1
        self._unlink(slot)

    def _remember(self, slot: int, kind: int) -> None:
        """Count an eviction from ``kind`` (SMALL or MAIN) and remember a ghost
        of it: every small one, main's sampled ones (``MAIN_SAMPLE``)."""
        key_hash = hash(self._key_at[slot >> SHARD_BITS][slot & _SHARD_MASK])
        lately = self._lately
        lately[kind] += 1
        if lately[0] + lately[1] > self.ghosts * len(self._data):
            lately[0] /= 2
            lately[1] /= 2
        evicted = self._evicted
        evicted[kind] += 1
        if kind == MAIN and (key_hash >> _SAMPLE_SHIFT) & _SAMPLE_MASK:
            return
        self._ghost[key_hash & self._ghost_mask] = (
            ((key_hash >> _TAG_SHIFT) & 0xFF) << TAG_AT | kind << STAMP_BITS | (evicted[kind] & STAMP_MASK)
        )

    def _victim(self) -> int:
        """The entry to evict: small's oldest unused one while small is over
        its share (the used ones move on to main), else main's oldest unused
        one (the used ones go round again with one use less)."""
        next_, marks, lengths = self._next, self._marks, self._lengths
        if not self._full:
            self._full = True
        target = self._share * len(self._data)
        promote_at = self.promote_at
        while True:
            if lengths[SMALL] > target or not lengths[MAIN]:
                slot = next_[SMALL]
                if marks[slot] >= promote_at:
                    self._to_main(slot, IN_MAIN | marks[slot] if self.keep_uses else IN_MAIN)
                    continue
                # PERF: ``_remember(slot, SMALL)`` written out (most evictions).
                key_hash = hash(self._key_at[slot >> SHARD_BITS][slot & _SHARD_MASK])
                lately = self._lately
                lately[SMALL] += 1
                if lately[0] + lately[1] > self.ghosts * len(self._data):
                    lately[0] /= 2
                    lately[1] /= 2
                evicted = self._evicted
                stamp = evicted[SMALL] = evicted[SMALL] + 1
                self._ghost[key_hash & self._ghost_mask] = ((key_hash >> _TAG_SHIFT) & 0xFF) << TAG_AT | (
                    stamp & STAMP_MASK
                )
                return slot
            slot = next_[MAIN]
            mark = marks[slot]
            if mark & USES:
                marks[slot] = mark - 1
                self._unlink(slot)
                self._append(slot, MAIN)
                continue
            self._remember(slot, MAIN)
            return slot

    # -- statistics and snapshots -------------------------------------------------

    def counters(self) -> dict[str, Any]:
        counters = super().counters()
        counters["policy_small_share"] = round(self._share, 4)
        counters["policy_ghost_hits_small"] = self.ghost_hits[SMALL]
        counters["policy_ghost_hits_main"] = self.ghost_hits[MAIN]
        return counters

    def _snapshot_order(self) -> Iterator[int]:
        """Main, then small, each oldest first: a restore inserts them in
        that order, and the hints put each back in its queue."""
        next_ = self._next
        for head in (MAIN, SMALL):
            slot = next_[head]
            while slot != head:
                yield slot
                slot = next_[slot]

    def _snapshot_hint(self, slot: int) -> int:
        """The entry's mark (its queue and use count), and the share above it."""
        return self._marks[slot] | round(self._share * SHARE_UNITS) << HINT_SHARE_SHIFT

    def _restore_hint(self, slot: int, hint: int) -> None:
        """Put the entry just inserted (in small, or in main while the
        store fills) in its saved queue, with its count; take the share."""
        share = (hint >> HINT_SHARE_SHIFT) / SHARE_UNITS
        self._share = min(MAX_SHARE, max(self.min_share, share))
        mark = hint & (IN_MAIN | USES)
        if mark & IN_MAIN:
            self._to_main(slot, mark)
        else:
            if self._marks[slot] & IN_MAIN:  # it entered main while the store filled: back to small
                self._lengths[MAIN] -= 1
                self._lengths[SMALL] += 1
                self._unlink(slot)
                self._append(slot, SMALL)
            self._marks[slot] = mark
