"""CacheGrid's cache engine: a thread-safe in-memory store with TTLs,
eviction policies, memory and item limits, statistics and key listing.

It imports nothing else of CacheGrid and can be used on its own::

    from cachegrid.engine import Cache

    with Cache("lru", max_size=1000) as cache:  # starts and stops the sweeper
        cache.set("user:1", b'{"name":"Alice"}', ttl=60)
        cache.get("user:1")
"""

from __future__ import annotations

from .cache import Cache
from .changes import INVALIDATE, RESET, ChangeHook
from .entry import Entry
from .errors import (
    CacheError,
    CacheFull,
    IntegerOverflow,
    InvalidCursor,
    InvalidKey,
    InvalidLease,
    InvalidTTL,
    KeyNotFound,
    KeyTooLong,
    LeaseNotHeld,
    NotAnInteger,
    PreconditionFailed,
    TooManyLeases,
    ValueTooLarge,
)
from .leases import DEFAULT_MAX_LEASE_TIME, DEFAULT_MAX_LEASES, Grant
from .lfu import DEFAULT_DECAY_TIME as DEFAULT_LFU_DECAY_TIME
from .limits import (
    DEFAULT_MAX_KEY_LENGTH,
    DEFAULT_MAX_MEMORY,
    DEFAULT_MAX_SIZE,
    DEFAULT_MAX_VALUE_SIZE,
    INT64_MAX,
    INT64_MIN,
    MAX_TTL,
    Limits,
    check_key,
    check_stale,
    check_ttl,
    key_length,
)
from .options import PLAIN, UNCONDITIONAL, Preconditions, WriteOptions
from .registry import DEFAULT_POLICY, POLICIES, store_class
from .scan import DEFAULT_KEYS_LIMIT, DEFAULT_SCAN_COUNT, KeyPage, key_matcher
from .store import ANY, Clock, Condition, SetResult, Store
from .sweeper import DEFAULT_CLEANUP_INTERVAL

__all__ = [
    "ANY",
    "DEFAULT_CLEANUP_INTERVAL",
    "DEFAULT_KEYS_LIMIT",
    "DEFAULT_LFU_DECAY_TIME",
    "DEFAULT_MAX_KEY_LENGTH",
    # leases (leases.py)
    "DEFAULT_MAX_LEASES",
    "DEFAULT_MAX_LEASE_TIME",
    "DEFAULT_MAX_MEMORY",
    "DEFAULT_MAX_SIZE",
    "DEFAULT_MAX_VALUE_SIZE",
    "DEFAULT_POLICY",
    "DEFAULT_SCAN_COUNT",
    "INT64_MAX",
    "INT64_MIN",
    "INVALIDATE",
    "MAX_TTL",
    "PLAIN",
    "POLICIES",
    "RESET",
    "UNCONDITIONAL",
    "Cache",
    "CacheError",
    "CacheFull",
    "ChangeHook",
    "Clock",
    "Condition",
    "Entry",
    "Grant",
    "IntegerOverflow",
    "InvalidCursor",
    "InvalidKey",
    "InvalidLease",
    "InvalidTTL",
    "KeyNotFound",
    "KeyPage",
    "KeyTooLong",
    "LeaseNotHeld",
    "Limits",
    "NotAnInteger",
    "PreconditionFailed",
    "Preconditions",
    "SetResult",
    "Store",
    "TooManyLeases",
    "ValueTooLarge",
    "WriteOptions",
    "check_key",
    "check_stale",
    "check_ttl",
    "key_length",
    "key_matcher",
    "store_class",
]
