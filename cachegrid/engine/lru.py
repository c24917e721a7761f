"""The ``lru`` policy: evict the least recently used entry (the default).

The recency order is one linked list of slots (links.py): a read hit or a
replacement moves the entry's slot to the end, a new entry is appended there,
and the victim is the first slot. Two arrays of machine integers, 8 bytes per
entry and nothing for the garbage collector to walk.
"""

from __future__ import annotations

from collections.abc import Iterator

from .links import SlotList
from .store import Store


class LRUStore(Store):
    __slots__ = ("_on_access", "_on_update", "_order")
    name = "lru"
    # Measured by `python -m cachegrid.engine.calibrate` (100,000 entries, CPython 3.11).
    entry_overhead = 147
    ttl_overhead = 20

    def _init_policy(self) -> None:
        self._order = SlotList()
        # The hooks of the hottest paths, bound straight to the list's method.
        self._on_access = self._on_update = self._order.move_to_end  # type: ignore[method-assign, assignment]

    def _on_insert(self, slot: int, size: int) -> None:
        self._order.append(slot)

    def _on_remove(self, slot: int, size: int) -> None:
        self._order.unlink(slot)

    def _victim(self) -> int:
        return self._order.first()

    # -- snapshots (restore.py, snapshot.py) --------------------------------------

    def _snapshot_order(self) -> Iterator[int]:
        """The recency list, least recently used first."""
        next_ = self._order.next
        slot = next_[0]
        while slot:
            yield slot
            slot = next_[slot]
