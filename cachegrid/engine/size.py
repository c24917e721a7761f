"""The ``size`` policy: evict the largest entry first, ties by recency.

An entry's size is its key's UTF-8 length plus its value's length. Entries are
grouped in one bucket per distinct size (an ``OrderedDict`` of keys in recency
order, least recently used first), and a max-heap of the sizes that have a
bucket says which bucket is the largest:

- a use moves the key to the end of its bucket: O(1);
- a new key joins its size's bucket, pushing the size on the heap when the
  bucket is new: O(log n) at worst;
- a key that leaves its bucket (delete, replacement with another size) empties
  the bucket at worst; the bucket is deleted and its heap item goes stale, to
  be dropped when it reaches the top (lazy deletion, as in expire.py), and the
  heap is rebuilt if stale items outnumber live buckets;
- the victim is the first key of the bucket named at the top of the heap.
"""

from __future__ import annotations

from collections import OrderedDict
from heapq import heapify, heappop, heappush

from .store import Entry, Store

_COMPACT_SLACK = 64


class SizeStore(Store):
    name = "size"
    # Measured by `python -m cachegrid.engine.calibrate` (100,000 entries, CPython 3.11):
    # 306 bytes when entry sizes are below 257 (small ints are shared), 338 above.
    entry_overhead = 322
    ttl_overhead = 88

    def _init_policy(self) -> None:
        self._buckets: dict[int, OrderedDict[str, None]] = {}
        self._size_of: dict[str, int] = {}
        self._largest: list[int] = []  # negated sizes: heapq is a min-heap

    @staticmethod
    def _size(key: str, entry: Entry) -> int:
        return (len(key) if key.isascii() else len(key.encode())) + len(entry.value)

    def _join(self, key: str, size: int) -> None:
        bucket = self._buckets.get(size)
        if bucket is None:
            bucket = self._buckets[size] = OrderedDict()
            heappush(self._largest, -size)
            if len(self._largest) > 2 * len(self._buckets) + _COMPACT_SLACK:
                self._largest = [-size for size in self._buckets]
                heapify(self._largest)
        bucket[key] = None
        self._size_of[key] = size

    def _leave(self, key: str) -> None:
        size = self._size_of.pop(key)
        bucket = self._buckets[size]
        del bucket[key]
        if not bucket:
            del self._buckets[size]

    def _on_access(self, key: str) -> None:
        self._buckets[self._size_of[key]].move_to_end(key)

    def _on_insert(self, key: str, entry: Entry) -> None:
        self._join(key, self._size(key, entry))

    def _on_update(self, key: str, old: Entry, new: Entry) -> None:
        size = self._size(key, new)
        if size == self._size_of[key]:
            self._on_access(key)
        else:
            self._leave(key)
            self._join(key, size)

    def _on_remove(self, key: str, entry: Entry) -> None:
        self._leave(key)

    def _victim(self) -> str:
        while -self._largest[0] not in self._buckets:
            heappop(self._largest)
        return next(iter(self._buckets[-self._largest[0]]))
