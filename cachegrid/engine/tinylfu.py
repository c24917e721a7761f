"""The ``tinylfu`` policy: W-TinyLFU, the eviction of Caffeine.

LRU keeps whatever was used last, so one scan over more keys than fit flushes
every hot key. W-TinyLFU keeps what is used *often*, and still adapts to what
is used *now*. Einziger, Friedman and Manes, "TinyLFU: a highly efficient
cache admission policy" (2017). This follows Caffeine's design, and its
steps carry Caffeine's names (in snake case).

The regions
-----------
A frequency sketch (sketch.py) estimates how often every key was used
lately, held or not, in 4-bit counters that are halved as time goes on.
Every read hit, every write and every insert is a use.

The entries live in three lists, each in least recently used order. A new
entry enters the *window*, a small LRU of 1% of the entries (its share:
``int(share × entries)``, at least one). What falls out of the window is a
*candidate* for *main*, a segmented LRU: *probation* (entries not used again
since they reached main) and *protected* (at most 80% of main: entries used
again while in probation).

Reads (``_on_access``)
----------------------
A read of an entry in the window moves it to the window's end. A read of an
entry in probation promotes it to protected's end; a protected that
outgrows its 80% of main then gives its oldest entry back to probation
(``_demote_from_main_protected``). Protected is kept in CLOCK order rather
than LRU order: a read of a protected entry only marks it used (one byte
written, no relinking: the hottest path, kept cheap), and when protected
overflows, a marked oldest entry gets a second chance (unmarked, to the
end) instead of leaving, up to ``SECOND_CHANCES`` (4) per overflow, so the
demotion stays O(1); the entry it reaches then goes, marked or not. A write
to a held entry moves it as a read does.

Eviction (``_victim``, ``_evict_from_main``, ``_admit``)
-------------------------------------------------------
The store asks for a victim *before* it inserts the new entry, so the duel
looks at what the window will push out once the new entry is in.
``_evict_from_main`` picks main's *victim*, probation's oldest entry (or
protected's, when probation is empty), and the *candidate*: the window's
oldest entry, if the window already holds its share (otherwise nothing
will leave the window, and main's victim goes). Then ``_admit(candidate,
victim)``, the duel, decides which of the two leaves: the one the sketch
estimates used less often, the candidate on a tie. So a key read once (a
scan, a one-hit wonder) cannot push out a key that is read again and
again. A candidate whose estimate is at least ``ADMIT_AT_RANDOM_FROM`` (6)
but not above the victim's is admitted anyway, 1 time in 128, at random:
without it, an attacker who keeps one key's estimate high could keep every
newcomer out (Caffeine's defence against hash flooding). A store whose main
is empty evicts the window's oldest entry.

After the insert (``_on_insert``), ``_evict_from_window`` hands a window
that holds more than its share (and more than one entry) over to
probation, oldest first, until it is back to its share, at most two
entries per insert: a candidate that won its duel, or one that moves on
while the store still has room. Two leave only when the share shrank
(the hill climber, below) or is none (a store of under 100 entries, whose
window then empties every second insert).

The shares are of the entries the store holds (``len``), not of
``max_size``, so a store bounded by memory splits what it holds the same way.

The hill climber (``_climb``)
-----------------------------
With ``climb=True`` (a policy option, off by default) the window's share
moves as Caffeine's hill climber moves it: every 10 × ``max_size`` requests
(the store's hits and misses) the share takes a step (6.25% of the entries
at first) in the direction that raised the hit ratio over the last sample,
the other way if it fell; the step shrinks by 2% a sample and starts again
at full size when the hit ratio moves by 5 points or more.
docs/benchmarks-hit-ratio.md has what it scores: on these traces it does
not pay, which is why it is off.

Cost
----
Every hook is O(1). Per entry: two links in two ``array('I')`` (the three
lists share them; their heads are slots 0, 1 and 2, which the store never
hands out), one byte naming its list (``USED``: protected and marked used),
and its share of the sketch (8 to 16 bytes): nothing the garbage collector
walks. The read hook (``_on_access``) is a closure over these structures,
bound in ``_bind_access``: the sketch's ``add`` and the moves between the
lists written out, with no attribute lookups and no calls but the rare
demotion. The other hot spots that write out a step rather than call it
say so in a ``# PERF:`` comment; tests/engine/test_tinylfu_model.py drives
the policy against a plainly written model of the rules above and checks
every list, every mark and every eviction after each operation.
"""

from __future__ import annotations

import random
import time
from array import array
from collections.abc import Iterator

from .limits import DEFAULT_LIMITS, Limits
from .links import HeadedLists, grow_links
from .sketch import ONES, PATTERNS, SHIFTS, FrequencySketch
from .slots import SHARD_BITS
from .store import Clock, Store

WINDOW, PROBATION, PROTECTED = 0, 1, 2
USED = 3  # in the byte naming an entry's list: PROTECTED, and used since it entered or last moved
SECOND_CHANCES = 4
WINDOW_SHARE = 0.01
PROTECTED_SHARE = 0.80
ADMIT_AT_RANDOM_FROM = 6
ADMIT_AT_RANDOM_ONE_IN = 128
# The hill climber (``climb``), Caffeine's: every CLIMB_SAMPLE × max_size
# requests, move the window's share by a step in the direction that raised
# the hit ratio last time (the other way if it fell); the step starts at
# CLIMB_STEP, restarts there when the hit ratio moves by CLIMB_RESTART or
# more (the workload changed), and shrinks by CLIMB_DECAY otherwise.
CLIMB_SAMPLE = 10
CLIMB_STEP = 0.0625
CLIMB_RESTART = 0.05
CLIMB_DECAY = 0.98
WINDOW_SHARE_RANGE = (0.0, 0.80)
_SHARD_MASK = (1 << SHARD_BITS) - 1


class TinyLFUStore(HeadedLists, Store):
    __slots__ = (
        "_climb_at",
        "_last_ratio",
        "_lengths",
        "_list",
        "_next",
        "_on_access",
        "_prev",
        "_random",
        "_sample_hits",
        "_sample_requests",
        "_sketch",
        "_step",
        "_window_share",
        "climb",
    )
    name = "tinylfu"
    # Measured by `python -m cachegrid.engine.calibrate` (100,000 entries, CPython 3.11).
    entry_overhead = 160
    ttl_overhead = 20
    list_heads = 3  # slots 0, 1, 2: the heads of WINDOW, PROBATION and PROTECTED
    # The smallest estimate at which a candidate that lost its duel may be
    # admitted at random (a variant without the rule raises it out of reach).
    admit_at_random_from: float = ADMIT_AT_RANDOM_FROM

    def __init__(self, limits: Limits = DEFAULT_LIMITS, clock: Clock = time.monotonic, climb: bool = False) -> None:
        if climb.__class__ is not bool:
            raise ValueError(f"climb must be true or false, not {climb!r}")
        self.climb = climb
        super().__init__(limits, clock)

    def _init_policy(self) -> None:
        self._next = array("I", range(self.list_heads))  # each head alone in its circular list
        self._prev = array("I", range(self.list_heads))
        self._list = array("B", bytes(self.list_heads))  # by slot: WINDOW, PROBATION, PROTECTED or USED
        self._lengths = [0, 0, 0]  # entries in each list
        self._sketch = FrequencySketch(self.max_size, self.hits)
        self._random = random.Random()
        self._window_share = WINDOW_SHARE
        # The hill climber's state: when the next sample ends (in requests,
        # the store's hits + misses), the last sample's hit ratio, the step.
        self._sample_hits, self._sample_requests = self.hits, self.hits + self.misses
        self._climb_at = self._sample_requests + CLIMB_SAMPLE * self.max_size if self.climb else float("inf")
        self._last_ratio = 0.0
        self._step = CLIMB_STEP
        self._bind_access()

    # -- the three lists -------------------------------------------------------

    def _head_of(self, slot: int) -> int:
        """The list ``slot`` is in."""
        kind = self._list[slot]
        return PROTECTED if kind == USED else kind

    def _move(self, slot: int, head: int) -> None:
        """Move ``slot`` to the end of the list ``head`` (its own or another)."""
        self._lengths[self._head_of(slot)] -= 1
        self._lengths[head] += 1
        self._list[slot] = head
        self._unlink(slot)
        self._append(slot, head)

    def _oldest(self, head: int) -> int:
        """The slot first in the list ``head`` (``head`` itself: the list is empty)."""
        return self._next[head]

    def _hash_of(self, slot: int) -> int:
        return hash(self._key_at[slot >> SHARD_BITS][slot & _SHARD_MASK])

    def _window_size(self, entries: int) -> int:
        """How many of ``entries`` the window holds at most."""
        size = int(self._window_share * entries)
        return size if size > 1 else 1

    @property
    def window_share(self) -> float:
        """The window's share of the entries (1%, or where the climber moved it)."""
        return self._window_share

    # -- reads: the sketch, and the moves between the lists ----------------------

    def _bind_access(self) -> None:
        """Bind ``_on_access``, the hottest path of the policy: the sketch's
        ``add`` and the move within (or between) the lists, written out in
        one closure over the structures it touches. Bound again whenever one
        of them is replaced (``_init_policy``) or the sketch's mask changes."""
        sketch = self._sketch
        table, mask = sketch.table, sketch.mask
        careful = sketch.add
        kinds, prev, next_, lengths, data = self._list, self._prev, self._next, self._lengths, self._data
        ones, patterns = ONES, len(PATTERNS)
        demote_from_main_protected = self._demote_from_main_protected
        window, probation, protected, used = WINDOW, PROBATION, PROTECTED, USED  # as cells: cheaper than globals

        def on_access(slot: int, key: str) -> None:
            # PERF: the sketch's add (sketch.py), written out.
            key_hash = hash(key)  # cached in the str object
            index = key_hash & mask
            word = table[index]
            one = ones[key_hash % patterns]
            added = word + one
            if (added ^ word ^ one) & (one << 4):  # some counter at 15: the careful way
                careful(key_hash)
            else:
                table[index] = added
            # The use is counted by the store (its hits): see ``_on_insert``.
            where = kinds[slot]
            if where >= protected:  # in protected: marked used (it moves when its turn to leave comes)
                if where == protected:
                    kinds[slot] = used
                return
            # PERF: the moves below are ``_move`` written out.
            last = prev[where]
            if where == window:  # in the window: to its end
                if last != slot:
                    before, after = prev[slot], next_[slot]
                    next_[before] = after
                    prev[after] = before
                    next_[last] = slot
                    prev[slot] = last
                    next_[slot] = window
                    prev[window] = slot
                return
            # In probation: used again in main, promoted to protected's end.
            before, after = prev[slot], next_[slot]
            next_[before] = after
            prev[after] = before
            last = prev[protected]
            next_[last] = slot
            prev[slot] = last
            next_[slot] = protected
            prev[protected] = slot
            kinds[slot] = protected
            if lengths[protected] + 1 > PROTECTED_SHARE * (len(data) - lengths[window]):
                demote_from_main_protected()  # one comes back: the lengths stay
            else:
                lengths[probation] -= 1
                lengths[protected] += 1

        self._on_access = on_access  # type: ignore[method-assign]

    def _demote_from_main_protected(self) -> None:
        """Protected is over its share: its oldest entry goes back to
        probation; one marked used since it entered (or last moved) gets a
        second chance instead: unmarked, to the end of protected, at most
        ``SECOND_CHANCES`` of them per call, so this stays O(1)."""
        kinds, next_ = self._list, self._next
        oldest = next_[PROTECTED]
        for _ in range(SECOND_CHANCES):
            if kinds[oldest] != USED:
                break
            kinds[oldest] = PROTECTED
            self._unlink(oldest)
            self._append(oldest, PROTECTED)
            oldest = next_[PROTECTED]
        kinds[oldest] = PROBATION
        self._unlink(oldest)
        self._append(oldest, PROBATION)

    def _on_update(self, slot: int, old_size: int, new_size: int) -> None:
        self._sketch.uses += 1  # a write is a use the store does not count in its hits
        self._on_access(slot, self._key_at[slot >> SHARD_BITS][slot & _SHARD_MASK])  # type: ignore[arg-type]

    # -- inserts and evictions ---------------------------------------------------

    def _grow(self, slot: int) -> None:
        """Room in the per-slot arrays for ``slot``."""
        self._list.frombytes(bytes(grow_links(self._next, self._prev, slot)))  # the three have one length

    def _on_insert(self, slot: int, size: int, _ones: tuple = ONES, _patterns: int = len(PATTERNS)) -> None:
        if slot >= len(self._list):
            self._grow(slot)
        entries = len(self._data)
        sketch = self._sketch
        if 2 * entries > sketch.mask and sketch.ensure_width(entries):
            self._bind_access()
        # Reads add to the sketch without counting (the hot path); the store
        # counts them in its hits, and the halving they are owed happens here.
        hits = self.hits
        if sketch.uses + hits - sketch.reads_seen >= sketch.period:
            sketch.catch_up(hits)
        # PERF: the sketch's add (sketch.py), written out.
        key_hash = hash(self._key_at[slot >> SHARD_BITS][slot & _SHARD_MASK])
        table, index = sketch.table, key_hash & sketch.mask
        word = table[index]
        one = _ones[key_hash % _patterns]
        added = word + one
        if (added ^ word ^ one) & (one << 4):  # some counter at 15: the careful way
            sketch.add(key_hash)
        else:
            table[index] = added
        sketch.uses += 1
        # PERF: ``_append`` to the window, written out.
        next_, prev = self._next, self._prev
        self._list[slot] = WINDOW
        last = prev[WINDOW]
        next_[last] = slot
        prev[slot] = last
        next_[slot] = WINDOW
        prev[WINDOW] = slot
        self._lengths[WINDOW] += 1
        if self.hits + self.misses >= self._climb_at:
            self._climb()
        self._evict_from_window(entries)

    def _evict_from_window(self, entries: int) -> None:
        """A window over its share (of ``entries``) and holding more than
        one entry hands its oldest entries to probation until it is back to
        its share, at most two: the second only when the share shrank (the
        climber) or is none (under 100 entries)."""
        lengths = self._lengths
        share = int(self._window_share * entries)
        if lengths[WINDOW] > (share if share > 1 else 1):
            if lengths[WINDOW] > share + 1:
                self._move(self._next[WINDOW], PROBATION)
            # PERF: ``_move`` of the window's oldest entry to probation, written out.
            next_, prev = self._next, self._prev
            oldest = next_[WINDOW]
            after = next_[oldest]
            next_[WINDOW] = after
            prev[after] = WINDOW
            last = prev[PROBATION]
            next_[last] = oldest
            prev[oldest] = last
            next_[oldest] = PROBATION
            prev[PROBATION] = oldest
            self._list[oldest] = PROBATION
            lengths[WINDOW] -= 1
            lengths[PROBATION] += 1

    def _evict_from_main(self) -> int:
        """Main's victim (probation's oldest, else protected's) against the
        candidate (the window's oldest, if the window is full so that the
        coming insert pushes it out): ``_admit`` says which one goes."""
        lengths, next_ = self._lengths, self._next
        victim = next_[PROBATION] if lengths[PROBATION] else next_[PROTECTED]
        if victim <= PROTECTED:  # main is empty
            return next_[WINDOW]
        window = lengths[WINDOW]
        share = int(self._window_share * len(self._data))  # PERF: ``_window_size``, written out
        if not window or window < (share if share > 1 else 1):
            return victim
        candidate = next_[WINDOW]
        return victim if self._admit(candidate, victim) else candidate

    # The store's hook for the slot to evict (a subclass that changes this
    # step overrides ``_victim``).
    _victim = _evict_from_main

    def _admit(self, candidate: int, victim: int) -> bool:
        """The duel: whether ``candidate`` (from the window) takes
        ``victim``'s place in main. It does if the sketch estimates it used
        more often; if not, one estimated at ``admit_at_random_from`` or
        more still does, 1 time in ``ADMIT_AT_RANDOM_ONE_IN``."""
        estimate = self._estimate
        candidate_frequency = estimate(candidate)
        if candidate_frequency > estimate(victim):
            return True
        if candidate_frequency >= self.admit_at_random_from:
            return self._random.randrange(ADMIT_AT_RANDOM_ONE_IN) == 0
        return False

    def _estimate(self, slot: int, _shifts: tuple = SHIFTS, _patterns: int = len(PATTERNS)) -> int:
        """The sketch's estimate of the uses of the entry at ``slot`` (0..15)."""
        # PERF: the sketch's frequency (sketch.py), written out.
        key_hash = hash(self._key_at[slot >> SHARD_BITS][slot & _SHARD_MASK])
        sketch = self._sketch
        word = sketch.table[key_hash & sketch.mask]
        a, b, c, d = _shifts[key_hash % _patterns]
        return min((word >> a) & 15, (word >> b) & 15, (word >> c) & 15, (word >> d) & 15)

    def _on_remove(self, slot: int, size: int) -> None:
        kind = self._list[slot]
        self._lengths[PROTECTED if kind == USED else kind] -= 1
        next_, prev = self._next, self._prev
        before, after = prev[slot], next_[slot]
        next_[before] = after
        prev[after] = before

    # -- the hill climber --------------------------------------------------------

    def _climb(self) -> None:
        """End a sample of the hill climber: move the window's share."""
        requests = self.hits + self.misses
        ratio = (self.hits - self._sample_hits) / max(1, requests - self._sample_requests)
        change = ratio - self._last_ratio
        step = self._step if change >= 0 else -self._step
        low, high = WINDOW_SHARE_RANGE
        self._window_share = min(high, max(low, self._window_share + step))
        if abs(change) >= CLIMB_RESTART:
            self._step = CLIMB_STEP if step >= 0 else -CLIMB_STEP
        else:
            self._step = CLIMB_DECAY * step
        self._last_ratio = ratio
        self._sample_hits, self._sample_requests = self.hits, requests
        self._climb_at = requests + CLIMB_SAMPLE * self.max_size

    # -- snapshots (store.py, snapshot.py) ----------------------------------------

    def _snapshot_order(self) -> Iterator[int]:
        """Probation, then protected, then the window, each oldest first: a
        restore inserts them in that order, so each list comes back in its
        order (with the hints below)."""
        next_ = self._next
        for head in (PROBATION, PROTECTED, WINDOW):
            slot = next_[head]
            while slot != head:
                yield slot
                slot = next_[slot]

    def _snapshot_hint(self, slot: int) -> int:
        """The sketch's estimate for the entry (1 to 15), plus 16 when it is
        in protected."""
        return self._estimate(slot) | (16 if self._head_of(slot) == PROTECTED else 0)

    def _restore_hint(self, slot: int, hint: int) -> None:
        """Bring the estimate of the entry just inserted (which counted one
        use) up to the saved one, and put it back in protected if it was.
        Hashes differ between processes, so collisions do too: the estimates
        come back, the sketch's other counters start empty."""
        key_hash = self._hash_of(slot)
        for _ in range((hint & 15) - self._sketch.frequency(key_hash)):
            self._sketch.increment(key_hash)
        if hint & 16 and self._head_of(slot) != PROTECTED:
            self._move(slot, PROTECTED)
