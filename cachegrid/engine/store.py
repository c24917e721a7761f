"""The store: one mapping, its bookkeeping, and the single eviction rule.

This is the part every eviction policy shares (cachetools' ``Cache`` plays the
same role). It is *not* thread-safe: ``Cache`` in cache.py wraps it in the one
lock of the engine.

Entries
-------
``self._data`` maps each key (``str``) to an ``Entry``: the value (opaque
``bytes``), a version number drawn from a per-store counter on every write (the
daemon turns it into an ETag; compare-and-set checks it), and the time at which
the entry expires on the injected clock (``None``: no TTL). Entries are never
changed in place: a write, touch or persist stores a new ``Entry``, so a caller
may keep the one it was handed.

Expiry
------
An expired entry is never returned: every read compares ``expires_at`` with the
clock and removes the entry on the spot. Entries with a TTL are also recorded
in an ``ExpiryIndex`` (expire.py), from which the sweeper and the eviction rule
reclaim expired entries earliest first, without scanning the mapping.

Memory accounting
-----------------
Each entry is charged ``len(key as UTF-8) + len(value) + entry_overhead``, plus
``ttl_overhead`` when it has a TTL. The two overheads are per policy: the bytes
that the policy's own structures, the ``Entry`` object, the key and value
object headers and the expiry heap item cost per entry, as measured with
tracemalloc (tests/engine/test_memory.py checks them; benchmarks/engine_bench.py
prints them). ``memory_usage`` is the running sum of these charges.

The eviction rule
-----------------
Before a write that adds an entry or bytes, while the store would be over
``max_size`` entries or ``max_memory`` bytes:

1. reclaim expired entries, earliest expiry first (``ExpiryIndex.pop_due``);
2. then remove the policy's victim (``_victim``), counting an eviction.

A policy that does not evict (``evicts = False``) refuses the write with
``CacheFull`` at step 2 and nothing is touched. An entry that alone is larger
than ``max_memory`` is refused with ``ValueTooLarge`` before anything happens:
it is never stored by evicting everything else.

When a replacement needs more room than the old entry freed, the old entry is
dropped first (it is going anyway, and this way the policy can never pick the
key being written as its victim) and the new one is stored as a fresh entry.

Policies
--------
A policy subclasses ``Store`` and overrides some of these hooks:
``_new_mapping`` (the mapping class, e.g. an OrderedDict that is also the LRU
order), ``_init_policy`` (build its structures; also called by ``clear``),
``_on_access(key)`` (a read hit), ``_on_insert(key, entry)``,
``_on_update(key, old, new)`` (a replacement in place), ``_on_remove(key,
entry)`` and ``_victim()`` (the key to evict next, among live entries).
"""

from __future__ import annotations

import re
import time
from math import isfinite
from typing import Callable, Collection, Iterable, Mapping, NamedTuple

from .errors import (
    CacheFull,
    IntegerOverflow,
    InvalidKey,
    InvalidTTL,
    KeyNotFound,
    KeyTooLong,
    NotAnInteger,
    PreconditionFailed,
    ValueTooLarge,
)
from .expire import ExpiryIndex

KiB = 1024
MiB = 1024 * KiB

DEFAULT_MAX_SIZE = 10_000
DEFAULT_MAX_MEMORY = 512 * MiB
DEFAULT_MAX_KEY_LENGTH = 250  # bytes of UTF-8, as memcached
DEFAULT_MAX_VALUE_SIZE = 1 * MiB  # as memcached
MAX_TTL = 10**10  # seconds (about 317 years): keeps expiry times finite and exact

INT64_MIN = -(2**63)
INT64_MAX = 2**63 - 1
# What incr/decr accept as an integer: a JSON integer, as the daemon stores it.
_INTEGER = re.compile(rb"-?(?:0|[1-9][0-9]{0,18})")

Clock = Callable[[], float]


_new_float = float.__new__


class Entry(float):
    """One stored value: ``value`` (bytes), ``version`` and ``expires_at``.

    The entry *is* its version number: a ``float`` subclass whose numeric value
    is the version, with two slots for the rest. That saves the separate int
    object a ``version`` slot would hold: 32 bytes of the ~230 an entry costs
    beyond its key and value (versions stay exact up to 2**53 writes). Compare
    entries by ``version``, not with ``==``. Immutable by convention: the store
    replaces entries, it never changes one.
    """

    __slots__ = ("value", "expires_at")

    def __new__(cls, value: bytes, version: int, expires_at: float | None) -> Entry:
        entry = _new_float(cls, version)
        entry.value = value
        entry.expires_at = expires_at
        return entry

    @property
    def version(self) -> int:
        return int(self)

    def ttl(self, now: float) -> float | None:
        """Seconds left at ``now``, or None when the entry has no TTL."""
        return None if self.expires_at is None else self.expires_at - now

    def __repr__(self) -> str:
        return f"Entry(value={self.value!r}, version={self.version}, expires_at={self.expires_at})"


_new_tuple = tuple.__new__


class SetResult(NamedTuple):
    created: bool  # the key did not exist (or had expired) before this write
    version: int


def key_length(key: str) -> int:
    """The key's length in UTF-8 bytes, checked to be a usable key."""
    if key.__class__ is not str:
        raise InvalidKey(f"key must be a string, not {type(key).__name__}")
    if key.isascii():
        length = len(key)
    else:
        try:
            length = len(key.encode())
        except UnicodeEncodeError:
            raise InvalidKey("key is not valid Unicode (it contains a lone surrogate)") from None
    if length == 0:
        raise InvalidKey("key is empty")
    return length


def _stored_key_length(key: str) -> int:
    return len(key) if key.isascii() else len(key.encode())


def check_ttl(ttl: float) -> float:
    """``ttl`` if it is a usable number of seconds, else ``InvalidTTL``."""
    if ttl.__class__ not in (int, float):
        raise InvalidTTL(f"ttl must be a number of seconds, not {type(ttl).__name__}")
    if not (isfinite(ttl) and 0 < ttl <= MAX_TTL):
        raise InvalidTTL(f"ttl must be greater than 0 and at most {MAX_TTL} seconds, not {ttl!r}")
    return ttl


class Store:
    """The shared base of every policy. Not thread-safe (see ``Cache``)."""

    name = "base"
    # Whether a full store makes room by evicting (False: refuse with CacheFull).
    evicts = True
    # Bytes charged per entry beyond its key and value, and per entry with a
    # TTL on top of that; measured per policy (see the module docstring).
    entry_overhead = 0
    ttl_overhead = 0

    def __init__(
        self,
        *,
        max_size: int = DEFAULT_MAX_SIZE,
        max_memory: int = DEFAULT_MAX_MEMORY,
        max_key_length: int = DEFAULT_MAX_KEY_LENGTH,
        max_value_size: int = DEFAULT_MAX_VALUE_SIZE,
        clock: Clock = time.monotonic,
    ) -> None:
        for setting, value in (
            ("max_size", max_size),
            ("max_memory", max_memory),
            ("max_key_length", max_key_length),
            ("max_value_size", max_value_size),
        ):
            if value.__class__ is not int or value < 1:
                raise ValueError(f"{setting} must be a whole number of at least 1, not {value!r}")
        self.max_size = max_size
        self.max_memory = max_memory
        self.max_key_length = max_key_length
        self.max_value_size = max_value_size
        self.clock = clock
        self._version = 0
        # Statistics: every counter is updated here, in the store, and only here.
        self.hits = self.misses = self.sets = self.deletes = 0
        self.evictions = self.expired = self.rejected_too_large = self.rejected_full = 0
        self._reset()

    # Set by Cache while its sweeper runs: rebuilds of the expiry index are
    # then handed to the sweeper instead of done inside a write.
    on_expiry_overgrown: Callable[[], None] | None = None

    def _reset(self) -> None:
        self._data = self._new_mapping()
        self._expiry = ExpiryIndex(self._data, self._expiry_overgrown)
        self._memory = 0
        self._with_ttl = 0  # entries that have a TTL
        self._init_policy()

    def _expiry_overgrown(self) -> bool:
        if self.on_expiry_overgrown is None:
            return False
        self.on_expiry_overgrown()
        return True

    @property
    def expiry(self) -> ExpiryIndex:
        return self._expiry

    # -- policy hooks (defaults: a policy that records nothing) ---------------

    def _new_mapping(self) -> dict[str, Entry]:
        return {}

    def _init_policy(self) -> None:
        pass

    def _on_access(self, key: str) -> None:
        pass

    def _on_insert(self, key: str, entry: Entry) -> None:
        pass

    def _on_update(self, key: str, old: Entry, new: Entry) -> None:
        self._on_access(key)

    def _on_remove(self, key: str, entry: Entry) -> None:
        pass

    def _victim(self) -> str:
        raise NotImplementedError

    # -- size bookkeeping ------------------------------------------------------

    def __len__(self) -> int:
        """Entries held, including expired ones not reclaimed yet."""
        return len(self._data)

    @property
    def memory_usage(self) -> int:
        return self._memory

    def _cost(self, key_length: int, value_length: int, has_ttl: bool) -> int:
        return key_length + value_length + self.entry_overhead + (self.ttl_overhead if has_ttl else 0)

    def _remove(self, key: str, entry: Entry) -> None:
        del self._data[key]
        has_ttl = entry.expires_at is not None
        self._memory -= self._cost(_stored_key_length(key), len(entry.value), has_ttl)
        if has_ttl:
            self._with_ttl -= 1
        self._on_remove(key, entry)

    def _fits(self, extra_entries: int, extra_bytes: int) -> bool:
        return len(self._data) + extra_entries <= self.max_size and self._memory + extra_bytes <= self.max_memory

    def _make_room(self, extra_entries: int, extra_bytes: int, now: float) -> None:
        """The eviction rule: reclaim expired entries, then evict, until
        ``extra_entries`` more entries and ``extra_bytes`` more bytes fit."""
        data = self._data
        while not self._fits(extra_entries, extra_bytes):
            key = self._expiry.pop_due(now)
            if key is None:
                break
            self._remove(key, data[key])
            self.expired += 1
        while not self._fits(extra_entries, extra_bytes):
            if not self.evicts:
                self.rejected_full += 1
                raise CacheFull(
                    f"the cache is full ({len(data)} of {self.max_size} entries, "
                    f"{self._memory} of {self.max_memory} bytes) and the policy is {self.name}"
                )
            key = self._victim()
            self._remove(key, data[key])
            self.evictions += 1

    # -- reads -------------------------------------------------------------------

    def _live(self, key: str, now: float) -> Entry | None:
        """The entry under ``key`` if it has not expired at ``now`` (an expired
        one is removed on the spot). Counts nothing and changes no recency."""
        entry = self._data.get(key)
        if entry is None:
            return None
        expires_at = entry.expires_at
        if expires_at is not None and expires_at <= now:
            self._remove(key, entry)
            self.expired += 1
            return None
        return entry

    def lookup(self, key: str) -> Entry | None:
        """A read: the live entry (counting a hit and recording the access) or
        None (counting a miss)."""
        entry = self._data.get(key)
        if entry is not None:
            expires_at = entry.expires_at
            if expires_at is None or expires_at > self.clock():
                self._on_access(key)
                self.hits += 1
                return entry
            self._remove(key, entry)
            self.expired += 1
        self.misses += 1
        return None

    def lookup_many(self, keys: Iterable[str]) -> dict[str, Entry]:
        found = {}
        for key in keys:
            entry = self.lookup(key)
            if entry is not None:
                found[key] = entry
        return found

    def exists(self, key: str) -> bool:
        return self._live(key, self.clock()) is not None

    def ttl(self, key: str) -> float | None:
        """Seconds the key has left, None if it has no TTL; KeyNotFound if absent."""
        now = self.clock()
        entry = self._live(key, now)
        if entry is None:
            raise KeyNotFound(key)
        return entry.ttl(now)

    # -- writes ------------------------------------------------------------------

    def _check_entry(self, key: str, value: bytes, has_ttl: bool) -> tuple[int, int]:
        """Validate a key and value; return (key length, cost of the entry)."""
        length = len(key) if key.__class__ is str and key.isascii() else key_length(key)
        if not 0 < length <= self.max_key_length:
            raise KeyTooLong(length, self.max_key_length) if length else InvalidKey("key is empty")
        if value.__class__ is not bytes:
            raise TypeError(f"value must be bytes, not {type(value).__name__}")
        size = len(value)
        if size > self.max_value_size:
            self.rejected_too_large += 1
            raise ValueTooLarge(size, self.max_value_size)
        cost = length + size + self.entry_overhead
        if has_ttl:
            cost += self.ttl_overhead
        if cost > self.max_memory:
            self.rejected_too_large += 1
            raise ValueTooLarge(cost, self.max_memory, "max_memory")
        return length, cost

    def _write(
        self,
        key: str,
        length: int,
        cost: int,
        value: bytes,
        expires_at: float | None,
        old: Entry | None,
        now: float,
        version: int | None = None,
    ) -> Entry:
        """Store ``value`` under ``key`` in place of ``old`` (the live entry,
        or None); the key and value were checked by ``_check_entry``."""
        if old is not None:
            old_cost = self._cost(length, len(old.value), old.expires_at is not None)
            if self._memory + cost - old_cost > self.max_memory:
                if self.evicts:
                    self._remove(key, old)
                    old = None
                else:
                    self._make_room(0, cost - old_cost, now)
        if old is None and (len(self._data) >= self.max_size or self._memory + cost > self.max_memory):
            self._make_room(1, cost, now)
        if version is None:  # drawn only once the write can no longer fail
            self._version += 1
            version = self._version
        entry = Entry(value, version, expires_at)
        if old is None:
            self._data[key] = entry
            self._memory += cost
            self._on_insert(key, entry)
            if expires_at is not None:
                self._with_ttl += 1
                self._expiry.add(expires_at, key, self._with_ttl)
        else:
            self._data[key] = entry
            self._memory += cost - old_cost
            self._on_update(key, old, entry)
            if expires_at != old.expires_at:
                if old.expires_at is not None:
                    self._with_ttl -= 1
                if expires_at is not None:
                    self._with_ttl += 1
                    self._expiry.add(expires_at, key, self._with_ttl)
        return entry

    def set(
        self,
        key: str,
        value: bytes,
        ttl: float | None = None,
        only_if_absent: bool = False,
        only_if_present: bool = False,
        if_version: int | None = None,
        *,
        if_match: Collection[int] | None = None,
        if_none_match: Collection[int] | None = None,
    ) -> SetResult:
        """Store ``value`` under ``key``, optionally expiring after ``ttl``
        seconds. Conditions (each raises PreconditionFailed when it fails, and
        nothing is written): ``only_if_absent`` (NX), ``only_if_present`` (XX),
        ``if_version`` (compare-and-set against the entry's current version),
        ``if_match`` (the entry exists at one of these versions) and
        ``if_none_match`` (the entry is absent or at none of these versions)."""
        data = self._data
        conditional = (only_if_absent or only_if_present or if_version is not None or if_match is not None
                       or if_none_match is not None)
        if (
            ttl is None
            and not conditional
            and key.__class__ is str
            and key.isascii()
            and 0 < len(key) <= self.max_key_length
            and value.__class__ is bytes
            and len(value) <= self.max_value_size
        ):
            # The common case, inlined because it is the hot path: a plain
            # write of a valid entry without TTL, over none or an entry without
            # TTL, that fits without making room. _write is the general case.
            old = data.get(key)
            overhead = self.entry_overhead
            cost = len(key) + len(value) + overhead
            if old is None:
                if len(data) < self.max_size and self._memory + cost <= self.max_memory:
                    self._version += 1
                    entry = _new_float(Entry, self._version)
                    entry.value, entry.expires_at = value, None
                    data[key] = entry
                    self._memory += cost
                    self._on_insert(key, entry)
                    self.sets += 1
                    return _new_tuple(SetResult, (True, self._version))
            elif old.expires_at is None:
                growth = cost - len(key) - len(old.value) - overhead
                if self._memory + growth <= self.max_memory:
                    self._version += 1
                    entry = _new_float(Entry, self._version)
                    entry.value, entry.expires_at = value, None
                    data[key] = entry
                    self._memory += growth
                    self._on_update(key, old, entry)
                    self.sets += 1
                    return _new_tuple(SetResult, (False, self._version))
        now = self.clock()
        expires_at = None if ttl is None else now + check_ttl(ttl)
        length, cost = self._check_entry(key, value, expires_at is not None)
        old = self._live(key, now)
        if conditional:
            self._check_condition(key, old, only_if_absent, only_if_present, if_version, if_match, if_none_match)
        entry = self._write(key, length, cost, value, expires_at, old, now)
        self.sets += 1
        return _new_tuple(SetResult, (old is None, int(entry)))  # NamedTuple's __new__ is slow

    @staticmethod
    def _check_condition(
        key: str, old: Entry | None, only_if_absent: bool, only_if_present: bool, if_version: int | None,
        if_match: Collection[int] | None = None, if_none_match: Collection[int] | None = None,
    ) -> None:
        if old is None:
            if only_if_present or if_version is not None or if_match is not None:
                raise PreconditionFailed(f"key {key!r} does not exist")
            return
        version = old.version
        if only_if_absent:
            raise PreconditionFailed(f"key {key!r} already exists")
        if if_version is not None and version != if_version:
            raise PreconditionFailed(f"key {key!r} is at version {version}, not {if_version}")
        if if_match is not None and version not in if_match:
            raise PreconditionFailed(f"key {key!r} is at version {version}, none of the versions required")
        if if_none_match is not None and version in if_none_match:
            raise PreconditionFailed(f"key {key!r} is still at version {version}, one of the versions excluded")

    def set_many(self, items: Mapping[str, bytes], ttl: float | None = None) -> int:
        """Store every item, or none of them: every key and value is checked
        first, and a policy that does not evict refuses the whole batch if it
        does not fit. Returns how many were stored."""
        now = self.clock()
        expires_at = None if ttl is None else now + check_ttl(ttl)
        checked = []
        for key, value in items.items():
            try:
                length, cost = self._check_entry(key, value, expires_at is not None)
            except (InvalidKey, ValueTooLarge, TypeError) as error:
                error.key = key  # type: ignore[attr-defined]
                raise
            checked.append((key, length, cost, value))
        if not self.evicts:
            new_entries = extra_bytes = 0
            for key, length, cost, _ in checked:
                old = self._live(key, now)
                if old is None:
                    new_entries += 1
                    extra_bytes += cost
                else:
                    extra_bytes += cost - self._cost(length, len(old.value), old.expires_at is not None)
            self._make_room(new_entries, extra_bytes, now)
        for key, length, cost, value in checked:
            self._write(key, length, cost, value, expires_at, self._live(key, now), now)
        self.sets += len(checked)
        return len(checked)

    def incr(self, key: str, by: int = 1) -> int:
        """Add ``by`` to the integer stored under ``key`` (0 when absent, as
        Redis INCR) and return the result; the TTL is kept."""
        if by.__class__ is not int:
            raise NotAnInteger(f"the increment must be an integer, not {type(by).__name__}")
        now = self.clock()
        old = self._live(key, now)
        current, expires_at = 0, None
        if old is not None:
            if not _INTEGER.fullmatch(old.value):
                raise NotAnInteger(f"the value of {key!r} is not an integer in the signed 64-bit range")
            current, expires_at = int(old.value), old.expires_at
        result = current + by
        if not INT64_MIN <= result <= INT64_MAX:
            raise IntegerOverflow(f"incrementing {key!r} by {by} would overflow 64 bits")
        value = b"%d" % result
        length, cost = self._check_entry(key, value, expires_at is not None)
        self._write(key, length, cost, value, expires_at, old, now)
        self.sets += 1
        return result

    def expire(self, key: str, ttl: float | None) -> bool:
        """Give a live key a new TTL (None: no TTL any more). Its value and
        version stay. False when the key does not exist."""
        now = self.clock()
        expires_at = None if ttl is None else now + check_ttl(ttl)
        old = self._live(key, now)
        if old is None:
            return False
        length, cost = self._check_entry(key, old.value, expires_at is not None)
        self._write(key, length, cost, old.value, expires_at, old, now, old.version)
        return True

    def delete(self, key: str) -> bool:
        entry = self._live(key, self.clock())
        if entry is None:
            return False
        self._remove(key, entry)
        self.deletes += 1
        return True

    def delete_many(self, keys: Iterable[str]) -> int:
        return sum(self.delete(key) for key in keys)

    def clear(self) -> int:
        """Remove every entry; return how many live entries were removed."""
        self.sweep(self.clock(), len(self._data))
        removed = len(self._data)
        self._reset()
        return removed

    # -- maintenance -------------------------------------------------------------

    def sweep(self, now: float, limit: int) -> int:
        """Reclaim at most ``limit`` entries expired at ``now``; return how many."""
        data = self._data
        reclaimed = 0
        while reclaimed < limit:
            key = self._expiry.pop_due(now)
            if key is None:
                break
            self._remove(key, data[key])
            reclaimed += 1
        self.expired += reclaimed
        return reclaimed

    def key_snapshot(self) -> list[str]:
        """Every key held now, in the policy's order (a copy)."""
        return list(self._data)

    def live_keys(self, keys: Iterable[str]) -> list[str]:
        """Those of ``keys`` that are held and not expired."""
        now = self.clock()
        data = self._data
        result = []
        for key in keys:
            entry = data.get(key)
            if entry is not None and (entry.expires_at is None or entry.expires_at > now):
                result.append(key)
        return result

    def counters(self) -> dict[str, int | float | str]:
        """A snapshot of the statistics the store keeps."""
        lookups = self.hits + self.misses
        return {
            "hits": self.hits,
            "misses": self.misses,
            "sets": self.sets,
            "deletes": self.deletes,
            "evictions": self.evictions,
            "expired": self.expired,
            "rejected_too_large": self.rejected_too_large,
            "rejected_full": self.rejected_full,
            "current_size": len(self._data),
            "max_size": self.max_size,
            "memory_usage_bytes": self._memory,
            "max_memory_bytes": self.max_memory,
            "hit_ratio": self.hits / lookups if lookups else 0.0,
            "policy": self.name,
        }
