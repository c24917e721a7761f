"""The ``lfu`` policy: evict the least frequently used entry, ties by recency.

O(1) per operation, after Shah, Mitra and Matani, "An O(1) algorithm for
implementing the LFU cache eviction scheme" (2010):

- every distinct use count in the store has one ``_FrequencyNode``; the nodes
  form a doubly linked list in increasing count order, behind a sentinel
  ``_head`` (count -1), and ``_node_at`` finds a count's node;
- each node is a ``Chain`` (links.py) of the slots (slots.py) with that
  count, least recently arrived first.

A use (a read hit, or a write to an existing key) moves the slot from its
node to the node of count + 1, creating that node right after its own if
needed and unlinking a node that became empty. A new entry enters the node
of count 1. The victim is the first slot of the first node: the least used,
and among those the one that reached that count longest ago.

Decay
-----
Counts age, as Redis' ``lfu-decay-time`` ages its counters: every
``decay_time`` seconds (the ``lfu_decay_time`` setting; 0: never) every count
is halved, so a key that was hot last week and is used no more sinks to the
bottom within minutes. A count saturates at ``MAX_COUNT`` (255, as Redis'
8-bit counter): there are then at most 256 nodes, and halving is bounded work
whatever the number of entries:

- the nodes are relabelled, count c becoming c >> k after k elapsed periods,
  and two nodes that meet are merged (their chains concatenated in O(1), the
  formerly higher count last); at most 256 nodes are visited;
- no entry is touched: ``_count`` holds, per slot, the count the entry had
  when last used and the *epoch* (the number of halvings so far) of that
  moment, packed in one integer. The current count is the stored one shifted
  right by the halvings since: the label of the node the slot sits in.

The clock is read on every use to see whether a period has passed (the
store's clock, so tests move time by hand).

Per entry this keeps two links and a packed count in arrays: nothing the
garbage collector walks. Nodes are objects, but at most 256 of them.
"""

from __future__ import annotations

import time
from array import array
from collections.abc import Iterator

from .limits import DEFAULT_LIMITS, Limits
from .links import Chain, SlotChains, more_slots
from .store import Clock, Store

MAX_COUNT = 255
_COUNT_BITS = 8
DEFAULT_DECAY_TIME = 60.0  # seconds, as Redis' default lfu-decay-time of one minute


class _FrequencyNode(Chain):
    __slots__ = ("count", "next", "prev")

    def __init__(self, count: int) -> None:
        super().__init__()
        self.count = count
        self.prev: _FrequencyNode = self
        self.next: _FrequencyNode = self


class LFUStore(Store):
    __slots__ = ("_chains", "_count", "_epoch", "_head", "_next_decay", "_node_at", "decay_time")
    name = "lfu"
    # Measured by `python -m cachegrid.engine.calibrate` (100,000 entries, CPython 3.11).
    entry_overhead = 156
    ttl_overhead = 20

    def __init__(
        self, limits: Limits = DEFAULT_LIMITS, clock: Clock = time.monotonic, decay_time: float = DEFAULT_DECAY_TIME
    ) -> None:
        if decay_time.__class__ not in (int, float) or not 0 <= decay_time < float("inf"):
            raise ValueError(f"decay_time must be a number of seconds of at least 0, not {decay_time!r}")
        self.decay_time = decay_time
        super().__init__(limits, clock)

    def _init_policy(self) -> None:
        self._head = _FrequencyNode(-1)
        self._node_at: dict[int, _FrequencyNode] = {}
        self._chains = SlotChains()
        self._count = array("Q", [0])  # per slot: count | epoch << 8, as of its last use
        self._epoch = 0  # halvings so far
        self._next_decay = self.clock() + self.decay_time if self.decay_time else float("inf")

    def count_of(self, slot: int) -> int:
        """The current (decayed) use count of the entry holding ``slot``."""
        packed = self._count[slot]
        return (packed & MAX_COUNT) >> (self._epoch - (packed >> _COUNT_BITS))

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

    def _age(self) -> None:
        now = self.clock()
        if now >= self._next_decay:
            self._decay(int((now - self._next_decay) // self.decay_time) + 1)
            self._next_decay = now + self.decay_time

    def _decay(self, halvings: int) -> None:
        """Halve every count ``halvings`` times: relabel and merge the nodes."""
        self._epoch += halvings
        node_at: dict[int, _FrequencyNode] = {}
        survivor = self._head
        node = self._head.next
        while node is not self._head:
            following = node.next
            count = node.count >> halvings
            if survivor.count == count:
                self._chains.concat(survivor, node)
                survivor.next, following.prev = following, survivor
            else:
                node.count = count
                node_at[count] = survivor = node
            node = following
        self._node_at = node_at

    def _on_access(self, slot: int, key: str | None = None) -> None:
        self._age()
        count = self.count_of(slot)
        node = self._node_at[count]
        if count < MAX_COUNT:
            count += 1
            target = self._node_after(node, count)
            self._leave(slot, node)
            self._chains.append(target, slot)
        elif node.last != slot:  # saturated: only its recency changes
            self._chains.unlink(node, slot)
            self._chains.append(node, slot)
        self._count[slot] = count | self._epoch << _COUNT_BITS

    def _on_insert(self, slot: int, size: int) -> None:
        self._age()
        if slot >= len(self._count):
            self._count.frombytes(bytes(8 * more_slots(len(self._count), slot)))
        first = self._head.next
        self._chains.append(self._node_after(first if first.count == 0 else self._head, 1), slot)
        self._count[slot] = 1 | self._epoch << _COUNT_BITS

    def _on_remove(self, slot: int, size: int) -> None:
        self._leave(slot, self._node_at[self.count_of(slot)])

    def _victim(self) -> int:
        return self._head.next.first

    # -- snapshots (restore.py, snapshot.py) --------------------------------------

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
        return self.count_of(slot)

    def _restore_hint(self, slot: int, hint: int) -> None:
        """Move the new entry (count 1) to the node of its saved count, which
        records restored in order reach at the end of the node list."""
        hint = min(hint, MAX_COUNT)
        if hint <= 1:
            return
        self._leave(slot, self._node_at[1])
        node = self._head.prev
        while node.count > hint:
            node = node.prev
        target = node if node.count == hint else self._node_after(node, hint)
        self._chains.append(target, slot)
        self._count[slot] = hint | self._epoch << _COUNT_BITS
