"""Doubly linked lists of slots, kept in two arrays.

The orders the policies keep (recency for lru and ttl, one recency list per
use count for lfu, one per size for size) are lists of slots (slots.py) that
must support append, unlink and "first" in O(1). Python's OrderedDict does that,
but it is an object the garbage collector tracks and walks node by node in
link order, which with a million shuffled keys costs a full collection
hundreds of milliseconds. Here the links are two ``array('I')``: ``next[s]``
and ``prev[s]`` for slot ``s``. Arrays hold machine integers, not objects, so
the collector never looks at them, and they cost 8 bytes per slot.

Slot 0 is never an entry's (the store starts at 1). ``SlotList`` (lru's one
list) uses it as its head and is circular through it, so no link is ever
"none" and the hot path has no test. ``SlotChains`` holds many lists (lfu's
one per use count, size's one per size) in the same two arrays, with 0 as
"none" and each list's two ends in a small ``Chain`` object.
"""

from __future__ import annotations

from array import array

GROWTH_SHIFT = 3  # a full array grows by an eighth (at least by what the slot needs)


def more_slots(length: int, slot: int) -> int:
    """How many slots to add to an array of ``length`` slots so that ``slot``
    fits. It grows by an eighth, as CPython's lists do, not by doubling: a
    store's arrays hold one machine integer per slot, and doubled ones would
    leave up to half of them unused (at 100,000 entries, 4 to 8 bytes per
    entry for lru's two arrays, about 10 for tinylfu's three). Still
    geometric, so appends stay O(1) amortized, and a growth copies at most an
    array of 4 bytes a slot, a few milliseconds at a million entries."""
    return max(slot + 1 - length, (length >> GROWTH_SHIFT) + 64)


def grow_links(next_: array, prev: array, slot: int) -> int:
    """Room for ``slot`` in a pair of link arrays (``array('I')``, of one
    length); returns how many slots each grew by (``more_slots``)."""
    extra = more_slots(len(next_), slot)
    next_.frombytes(bytes(4 * extra))
    prev.frombytes(bytes(4 * extra))
    return extra


class HeadedLists:
    """Circular lists of slots through head nodes of their own, in a store's
    two link arrays ``_next`` and ``_prev``: tinylfu's window, probation and
    protected lists, adaptive's small and main queues. A mixin of the store
    (no state of its own); the hottest callers write these out (``PERF``)."""

    __slots__ = ()
    _next: array
    _prev: array

    def _append(self, slot: int, head: int) -> None:
        """Link ``slot`` (in no list) at the end of the list of ``head``."""
        next_, prev = self._next, self._prev
        last = prev[head]
        next_[last] = slot
        prev[slot] = last
        next_[slot] = head
        prev[head] = slot

    def _unlink(self, slot: int) -> None:
        """Take ``slot`` out of its list."""
        next_, prev = self._next, self._prev
        before, after = prev[slot], next_[slot]
        next_[before] = after
        prev[after] = before


class SlotList:
    """One circular list of slots through the head node 0."""

    __slots__ = ("next", "prev")

    def __init__(self) -> None:
        self.next = array("I", [0])
        self.prev = array("I", [0])

    def append(self, slot: int) -> None:
        """Link ``slot`` (not in the list) at its end."""
        next_, prev = self.next, self.prev
        if slot >= len(next_):
            grow_links(next_, prev, slot)
        last = prev[0]
        next_[last] = slot
        prev[slot] = last
        next_[slot] = 0
        prev[0] = slot

    def unlink(self, slot: int) -> None:
        next_, prev = self.next, self.prev
        before, after = prev[slot], next_[slot]
        next_[before] = after
        prev[after] = before

    def move_to_end(self, slot: int, *_: int) -> None:
        """Move ``slot`` to the end. (It ignores further arguments so that a
        policy can bind it as its update hook, which also gets sizes.)"""
        prev = self.prev
        last = prev[0]
        if last == slot:
            return
        next_ = self.next
        before, after = prev[slot], next_[slot]
        next_[before] = after
        prev[after] = before
        next_[last] = slot
        prev[slot] = last
        next_[slot] = 0
        prev[0] = slot

    def first(self) -> int:
        """The first slot (0 when the list is empty)."""
        return self.next[0]


class Chain:
    """One list of slots in a ``SlotChains`` (0: none). Policies keep few of
    these (one per distinct use count, one per distinct size)."""

    __slots__ = ("first", "last")

    def __init__(self) -> None:
        self.first = self.last = 0

    def __bool__(self) -> bool:
        return self.first != 0


class SlotChains:
    """Many lists of slots in the same two arrays; each list's ends are kept
    in its ``Chain``. A slot is in at most one chain at a time."""

    __slots__ = ("next", "prev")

    def __init__(self) -> None:
        self.next = array("I", [0])
        self.prev = array("I", [0])

    def append(self, chain: Chain, slot: int) -> None:
        if slot >= len(self.next):
            grow_links(self.next, self.prev, slot)
        last = chain.last
        self.prev[slot] = last
        self.next[slot] = 0
        if last:
            self.next[last] = slot
        else:
            chain.first = slot
        chain.last = slot

    def unlink(self, chain: Chain, slot: int) -> None:
        before, after = self.prev[slot], self.next[slot]
        if before:
            self.next[before] = after
        else:
            chain.first = after
        if after:
            self.prev[after] = before
        else:
            chain.last = before

    def concat(self, chain: Chain, tail: Chain) -> None:
        """Move every slot of ``tail`` to the end of ``chain``, in order: O(1)."""
        if not tail:
            return
        if chain:
            self.next[chain.last] = tail.first
            self.prev[tail.first] = chain.last
        else:
            chain.first = tail.first
        chain.last = tail.last
        tail.first = tail.last = 0
