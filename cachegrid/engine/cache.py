"""The thread-safe cache: the engine's one lock around a policy's store.

``Cache`` is what the daemon (and any other user) holds. It owns a policy's
``Store`` and the only lock of the engine; every public method takes the lock
once, for the whole operation, so operations are atomic with respect to each
other. Nothing else in the engine locks, except the sweeper thread
(sweeper.py) and key listing (scan.py), which take the same lock for bounded
slices of their work.

No call holds the lock for O(n) work: reads and writes are O(1) (O(log n)
with a TTL), invalidating a tag is O(1) (tags.py), ``keys()`` and
``delete_page()`` examine at most ``scan_count`` slots, and
``clear()`` swaps in an empty store under the lock and frees the old entries
in slices without it.
"""

from __future__ import annotations

import dataclasses
import os
import threading
import time
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping
from typing import Any

from .changes import INVALIDATE, RESET, ChangeHook
from .entry import Entry
from .errors import TooManyLeases
from .leases import DEFAULT_MAX_LEASE_TIME, DEFAULT_MAX_LEASES, Grant, Leases, check_lease_time
from .limits import Limits, LimitsView, check_key
from .options import PLAIN, UNCONDITIONAL, Preconditions, WriteOptions
from .registry import DEFAULT_POLICY, store_class
from .scan import DEFAULT_KEYS_LIMIT, DEFAULT_SCAN_COUNT, KeyPage, key_matcher, scan_page, start_of
from .store import Clock, Condition, SetResult, Store
from .sweeper import DEFAULT_CLEANUP_INTERVAL, Sweeper
from .tags import TagLimits, check_tag, check_tags

# Keys one lock hold of a delete by pattern removes at most: a removal costs
# a few microseconds on a small server, so a slice stays near a millisecond.
DELETE_BATCH = 256


class Cache(LimitsView):
    """A thread-safe in-memory cache of ``bytes`` values under ``str`` keys.

    ``Cache("lru", max_size=..., max_memory=...)`` or ``Cache("lru",
    Limits(...))``: the limits are one value (``Limits``), and keyword limits
    override its fields. ``policy_options``: the policy's own settings
    (``lfu``'s ``{"decay_time": 60}``)."""

    def __init__(
        self,
        policy: str = DEFAULT_POLICY,
        limits: Limits | None = None,
        *,
        cleanup_interval: float = DEFAULT_CLEANUP_INTERVAL,
        clock: Clock = time.monotonic,
        scan_count: int = DEFAULT_SCAN_COUNT,
        policy_options: Mapping[str, Any] | None = None,
        tag_limits: TagLimits | None = None,
        max_leases: int = DEFAULT_MAX_LEASES,
        max_lease_time: float = DEFAULT_MAX_LEASE_TIME,
        **limit_overrides: int,
    ) -> None:
        limits = dataclasses.replace(limits or Limits(), **limit_overrides)
        if scan_count.__class__ is not int or scan_count < 1:
            raise ValueError(f"scan_count must be a whole number of at least 1, not {scan_count!r}")
        # Settings of one policy only (lfu's decay_time), handed to its store.
        self._store = store_class(policy)(limits, clock, **(policy_options or {}))
        self.tag_limits = tag_limits or TagLimits()
        self._store.tags.limits = self.tag_limits
        self._lock = threading.Lock()
        self._leases = Leases(clock, max_leases, max_lease_time)  # leases.py: under the same lock
        self._sweeper = Sweeper(self._lock, self._store, clock, cleanup_interval)
        self.policy = policy
        self.limits = limits
        self.clock = clock
        self.cleanup_interval = cleanup_interval
        self.scan_count = scan_count  # slots one keys() call examines at most
        self._started_at = clock()

    # -- limits, read-only ---------------------------------------------------------

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
            value = self._store.get(key)
        return default if value is None else value

    def get_entry(self, key: str) -> Entry | None:
        """The live entry (value, version, expires_at, ...) or None; a read
        like get. A stale entry (``Entry.is_stale``) is counted as such."""
        with self._lock:
            entry = self._store.get_entry(key)
            if entry is not None and entry.fresh_until is not None and entry.is_stale(self.clock()):
                self._leases.stale_hits += 1
            return entry

    def peek_entry(self, key: str) -> Entry | None:
        """The live entry or None, without using it: counts no hit or miss
        and leaves the key's place in the eviction order as it was (what a
        monitoring page may read without changing what it monitors)."""
        with self._lock:
            return self._store.peek_entry(key)

    def get_many(self, keys: Iterable[str]) -> dict[str, bytes]:
        with self._lock:
            return self._store.get_many(keys)

    def get_many_entries(self, keys: Iterable[str]) -> dict[str, Entry]:
        with self._lock:
            return self._store.get_many(keys, entries=True)

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
        *,
        if_match: Condition = None,
        if_none_match: Condition = None,
        tags: Iterable[str] | None = None,
        binary: bool = False,
        stale: float | None = None,
    ) -> SetResult:
        """Store ``value``; ``if_match``/``if_none_match`` are HTTP's
        preconditions (``ANY`` or a collection of versions), checked in the
        same lock hold (store.py); PreconditionFailed when one fails.
        ``tags``: names the entry is grouped under (tags.py), replacing the
        tags of the entry it replaces; ``invalidate_tags`` makes it a miss.
        ``binary``: the value is raw bytes, not JSON; ``stale``: seconds past
        the TTL during which it is kept and served marked stale (needs a ttl).
        ``write`` is the same with these as typed values (options.py)."""
        if tags is None and not binary and stale is None:  # the plain set: no option values to build
            with self._lock:
                return self._store.set(key, value, ttl, if_match, if_none_match)
        return self.write(key, value, ttl, WriteOptions(binary, stale, tags), Preconditions(if_match, if_none_match))

    def write(
        self,
        key: str,
        value: bytes,
        ttl: float | None = None,
        options: WriteOptions = PLAIN,
        conditions: Preconditions = UNCONDITIONAL,
        lease: str | None = None,
    ) -> SetResult:
        """``set`` with its options and conditions as typed values (the
        daemon's path); ``lease``: the token of the lease this write ends
        (``set_leased``). ``options.binary_keys`` has no meaning here."""
        names = () if options.tags is None else check_tags(options.tags, self.tag_limits)
        if_match, if_none_match = conditions
        binary, stale, original = options.binary, options.stale, options.original_size
        with self._lock:
            if lease is not None:
                self._leases.check(key, lease)
            if names:
                result = self._store.set_tagged(
                    key,
                    value,
                    ttl,
                    names,
                    if_match=if_match,
                    if_none_match=if_none_match,
                    binary=binary,
                    stale=stale,
                    original_size=original,
                )
            else:
                result = self._store.set(
                    key, value, ttl, if_match, if_none_match, binary=binary, stale=stale, original_size=original
                )
            if lease is not None:
                self._leases.release(key, lease, filled=True)
            return result

    def set_many(
        self,
        items: Mapping[str, bytes],
        ttl: float | None = None,
        tags: Iterable[str] | None = None,
        *,
        binary: bool = False,
        stale: float | None = None,
        binary_keys: Collection[str] = (),
    ) -> int:
        """``set`` of every item, or of none (``Store.set_many``); ``tags``,
        ``binary`` and ``stale`` as in ``set``, the same for every item;
        ``binary_keys``: the items that are binary in a batch of both kinds."""
        return self.write_many(items, ttl, WriteOptions(binary, stale, tags, binary_keys))

    def write_many(self, items: Mapping[str, bytes], ttl: float | None = None, options: WriteOptions = PLAIN) -> int:
        """``set_many`` with its options as one typed value (the daemon's path)."""
        names = () if options.tags is None else check_tags(options.tags, self.tag_limits)
        binary, stale, binary_keys = options.binary, options.stale, options.binary_keys
        compressed = options.compressed
        with self._lock:
            if names and items:
                return self._store.set_many_tagged(
                    items, ttl, names, binary=binary, stale=stale, binary_keys=binary_keys, compressed=compressed
                )
            return self._store.set_many(
                items, ttl, binary=binary, stale=stale, binary_keys=binary_keys, compressed=compressed
            )

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
            return self._store.touch(key, ttl)

    def persist(self, key: str) -> bool:
        """Remove the key's TTL; False if it does not exist."""
        with self._lock:
            return self._store.touch(key, None)

    def clear(self) -> int:
        """Remove every entry; return how many live entries were removed.
        Expired ones are reclaimed (and counted as expired) first, in the
        sweeper's batches; the store then starts afresh in one short lock
        hold, and the old entries are freed in slices outside it."""
        self._sweeper.sweep()
        with self._lock:
            removed = len(self._store)
            garbage = self._store.detach()
        self._sweeper.release(garbage)
        return removed

    # -- tags (tags.py) --------------------------------------------------------------

    def invalidate_tags(self, tags: Iterable[str]) -> int:
        """Make every entry carrying one of ``tags`` a miss from now on, in
        O(1) per tag (a generation bump; the entries are reclaimed by reads
        and by the sweeper). Returns how many of the tags were in use."""
        return len(self.invalidated_tags(tags))

    def invalidated_tags(self, tags: Iterable[str]) -> list[str]:
        """``invalidate_tags``, in one lock hold, naming the tags that were in use."""
        given: Iterable[Any] = [tags] if isinstance(tags, (str, bytes)) else tags
        names = [check_tag(tag, self.tag_limits.max_tag_length) for tag in given]
        with self._lock:
            in_use = self._store.tags.invalidate(names)
            for name in names if self._store.on_change is not None else ():
                self._store.on_change(INVALIDATE, name)  # type: ignore[misc]
        if in_use:
            self._sweeper.want_reclaim()
        return in_use

    def tags_of(self, entry: Entry) -> tuple[str, ...]:
        """The tag names of ``entry``, as returned by ``get_entry`` just before."""
        if not entry.tag_refs:
            return ()
        with self._lock:
            return self._store.tags_of(entry)

    def reclaim_invalidated(self) -> int:
        """Remove every entry invalidated by a tag, walking the slots in
        bounded slices, one per lock hold (the sweeper's job, callable here)."""
        return self._sweeper.reclaim_invalidated()

    # -- leases (leases.py): a read and its lease, a write and its lease's end, in one hold each

    def _check_key(self, key: str) -> None:
        check_key(key, self.limits.max_key_length)

    def get_or_lease(self, key: str, lease_time: float) -> tuple[Entry | None, Grant | None]:
        """A read that, on a miss or a stale hit, also asks for the lease on
        ``key``: the entry (None on a miss) and, then, the ``Grant`` (a token:
        the caller computes the value; none: someone else does, for ``wait``
        more seconds at most). A fresh hit asks for nothing (None). A stale
        hit when ``max_leases`` are held is served without a grant."""
        check_lease_time(lease_time, self._leases.max_lease_time)
        with self._lock:
            entry = self._store.get_entry(key)
            if entry is None:
                self._check_key(key)
                return None, self._leases.acquire(key, lease_time)
            if not entry.is_stale(self.clock()):
                return entry, None
            self._leases.stale_hits += 1
            try:
                return entry, self._leases.acquire(key, lease_time)
            except TooManyLeases:
                return entry, None  # the stale value is still an answer; a later reader refreshes it

    def set_leased(
        self,
        key: str,
        value: bytes,
        token: str,
        ttl: float | None = None,
        *,
        if_match: Condition = None,
        if_none_match: Condition = None,
        tags: Iterable[str] | None = None,
        binary: bool = False,
        stale: float | None = None,
    ) -> SetResult:
        """``set``, by the holder of the lease ``token`` names, which the
        write ends. LeaseNotHeld (and nothing written) when it names none; a
        write that fails leaves the lease held."""
        options = WriteOptions(binary, stale, tags)
        return self.write(key, value, ttl, options, Preconditions(if_match, if_none_match), lease=token)

    def acquire_lease(self, key: str, lease_time: float) -> Grant:
        """The lease on ``key`` as a plain lock, without waiting: a token, or
        none and the seconds the holder has left."""
        with self._lock:
            self._check_key(key)
            return self._leases.acquire(key, lease_time)

    def release_lease(self, key: str, token: str) -> None:
        """End the lease ``token`` names; LeaseNotHeld when it names none."""
        with self._lock:
            self._leases.release(key, token)

    def mark_stale(self, key: str, grace: float) -> bool:
        """Invalidate ``key`` without deleting it (``Store.mark_stale``):
        readers get the old value, marked stale, and one of them the lease
        to refresh it. False when the key does not exist."""
        with self._lock:
            marked = self._store.mark_stale(key, grace)
            self._leases.marked_stale += marked
            return marked

    def lease_remaining(self, key: str) -> float | None:
        """Seconds the lease on ``key`` has left; None when nobody holds it."""
        with self._lock:
            return self._leases.remaining(key)

    # -- statistics ----------------------------------------------------------------

    def stats(self) -> dict[str, Any]:
        """One consistent snapshot of every counter."""
        with self._lock:
            snapshot = self._store.counters()
            snapshot.update(self._leases.counters())
        snapshot["uptime_seconds"] = self.clock() - self._started_at
        return snapshot

    def responsive(self, timeout: float) -> bool:
        """Whether the lock can be taken within ``timeout`` seconds."""
        if not self._lock.acquire(timeout=timeout):
            return False
        self._lock.release()
        return True

    # -- key listing (scan.py) -----------------------------------------------------

    def keys(self, pattern: str | None = None, limit: int = DEFAULT_KEYS_LIMIT, cursor: str | None = None) -> KeyPage:
        """Up to ``limit`` live keys matching ``pattern`` among the next
        ``scan_count`` slots, and the cursor to go on from (None: done). A
        page may hold fewer than ``limit`` keys, even none, before the end."""
        if limit.__class__ is not int or limit < 1:
            raise ValueError(f"limit must be a whole number of at least 1, not {limit!r}")
        matches = key_matcher(pattern)
        with self._lock:
            start = start_of(cursor, self._store)
            return scan_page(self._store, start, limit, self.scan_count, matches, self.clock())

    def delete_page(self, pattern: str, cursor: str | None = None) -> tuple[int, str | None, float]:
        """Delete the live keys matching ``pattern`` among the next
        ``scan_count`` slots, at most ``DELETE_BATCH`` of them (a page of
        ``keys``); return how many, the cursor
        to go on from (None: done) and how long the lock was held, in
        seconds. pattern_delete.py runs a whole walk of them in the background."""
        matches = key_matcher(pattern)
        with self._lock:
            started = time.perf_counter()
            store = self._store
            page = scan_page(store, start_of(cursor, store), DELETE_BATCH, self.scan_count, matches, self.clock())
            deleted = store.delete_many(page.keys)
            held = time.perf_counter() - started
        return deleted, page.cursor, held

    # -- the sweeper (sweeper.py) --------------------------------------------------

    def sweep(self) -> int:
        """Reclaim every entry expired by now, one batch per lock hold."""
        return self._sweeper.sweep()

    def rebuild_expiry_index(self) -> None:
        self._sweeper.rebuild_expiry_index()

    def start(self) -> None:
        """Start the sweeper thread (in the process that serves: threads do
        not survive fork)."""
        self._sweeper.start()

    def stop(self) -> None:
        """Stop the sweeper thread and wait for it to end."""
        self._sweeper.stop()

    @property
    def sweeper_alive(self) -> bool:
        return self._sweeper.alive

    @property
    def last_sweep_max_hold(self) -> float:
        return self._sweeper.last_sweep_max_hold

    @property
    def last_rebuild_max_hold(self) -> float:
        return self._sweeper.last_rebuild_max_hold

    @property
    def rebuilds(self) -> int:
        return self._sweeper.rebuilds

    # -- snapshots (snapshot.py) ---------------------------------------------------

    def fork_locked(self, child: Callable[[Store], None]) -> int:
        """Fork while holding the lock, so the child's copy of the store is
        consistent; the child runs ``child(store)``, which must end with
        ``os._exit``. Returns the child's pid (in the parent). The lock is
        held only for the ``fork`` itself."""
        with self._lock:
            pid = os.fork()
            if pid == 0:
                try:
                    child(self._store)
                finally:
                    os._exit(70)  # child() must not return; never run the parent's code here
        return pid

    def export_locked(self, consume: Callable[[Iterator[Any], int], Any], wall_now: float) -> Any:
        """``consume(store.export_entries(wall_now), entry count)`` under the
        lock: every call waits until it returns (a snapshot at shutdown)."""
        with self._lock:
            return consume(self._store.export_entries(wall_now), len(self._store))

    def restore(self, records: list[Any], wall_now: float, hints: bool = True) -> tuple[int, int, int]:
        """``Store.restore`` under the lock: (restored, expired, left out); one ``reset`` change."""
        with self._lock:
            hook, self._store.on_change = self._store.on_change, None
            try:
                return self._store.restore(records, wall_now, hints)
            finally:
                self._store.on_change = hook
                if hook is not None:
                    hook(RESET, None)

    def set_change_hook(self, hook: ChangeHook | None) -> None:
        """Install (None: remove) the one change hook (changes.py)."""
        with self._lock:
            self._store.on_change = hook

    def __enter__(self) -> Cache:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()
