"""The ``noeviction`` policy: never evict a live entry.

When the cache is full, a write that needs room is refused with ``CacheFull``
(as Redis' ``noeviction``) once the expired entries are reclaimed. The mapping
is a plain dict and nothing else is recorded.
"""

from __future__ import annotations

from .store import Store


class NoEvictionStore(Store):
    name = "noeviction"
    evicts = False
    entry_overhead = 150
    ttl_overhead = 96
