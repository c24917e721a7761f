"""The ``tinylfu`` policy: W-TinyLFU, the eviction of Caffeine.

LRU keeps whatever was used last, so one scan over more keys than fit flushes
every hot key. W-TinyLFU keeps what is used *often*, and still adapts to what
is used *now*. Einziger, Friedman and Manes, "TinyLFU: a highly efficient
cache admission policy" (2017); this follows Caffeine's design:

- a frequency sketch (sketch.py) estimates how often every key was used
  lately, held or not, in 4-bit counters that are halved as time goes on;
- a new entry enters the *window*, a small LRU of 1% of the entries;
- what falls out of the window is a *candidate* for the *main* space, a
  segmented LRU: *probation* (entries used once in main) and *protected*
  (80% of main: entries used again while in probation; when it overflows,
  its least recently used entry goes back to probation);
- when the store must evict, the candidate (the window's least recently used
  entry, once the window is full) duels main's victim (probation's least
  recently used entry, else protected's): the one the sketch estimates used
  less often is evicted, the victim on a tie. So a key read once (a scan, a
  one-hit wonder) cannot push out a key that is read again and again;
- a candidate whose estimate is at least ``ADMIT_AT_RANDOM_FROM`` (6) but not
  above the victim's wins anyway, 1 time in 128, at random: without it, an
  attacker who keeps one key's estimate high could keep every newcomer out
  (Caffeine's defence against hash flooding).

The store asks for a victim *before* it inserts the new entry, so ``_victim``
looks at what the window will push out once the new entry is in: the window's
oldest entry if the window holds its share already. After the insert, a window
over its share moves its oldest entry to probation: a candidate that won its
duel, or one admitted while the store had room.

The shares are of the entries the store holds (``len``), not of ``max_size``,
so a store bounded by memory splits what it holds the same way.

Every hook is O(1). Per entry: two links in two ``array('I')`` (the three
lists share them; their heads are slots 0, 1 and 2, which the store never
hands out), one byte naming its list, and its share of the sketch (8 to 16
bytes): nothing the garbage collector walks.
"""

from __future__ import annotations

import random
from array import array
from typing import Iterator

from .sketch import _PAIR, FrequencySketch
from .store import SHARD_BITS, Store

WINDOW, PROBATION, PROTECTED = 0, 1, 2
WINDOW_SHARE = 0.01
PROTECTED_SHARE = 0.80
ADMIT_AT_RANDOM_FROM = 6
ADMIT_AT_RANDOM_ONE_IN = 128
_SHARD_MASK = (1 << SHARD_BITS) - 1


class TinyLFUStore(Store):
    name = "tinylfu"
    # Measured by `python -m cachegrid.engine.calibrate` (100,000 entries, CPython 3.11).
    entry_overhead = 180
    ttl_overhead = 12
    list_heads = 3  # slots 0, 1, 2: the heads of WINDOW, PROBATION and PROTECTED

    def _init_policy(self) -> None:
        self._next = array("I", range(self.list_heads))  # each head alone in its circular list
        self._prev = array("I", range(self.list_heads))
        self._list = array("B", bytes(self.list_heads))  # by slot: WINDOW, PROBATION or PROTECTED
        self._lengths = [0, 0, 0]  # entries in each list
        self._sketch = FrequencySketch(self.max_size)
        self._random = random.Random()

    # -- the three lists -------------------------------------------------------

    def _append(self, node: int, head: int) -> None:
        next_, prev = self._next, self._prev
        last = prev[head]
        next_[last] = node
        prev[node] = last
        next_[node] = head
        prev[head] = node

    def _unlink(self, node: int) -> None:
        next_, prev = self._next, self._prev
        before, after = prev[node], next_[node]
        next_[before] = after
        prev[after] = before

    def _move(self, slot: int, head: int) -> None:
        """Move ``slot`` to the end of the list ``head`` (its own or another)."""
        self._lengths[self._list[slot]] -= 1
        self._lengths[head] += 1
        self._list[slot] = head
        self._unlink(slot)
        self._append(slot, head)

    def _oldest(self, head: int) -> int:
        """The slot first in the list ``head`` (``head`` itself: the list is empty)."""
        return self._next[head]

    def _hash_of(self, slot: int) -> int:
        return hash(self._key_at[slot >> SHARD_BITS][slot & _SHARD_MASK])

    # -- the hooks -------------------------------------------------------------

    def _on_access(self, slot: int, _pair: tuple = _PAIR, _bits: int = SHARD_BITS, _low: int = _SHARD_MASK) -> None:
        # The hottest path of the policy, written out: the sketch's increment
        # (sketch.py) and the move within a list, without a call.
        key_hash = hash(self._key_at[slot >> _bits][slot & _low])
        sketch = self._sketch
        table = sketch.table
        index = key_hash & sketch.mask
        word = table[index]
        one = _pair[(key_hash >> 32) & 255] | _pair[(key_hash >> 40) & 255]
        added = word + one
        if (added ^ word ^ one) & (one << 4):  # some counter at 15: the careful way
            sketch.increment(key_hash)
        else:
            table[index] = added
            sketch.uses += 1
            if sketch.uses >= sketch.period:
                sketch.age()
        where = self._list[slot]
        prev, next_ = self._prev, self._next
        last = prev[where]
        if where != PROBATION:
            if last != slot:  # not already the most recent of its list
                before, after = prev[slot], next_[slot]
                next_[before] = after
                prev[after] = before
                next_[last] = slot
                prev[slot] = last
                next_[slot] = where
                prev[where] = slot
            return
        # Used again in main: promoted to protected.
        before, after = prev[slot], next_[slot]
        next_[before] = after
        prev[after] = before
        last = prev[PROTECTED]
        next_[last] = slot
        prev[slot] = last
        next_[slot] = PROTECTED
        prev[PROTECTED] = slot
        self._list[slot] = PROTECTED
        lengths = self._lengths
        if lengths[PROTECTED] + 1 > PROTECTED_SHARE * (len(self._data) - lengths[WINDOW]):
            # Protected is full: its oldest entry goes back to probation.
            oldest = next_[PROTECTED]
            after = next_[oldest]
            next_[PROTECTED] = after
            prev[after] = PROTECTED
            last = prev[PROBATION]
            next_[last] = oldest
            prev[oldest] = last
            next_[oldest] = PROBATION
            prev[PROBATION] = oldest
            self._list[oldest] = PROBATION
        else:
            lengths[PROBATION] -= 1
            lengths[PROTECTED] += 1

    def _on_insert(self, slot: int, size: int) -> None:
        if slot >= len(self._list):
            extra = max(slot + 1, 2 * len(self._list)) - len(self._list)
            self._list.frombytes(bytes(extra))
            self._next.frombytes(bytes(4 * extra))
            self._prev.frombytes(bytes(4 * extra))
        entries = len(self._data)
        if 2 * entries > self._sketch.mask:
            self._sketch.ensure_width(entries)
        self._sketch.increment(self._hash_of(slot))
        self._list[slot] = WINDOW
        self._lengths[WINDOW] += 1
        self._append(slot, WINDOW)
        if self._lengths[WINDOW] > max(1, int(WINDOW_SHARE * entries)):
            self._move(self._oldest(WINDOW), PROBATION)

    def _on_remove(self, slot: int, size: int) -> None:
        self._lengths[self._list[slot]] -= 1
        self._unlink(slot)

    def _victim(self) -> int:
        lengths = self._lengths
        main = PROBATION if lengths[PROBATION] else PROTECTED
        if not lengths[main]:
            return self._oldest(WINDOW)
        victim = self._oldest(main)
        # The entry about to arrive joins the window: is the window full, so
        # that its oldest entry would then be a candidate for main?
        if not lengths[WINDOW] or lengths[WINDOW] < max(1, int(WINDOW_SHARE * len(self._data))):
            return victim
        candidate = self._oldest(WINDOW)
        return victim if self._admits(candidate, victim) else candidate

    def _admits(self, candidate: int, victim: int) -> bool:
        """Whether ``candidate`` (from the window) may take ``victim``'s place in main."""
        candidate_frequency = self._sketch.frequency(self._hash_of(candidate))
        victim_frequency = self._sketch.frequency(self._hash_of(victim))
        if candidate_frequency > victim_frequency:
            return True
        if candidate_frequency >= ADMIT_AT_RANDOM_FROM:
            return self._random.randrange(ADMIT_AT_RANDOM_ONE_IN) == 0
        return False

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
        return self._sketch.frequency(self._hash_of(slot)) | (16 if self._list[slot] == PROTECTED else 0)

    def _restore_hint(self, slot: int, hint: int) -> None:
        """Bring the estimate of the entry just inserted (which counted one
        use) up to the saved one, and put it back in protected if it was.
        Hashes differ between processes, so collisions do too: the estimates
        come back, the sketch's other counters start empty."""
        key_hash = self._hash_of(slot)
        for _ in range((hint & 15) - self._sketch.frequency(key_hash)):
            self._sketch.increment(key_hash)
        if hint & 16 and self._list[slot] != PROTECTED:
            self._move(slot, PROTECTED)
