"""The ``lfu`` policy: evict the least frequently used entry, ties by recency.

O(1) per operation, after Shah, Mitra and Matani, "An O(1) algorithm for
implementing the LFU cache eviction scheme" (2010):

- every distinct use count in the store has one ``_FrequencyNode``; the nodes
  form a doubly linked list in increasing count order, behind a sentinel
  ``_head`` (count 0), and ``_node_at`` finds a count's node;
- each node is a ``Chain`` (links.py) of the slots (store.py) with that
  count, least recently arrived first; ``_count`` is each slot's use count.

A use (a read hit, or a write to an existing key) moves the slot from its
node to the node of count + 1, creating that node right after its own if
needed and unlinking a node that became empty. A new entry enters the node
of count 1. The victim is the first slot of the first node: the least used,
and among those the one that reached that count longest ago. Counts never
decay: an entry that was hot once stays hard to evict (Redis' LFU decays
counts over time; this one does not).

Per entry this keeps two links and a count in arrays: nothing the garbage
collector walks. Nodes are objects, but one per distinct count.
"""

from __future__ import annotations

from typing import Iterator

from array import array

from .links import Chain, SlotChains
from .store import Store


class _FrequencyNode(Chain):
    __slots__ = ("count", "prev", "next")

    def __init__(self, count: int) -> None:
        super().__init__()
        self.count = count
        self.prev: _FrequencyNode = self
        self.next: _FrequencyNode = self


class LFUStore(Store):
    name = "lfu"
    # Measured by `python -m cachegrid.engine.calibrate` (100,000 entries, CPython 3.11).
    entry_overhead = 199
    ttl_overhead = 12

    def _init_policy(self) -> None:
        self._head = _FrequencyNode(0)
        self._node_at: dict[int, _FrequencyNode] = {}
        self._chains = SlotChains()
        self._count = array("Q", [0])

    def _node_after(self, node: _FrequencyNode, count: int) -> _FrequencyNode:
        """The node for ``count``, which belongs right after ``node``."""
        following = node.next
        if following.count == count:
            return following
        new = self._node_at[count] = _FrequencyNode(count)
        new.prev, new.next = node, following
        node.next = following.prev = new
        return new

    def _leave(self, slot: int, node: _FrequencyNode) -> None:
        self._chains.unlink(node, slot)
        if not node:
            node.prev.next, node.next.prev = node.next, node.prev
            del self._node_at[node.count]

    def _on_access(self, slot: int) -> None:
        count = self._count[slot]
        node = self._node_at[count]
        target = self._node_after(node, count + 1)
        self._leave(slot, node)
        self._chains.append(target, slot)
        self._count[slot] = count + 1

    def _on_insert(self, slot: int, size: int) -> None:
        if slot >= len(self._count):
            self._count.frombytes(bytes(8 * (max(slot + 1, 2 * len(self._count)) - len(self._count))))
        self._chains.append(self._node_after(self._head, 1), slot)
        self._count[slot] = 1

    def _on_remove(self, slot: int, size: int) -> None:
        self._leave(slot, self._node_at[self._count[slot]])

    def _victim(self) -> int:
        return self._head.next.first

    # -- snapshots (store.py, snapshot.py) ----------------------------------------

    def _snapshot_order(self) -> Iterator[int]:
        """Least used first; within a count, the one that reached it first."""
        next_ = self._chains.next
        node = self._head.next
        while node is not self._head:
            slot = node.first
            while slot:
                yield slot
                slot = next_[slot]
            node = node.next

    def _snapshot_hint(self, slot: int) -> int:
        return self._count[slot]

    def _restore_hint(self, slot: int, hint: int) -> None:
        """Move the new entry (count 1) to the node of its saved count, which
        records restored in order reach at the end of the node list."""
        if hint <= 1:
            return
        self._leave(slot, self._node_at[1])
        node = self._head.prev
        while node.count > hint:
            node = node.prev
        target = node if node.count == hint else self._node_after(node, hint)
        self._chains.append(target, slot)
        self._count[slot] = hint
