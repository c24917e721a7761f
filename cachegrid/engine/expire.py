"""The expiry index: which entries expire next, without scanning the store.

How it works
------------
Every write of an entry with a TTL pushes ``(expires_at, slot)`` onto a binary
min-heap (the slot is the entry's number in the store, see slots.py), so the
entry that expires soonest is always at the top. The heap is two parallel
``array`` objects, expiry times and slots, sifted here: a list of tuples
would be a million objects for the garbage collector to walk, and a full
collection would pay for all of them. A push moves an item up about two
levels on average; a pop moves one down the whole depth (~20 levels for a
million items), which the sweeper does in its batches. Entries are never searched
for inside the heap: when a key is deleted, overwritten or given a new TTL, its
old heap item simply stays behind. An item is *current* only if the entry now
holding that slot expires at exactly that ``expires_at``; dead items are
dropped whenever they reach the top (lazy deletion). (A slot freed and taken
by another entry with the very same expiry time makes an old item current
again: it then names an entry that is due at that time, which is all an item
promises.)

Two things read the heap:

- ``pop_due(now)`` hands out, one at a time, the slots whose current expiry is
  ``<= now``. The store uses it to reclaim expired entries before it evicts a
  live one, and the sweeper (``Sweeper.sweep``, sweeper.py) calls it in bounded batches,
  releasing the lock between batches, so that reclaiming a million expired
  entries never holds the lock for more than one batch.
- ``peek()`` names the slot of the entry that expires soonest (the ``ttl`` policy's
  victim).

Stale items would pile up without bound if a long-TTL key were rewritten in a
loop, so the heap is rebuilt from its current items once it holds more than
twice as many items as there are entries with a TTL (plus some slack): O(n)
once per n dead pushes, O(1) amortised. While ``Cache``'s sweeper thread
runs, the rebuild does not happen inside the write that crossed the line: the
write only wakes the sweeper, which copies the two arrays under the lock (a
memory copy, 12 bytes per item), filters and sorts the copy *outside* the lock
(a sorted array is a heap), and installs it
under the lock again together with the items pushed meanwhile (those it
pushes into its copy outside the lock until few are left: the sift is Python,
and a rebuild that took a second may have seen a hundred thousand pushes). Items popped
meanwhile are dead in the copy and dropped lazily, as ever. So no single
lock hold pays the O(n) filtering. Without a sweeper (an engine used without
``start()``) the write rebuilds the heap itself.
"""

from __future__ import annotations

from array import array
from collections.abc import Callable

# Below this many items a rebuild is not worth doing.
_COMPACT_SLACK = 1024


class Deadlines:
    """Heap items as two parallel arrays: ``expires_at[i]``, ``slots[i]``."""

    __slots__ = ("expires_at", "slots")

    def __init__(self, expires_at: array | None = None, slots: array | None = None) -> None:
        self.expires_at = array("d") if expires_at is None else expires_at
        self.slots = array("I") if slots is None else slots

    def __len__(self) -> int:
        return len(self.expires_at)

    def copy(self) -> Deadlines:
        return Deadlines(self.expires_at[:], self.slots[:])

    def push(self, expires_at: float, slot: int) -> None:
        """Add an item and sift it up to its place."""
        times, slots = self.expires_at, self.slots
        index = len(times)
        times.append(expires_at)
        slots.append(slot)
        while index:
            parent = (index - 1) >> 1
            parent_time = times[parent]
            if parent_time <= expires_at:
                break
            times[index] = parent_time
            slots[index] = slots[parent]
            index = parent
        times[index] = expires_at
        slots[index] = slot

    def pop(self) -> None:
        """Remove the top item: the last one takes its place and sinks."""
        times, slots = self.expires_at, self.slots
        last_time, last_slot = times.pop(), slots.pop()
        count = len(times)
        if not count:
            return
        index = 0
        while True:
            child = 2 * index + 1
            if child >= count:
                break
            child_time = times[child]
            if child + 1 < count and times[child + 1] < child_time:
                child += 1
                child_time = times[child]
            if last_time <= child_time:
                break
            times[index] = child_time
            slots[index] = slots[child]
            index = child
        times[index] = last_time
        slots[index] = last_slot


class ExpiryIndex:
    """A heap of ``(expires_at, slot)`` with lazy deletion of dead items.

    ``expires_at_of(slot)`` is the expiry time of the entry holding ``slot``
    now (None when the slot is free). ``overgrown`` is called when the heap
    should be rebuilt; it returns True when someone else will do it (the
    sweeper), False to rebuild at once."""

    __slots__ = ("_expires_at_of", "_heap", "_log", "_overgrown")

    def __init__(
        self, expires_at_of: Callable[[int], float | None], overgrown: Callable[[], bool] = lambda: False
    ) -> None:
        self._expires_at_of = expires_at_of
        self._heap = Deadlines()
        self._overgrown = overgrown
        # Items pushed while a rebuild runs outside the lock (None: no rebuild).
        self._log: list[tuple[float, int]] | None = None

    def __len__(self) -> int:
        """Number of heap items, dead ones included."""
        return len(self._heap)

    def add(self, expires_at: float, slot: int, live_with_ttl: int) -> None:
        """Record that the entry in ``slot`` expires at ``expires_at``;
        ``live_with_ttl`` is how many entries of the store have a TTL (it
        decides on a rebuild)."""
        self._heap.push(expires_at, slot)
        if self._log is not None:
            self._log.append((expires_at, slot))
        elif len(self._heap) > 2 * live_with_ttl + _COMPACT_SLACK and not self._overgrown():
            self.compact()

    def _is_current(self, expires_at: float, slot: int) -> bool:
        return self._expires_at_of(slot) == expires_at

    def pop_due(self, now: float) -> int | None:
        """Remove and return a slot whose current expiry is ``<= now``, or None."""
        heap = self._heap
        times, slots = heap.expires_at, heap.slots
        while times and times[0] <= now:
            expires_at, slot = times[0], slots[0]
            heap.pop()
            if self._is_current(expires_at, slot):
                return slot
        return None

    def peek(self) -> int | None:
        """The slot of the entry with a TTL that expires soonest, or None."""
        heap = self._heap
        times, slots = heap.expires_at, heap.slots
        while times:
            if self._is_current(times[0], slots[0]):
                return slots[0]
            heap.pop()
        return None

    def detach(self) -> list[array]:
        """Hand back the heap's arrays and start empty (a cleared store)."""
        heap, self._heap = self._heap, Deadlines()
        return [heap.expires_at, heap.slots]

    def compact(self) -> None:
        """Drop every dead item and rebuild the heap, all at once."""
        self._heap = self.without_dead(self._heap)

    # A rebuild in three steps, for a caller that holds the lock for the first
    # and the last only.

    def begin_rebuild(self) -> Deadlines | None:
        """Under the lock: a copy of the heap to rebuild (None if one runs)."""
        if self._log is not None:
            return None
        self._log = []
        return self._heap.copy()

    def without_dead(self, items: Deadlines) -> Deadlines:
        """The current ones of ``items``, as a heap (sorted by expiry). Safe
        outside the lock: an item dropped as dead is not needed (whatever
        entry holds its slot with that expiry later pushed an item of its
        own), and one found current but dead by now is dropped later, lazily."""
        times, slots, is_current = items.expires_at, items.slots, self._is_current
        kept = [index for index in range(len(times)) if is_current(times[index], slots[index])]
        kept.sort(key=times.__getitem__)
        return Deadlines(array("d", map(times.__getitem__, kept)), array("I", map(slots.__getitem__, kept)))

    def pending(self) -> int:
        """Under the lock: how many items were pushed since the rebuild began."""
        return len(self._log or ())

    def take_pushed(self) -> list[tuple[float, int]]:
        """Under the lock: the items pushed since the rebuild began (or since
        the last call), for the rebuilder to push into its copy outside the
        lock, so that ``end_rebuild`` has only a few left to replay."""
        pushed, self._log = self._log or [], []
        return pushed

    def end_rebuild(self, rebuilt: Deadlines) -> None:
        """Under the lock: install the rebuilt heap with what was pushed since."""
        for expires_at, slot in self._log or ():
            rebuilt.push(expires_at, slot)
        self._heap = rebuilt
        self._log = None
