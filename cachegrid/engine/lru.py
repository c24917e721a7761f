"""The ``lru`` policy: evict the least recently used entry (the default).

The mapping itself is an ``OrderedDict`` kept in recency order: a read hit or a
replacement moves the key to the end (``move_to_end``, O(1) in C), a new key is
appended there, and the victim is the first key. No structure beside the
mapping, so this is also the cheapest policy in memory.
"""

from __future__ import annotations

from collections import OrderedDict

from .store import Entry, Store


class LRUStore(Store):
    name = "lru"
    # Measured by `python -m cachegrid.engine.calibrate` (100,000 entries, CPython 3.11).
    entry_overhead = 230
    ttl_overhead = 88

    def _new_mapping(self) -> OrderedDict[str, Entry]:
        return OrderedDict()

    def _init_policy(self) -> None:
        # The hook of the hottest path, bound straight to the C method.
        self._on_access = self._data.move_to_end  # type: ignore[method-assign]

    def _on_update(self, key: str, old: Entry, new: Entry) -> None:
        self._data.move_to_end(key)

    def _victim(self) -> str:
        return next(iter(self._data))
