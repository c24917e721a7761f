"""The ``size`` policy: evict the largest entry first, ties by recency.

An entry's size is its key's UTF-8 length plus its value's length. Entries
are grouped in one bucket per distinct size (a ``Chain`` of slots, links.py,
in recency order, least recently used first), and a max-heap of the sizes
that have a bucket says which bucket is the largest:

- a use moves the slot to the end of its bucket: O(1);
- a new entry joins its size's bucket, pushing the size on the heap when the
  bucket is new: O(log n) at worst;
- an entry that leaves its bucket (delete, replacement with another size)
  empties the bucket at worst; the bucket is deleted and its heap item goes
  dead, to be dropped when it reaches the top (lazy deletion, as in
  expire.py), and the heap is rebuilt if dead items outnumber live buckets;
- the victim is the first slot of the bucket named at the top of the heap.

Per entry this keeps two links and a size in arrays; buckets are objects,
but one per distinct size.
"""

from __future__ import annotations

from array import array
from collections.abc import Iterator
from heapq import heapify, heappop, heappush

from .links import Chain, SlotChains, more_slots
from .store import Store

_COMPACT_SLACK = 64


class SizeStore(Store):
    __slots__ = ("_buckets", "_chains", "_largest", "_size_of")
    name = "size"
    # Measured by `python -m cachegrid.engine.calibrate` (100,000 entries, CPython 3.11).
    entry_overhead = 152
    ttl_overhead = 20

    def _init_policy(self) -> None:
        self._buckets: dict[int, Chain] = {}
        self._chains = SlotChains()
        self._size_of = array("I", [0])
        self._largest: list[int] = []  # negated sizes: heapq is a min-heap

    def _join(self, slot: int, size: int) -> None:
        bucket = self._buckets.get(size)
        if bucket is None:
            bucket = self._buckets[size] = Chain()
            heappush(self._largest, -size)
            if len(self._largest) > 2 * len(self._buckets) + _COMPACT_SLACK:
                self._largest = [-size for size in self._buckets]
                heapify(self._largest)
        self._chains.append(bucket, slot)
        self._size_of[slot] = size

    def _leave(self, slot: int, size: int) -> None:
        bucket = self._buckets[size]
        self._chains.unlink(bucket, slot)
        if not bucket:
            del self._buckets[size]

    def _on_access(self, slot: int, key: str | None = None) -> None:
        bucket = self._buckets[self._size_of[slot]]
        if bucket.last != slot:
            self._chains.unlink(bucket, slot)
            self._chains.append(bucket, slot)

    def _on_insert(self, slot: int, size: int) -> None:
        if slot >= len(self._size_of):
            self._size_of.frombytes(bytes(4 * more_slots(len(self._size_of), slot)))
        self._join(slot, size)

    def _on_update(self, slot: int, old_size: int, size: int) -> None:
        if size == old_size:
            self._on_access(slot)
        else:
            self._leave(slot, old_size)
            self._join(slot, size)

    def _on_remove(self, slot: int, size: int) -> None:
        self._leave(slot, size)

    def _victim(self) -> int:
        while -self._largest[0] not in self._buckets:
            heappop(self._largest)
        return self._buckets[-self._largest[0]].first

    # -- snapshots (restore.py, snapshot.py) --------------------------------------

    def _snapshot_order(self) -> Iterator[int]:
        """Largest first; within a size, least recently used first."""
        next_ = self._chains.next
        for size in sorted(self._buckets, reverse=True):
            slot = self._buckets[size].first
            while slot:
                yield slot
                slot = next_[slot]
