"""CacheGrid's cache engine: a thread-safe in-memory store with TTLs,
eviction policies, memory and item limits, statistics and key listing.

It imports nothing else of CacheGrid and can be used on its own::

    from cachegrid.engine import Cache

    with Cache("lru", max_size=1000) as cache:  # starts and stops the sweeper
        cache.set("user:1", b'{"name":"Alice"}', ttl=60)
        cache.get("user:1")
"""

from __future__ import annotations

from .cache import DEFAULT_CLEANUP_INTERVAL, Cache, KeyPage, key_matcher
from .errors import (
    CacheError,
    CacheFull,
    IntegerOverflow,
    InvalidCursor,
    InvalidKey,
    InvalidTTL,
    KeyNotFound,
    KeyTooLong,
    NotAnInteger,
    PreconditionFailed,
    ValueTooLarge,
)
from .registry import DEFAULT_POLICY, POLICIES, store_class
from .store import (
    DEFAULT_MAX_KEY_LENGTH,
    DEFAULT_MAX_MEMORY,
    DEFAULT_MAX_SIZE,
    DEFAULT_MAX_VALUE_SIZE,
    MAX_TTL,
    Entry,
    SetResult,
    Store,
)

__all__ = [
    "Cache",
    "CacheError",
    "CacheFull",
    "DEFAULT_CLEANUP_INTERVAL",
    "DEFAULT_MAX_KEY_LENGTH",
    "DEFAULT_MAX_MEMORY",
    "DEFAULT_MAX_SIZE",
    "DEFAULT_MAX_VALUE_SIZE",
    "DEFAULT_POLICY",
    "Entry",
    "IntegerOverflow",
    "InvalidCursor",
    "InvalidKey",
    "InvalidTTL",
    "KeyNotFound",
    "KeyPage",
    "KeyTooLong",
    "MAX_TTL",
    "NotAnInteger",
    "POLICIES",
    "PreconditionFailed",
    "SetResult",
    "Store",
    "ValueTooLarge",
    "key_matcher",
    "store_class",
]
