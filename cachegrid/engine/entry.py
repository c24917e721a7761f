"""What a read hands out: one entry's value, version, expiry and metadata.

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
    binary: bool = False  # the value is raw bytes, not JSON
    # When the entry turns stale (store clock): from then until expires_at it
    # may still be served, marked stale. None: no stale window.
    fresh_until: float | None = None
    # (tag id, generation) pairs, opaque to the store.
    tag_refs: tuple[tuple[int, int], ...] = ()

    def ttl(self, now: float) -> float | None:
        """Seconds left at ``now``, or None when the entry has no TTL."""
        return None if self.expires_at is None else self.expires_at - now

    def is_stale(self, now: float) -> bool:
        """Whether the entry is past its TTL and inside its stale window."""
        return self.fresh_until is not None and now >= self.fresh_until


class Extra(NamedTuple):
    """What a snapshot record keeps of an entry beyond its key, value, expiry
    and policy hint (None in a record when the entry has none of it)."""

    binary: bool = False
    fresh_until: float | None = None  # wall clock (time.time()) in a record
