"""The ``noeviction`` policy: never evict a live entry.

When the cache is full, a write that needs room is refused with ``CacheFull``
(as Redis' ``noeviction``) once the expired entries are reclaimed. The mapping
is a plain dict and nothing else is recorded.
"""

from __future__ import annotations

from .store import Store


class NoEvictionStore(Store):
    __slots__ = ()
    name = "noeviction"
    evicts = False
    # Measured by `python -m cachegrid.engine.calibrate` (100,000 entries, CPython 3.11).
    entry_overhead = 139
    ttl_overhead = 20
