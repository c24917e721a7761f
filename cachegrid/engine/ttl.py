"""The ``ttl`` policy: evict the entry that expires soonest.

Entries with a TTL go first, earliest expiry first: the victim is the top of
the store's expiry index (expire.py), which the store keeps anyway for the
sweeper, so this policy adds no structure of its own. Entries without a TTL
go only when none with a TTL is left, least recently used first (the LRU
order of ``LRUStore``).
"""

from __future__ import annotations

from .lru import LRUStore


class TTLStore(LRUStore):
    __slots__ = ()
    name = "ttl"

    def _victim(self) -> int:
        slot = self._expiry.peek()
        return slot if slot is not None else self._order.first()
