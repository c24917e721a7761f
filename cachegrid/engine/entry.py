"""What a read hands out: one entry's value, version and expiry time.

The store does not keep ``Entry`` objects (store.py keeps each entry as one
``bytes`` blob, out of the garbage collector's way); a read builds one from
the blob, and the caller may keep it: it is a tuple, and never changes.
"""

from __future__ import annotations

from typing import NamedTuple


class Entry(NamedTuple):
    value: bytes
    version: int
    expires_at: float | None  # on the store's clock; None: no TTL

    def ttl(self, now: float) -> float | None:
        """Seconds left at ``now``, or None when the entry has no TTL."""
        return None if self.expires_at is None else self.expires_at - now
