"""The thread-safe cache: the engine's one lock, its sweeper, key listing.

``Cache`` is what the daemon (and any other user) holds. It owns a policy's
``Store`` and the only lock of the engine; every public method takes the lock
once, for the whole operation, so operations are atomic with respect to each
other. Nothing else in the engine locks.

The sweeper
-----------
``start()`` runs a daemon thread that rebuilds the expiry index when a write
asks for it (expire.py: the O(n) part runs outside the lock), and every
``cleanup_interval`` seconds calls ``sweep()``: it reclaims the expired entries earliest first from the
expiry index in batches of ``SWEEP_BATCH``, taking and releasing the lock for
each batch, until none is due. So every entry that expired before a sweep
began is gone when it ends, within one interval of its expiry, and readers
and writers wait at most one batch. ``stop()`` wakes the thread and joins it.
Reads never rely on the sweeper: an expired entry is refused on the spot.

Key listing
-----------
``keys(pattern, limit, cursor)`` pages through the keys without holding the
lock for a pass over the store: the first page copies the key list under the
lock (one C-level copy, no Python loop), and that snapshot is then filtered
outside the lock; each page's keys are checked to be still live under the lock
before they are returned. The cursor names the snapshot and a position in it,
so a key present for the whole listing is returned exactly once, and a key
added meanwhile may or may not be (as Redis SCAN). At most ``MAX_SCANS``
snapshots are kept, each for ``SCAN_IDLE_SECONDS`` after its last use; an
unknown or expired cursor raises ``InvalidCursor``.

A pattern without glob characters is a prefix (``user:`` matches
``user:123``); with ``*``, ``?`` or ``[...]`` it is a glob over the whole key
(``fnmatch.fnmatchcase`` rules, case-sensitive).
"""

from __future__ import annotations

import re
import secrets
import threading
import time
from collections import OrderedDict
from fnmatch import translate
from typing import Any, Callable, Collection, Iterable, Mapping, NamedTuple

from .errors import InvalidCursor
from .registry import DEFAULT_POLICY, store_class
from .store import (
    DEFAULT_MAX_KEY_LENGTH,
    DEFAULT_MAX_MEMORY,
    DEFAULT_MAX_SIZE,
    DEFAULT_MAX_VALUE_SIZE,
    Clock,
    Entry,
    SetResult,
)

DEFAULT_CLEANUP_INTERVAL = 60.0
SWEEP_BATCH = 1_000
MAX_SCANS = 8
SCAN_IDLE_SECONDS = 300.0
_GLOB = re.compile(r"[*?\[]")


class KeyPage(NamedTuple):
    keys: list[str]
    cursor: str | None  # None when the listing is complete


class _Scan:
    __slots__ = ("keys", "matches", "last_used")

    def __init__(self, keys: list[str], matches: Callable[[str], Any], now: float) -> None:
        self.keys = keys
        self.matches = matches
        self.last_used = now


def key_matcher(pattern: str | None) -> Callable[[str], Any]:
    """A predicate for ``pattern``: a prefix, or a glob if it has ``*?[``."""
    if not pattern:
        return lambda key: True
    if _GLOB.search(pattern):
        return re.compile(translate(pattern)).match
    return lambda key: key.startswith(pattern)


class Cache:
    """A thread-safe in-memory cache of ``bytes`` values under ``str`` keys."""

    def __init__(
        self,
        policy: str = DEFAULT_POLICY,
        *,
        max_size: int = DEFAULT_MAX_SIZE,
        max_memory: int = DEFAULT_MAX_MEMORY,
        max_key_length: int = DEFAULT_MAX_KEY_LENGTH,
        max_value_size: int = DEFAULT_MAX_VALUE_SIZE,
        cleanup_interval: float = DEFAULT_CLEANUP_INTERVAL,
        clock: Clock = time.monotonic,
    ) -> None:
        if not cleanup_interval > 0:
            raise ValueError(f"cleanup_interval must be greater than 0, not {cleanup_interval!r}")
        self._store = store_class(policy)(
            max_size=max_size,
            max_memory=max_memory,
            max_key_length=max_key_length,
            max_value_size=max_value_size,
            clock=clock,
        )
        self._lock = threading.Lock()
        self.policy = policy
        self.clock = clock
        self.cleanup_interval = cleanup_interval
        self._started_at = clock()
        self._sweeper: threading.Thread | None = None
        self._stopping = threading.Event()
        self._wake = threading.Event()  # a rebuild of the expiry index is wanted
        self._scans: OrderedDict[str, _Scan] = OrderedDict()
        # Longest single lock hold of the last sweep and of the last rebuild
        # of the expiry index, in seconds (the benchmark reports them).
        self.last_sweep_max_hold = 0.0
        self.last_rebuild_max_hold = 0.0
        self.rebuilds = 0

    # -- limits, read-only ---------------------------------------------------------

    @property
    def max_size(self) -> int:
        return self._store.max_size

    @property
    def max_memory(self) -> int:
        return self._store.max_memory

    @property
    def max_key_length(self) -> int:
        return self._store.max_key_length

    @property
    def max_value_size(self) -> int:
        return self._store.max_value_size

    def __len__(self) -> int:
        with self._lock:
            return len(self._store)

    @property
    def memory_usage(self) -> int:
        with self._lock:
            return self._store.memory_usage

    # -- reads ---------------------------------------------------------------------

    def get(self, key: str, default: bytes | None = None) -> bytes | None:
        with self._lock:
            entry = self._store.lookup(key)
        return default if entry is None else entry.value

    def get_entry(self, key: str) -> Entry | None:
        """The live entry (value, version, expires_at) or None; a read like get."""
        with self._lock:
            return self._store.lookup(key)

    def get_many(self, keys: Iterable[str]) -> dict[str, bytes]:
        with self._lock:
            found = self._store.lookup_many(keys)
        return {key: entry.value for key, entry in found.items()}

    def get_many_entries(self, keys: Iterable[str]) -> dict[str, Entry]:
        with self._lock:
            return self._store.lookup_many(keys)

    def exists(self, key: str) -> bool:
        """Whether the key is live. Counts no hit or miss, changes no recency."""
        with self._lock:
            return self._store.exists(key)

    def ttl(self, key: str) -> float | None:
        """Seconds left (None: no TTL); KeyNotFound when the key is absent."""
        with self._lock:
            return self._store.ttl(key)

    # -- writes --------------------------------------------------------------------

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
        """Store ``value``; the conditions are checked under the lock, in the
        same hold as the write (see ``Store.set``)."""
        with self._lock:
            return self._store.set(key, value, ttl, only_if_absent, only_if_present, if_version,
                                   if_match=if_match, if_none_match=if_none_match)

    def set_many(self, items: Mapping[str, bytes], ttl: float | None = None) -> int:
        with self._lock:
            return self._store.set_many(items, ttl)

    def delete(self, key: str) -> bool:
        with self._lock:
            return self._store.delete(key)

    def delete_many(self, keys: Iterable[str]) -> int:
        with self._lock:
            return self._store.delete_many(keys)

    def incr(self, key: str, by: int = 1) -> int:
        with self._lock:
            return self._store.incr(key, by)

    def decr(self, key: str, by: int = 1) -> int:
        if by.__class__ is not int:  # checked here too: -by must not hide a bool or float
            return self.incr(key, by)
        with self._lock:
            return self._store.incr(key, -by)

    def touch(self, key: str, ttl: float) -> bool:
        """Give the key a new TTL; False if it does not exist."""
        with self._lock:
            return self._store.expire(key, ttl)

    def persist(self, key: str) -> bool:
        """Remove the key's TTL; False if it does not exist."""
        with self._lock:
            return self._store.expire(key, None)

    def clear(self) -> int:
        with self._lock:
            return self._store.clear()

    # -- statistics ----------------------------------------------------------------

    def stats(self) -> dict[str, Any]:
        """One consistent snapshot of every counter."""
        with self._lock:
            snapshot = self._store.counters()
        snapshot["uptime_seconds"] = self.clock() - self._started_at
        return snapshot

    def responsive(self, timeout: float) -> bool:
        """Whether the lock can be taken within ``timeout`` seconds."""
        if not self._lock.acquire(timeout=timeout):
            return False
        self._lock.release()
        return True

    # -- expiry sweeper ------------------------------------------------------------

    def sweep(self) -> int:
        """Reclaim every entry expired by now, one batch per lock hold."""
        now = self.clock()
        total, longest = 0, 0.0
        while True:
            started = time.perf_counter()
            with self._lock:
                reclaimed = self._store.sweep(now, SWEEP_BATCH)
            longest = max(longest, time.perf_counter() - started)
            total += reclaimed
            if reclaimed < SWEEP_BATCH:
                break
        self.last_sweep_max_hold = longest
        return total

    def rebuild_expiry_index(self) -> None:
        """Drop the stale items of the expiry index, holding the lock only to
        copy the heap and to install the rebuilt one (see expire.py)."""
        started = time.perf_counter()
        with self._lock:
            index = self._store.expiry
            items = index.begin_rebuild()
        copied = time.perf_counter()
        if items is None:
            return
        rebuilt = index.current(items)
        installing = time.perf_counter()
        with self._lock:
            if self._store.expiry is index:  # not replaced by clear() meanwhile
                index.end_rebuild(rebuilt)
        self.last_rebuild_max_hold = max(copied - started, time.perf_counter() - installing)
        self.rebuilds += 1

    def start(self) -> None:
        """Start the sweeper thread (in the process that serves: threads do
        not survive fork)."""
        if self.sweeper_alive:
            return
        self._stopping.clear()
        self._wake.clear()
        self._sweeper = threading.Thread(target=self._sweep_forever, name="cachegrid-sweeper", daemon=True)
        self._sweeper.start()
        with self._lock:
            self._store.on_expiry_overgrown = self._wake.set

    def stop(self) -> None:
        """Stop the sweeper thread and wait for it to end."""
        with self._lock:
            self._store.on_expiry_overgrown = None
        self._stopping.set()
        self._wake.set()
        if self._sweeper is not None:
            self._sweeper.join()
            self._sweeper = None

    @property
    def sweeper_alive(self) -> bool:
        return self._sweeper is not None and self._sweeper.is_alive()

    def _sweep_forever(self) -> None:
        # Real time, not the injected clock: this is the thread's schedule.
        next_sweep = time.monotonic() + self.cleanup_interval
        while True:
            woken = self._wake.wait(max(0.0, next_sweep - time.monotonic()))
            if self._stopping.is_set():
                return
            if woken:
                self._wake.clear()
                self.rebuild_expiry_index()
            if time.monotonic() >= next_sweep:
                self.sweep()
                next_sweep = time.monotonic() + self.cleanup_interval

    def __enter__(self) -> Cache:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # -- key listing ---------------------------------------------------------------

    def keys(self, pattern: str | None = None, limit: int = 100, cursor: str | None = None) -> KeyPage:
        """Up to ``limit`` live keys matching ``pattern``, and the cursor of
        the next page (None when there is no more)."""
        if limit.__class__ is not int or limit < 1:
            raise ValueError(f"limit must be a whole number of at least 1, not {limit!r}")
        now = self.clock()
        with self._lock:
            if cursor is None:
                scan_id, position = secrets.token_hex(8), 0
                scan = _Scan(self._store.key_snapshot(), key_matcher(pattern), now)
            else:
                scan_id, scan, position = self._resume(cursor, now)
        page: list[str] = []
        keys, matches = scan.keys, scan.matches
        while len(page) < limit and position < len(keys):
            candidates = []
            while len(page) + len(candidates) < limit and position < len(keys):
                key = keys[position]
                position += 1
                if matches(key):
                    candidates.append(key)
            with self._lock:
                page.extend(self._store.live_keys(candidates))
        with self._lock:  # the snapshots are shared by every thread that lists
            if position >= len(keys):
                self._scans.pop(scan_id, None)
                return KeyPage(page, None)
            scan.last_used = now
            self._scans[scan_id] = scan
            self._scans.move_to_end(scan_id)
            self._forget_idle_scans(now)
        return KeyPage(page, f"{scan_id}.{position}")

    def _resume(self, cursor: str, now: float) -> tuple[str, _Scan, int]:
        scan_id, _, position_text = cursor.partition(".")
        scan = self._scans.get(scan_id)
        if scan is None or now - scan.last_used > SCAN_IDLE_SECONDS:
            raise InvalidCursor(f"unknown or expired cursor {cursor!r}: start the listing again")
        if not (position_text.isascii() and position_text.isdigit()) or int(position_text) > len(scan.keys):
            raise InvalidCursor(f"malformed cursor {cursor!r}")
        return scan_id, scan, int(position_text)

    def _forget_idle_scans(self, now: float) -> None:
        while len(self._scans) > MAX_SCANS:
            self._scans.popitem(last=False)
        for scan_id in [i for i, scan in self._scans.items() if now - scan.last_used > SCAN_IDLE_SECONDS]:
            del self._scans[scan_id]
