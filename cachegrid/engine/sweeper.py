"""The sweeper: the one thread of the engine, and what it does beside requests.

Every ``cleanup_interval`` seconds it calls ``sweep()``: it reclaims the
expired entries earliest first from the expiry index in batches of
``SWEEP_BATCH``, taking and releasing the lock for each batch, until none is
due. So every entry that expired before a sweep began is gone when it ends,
within one interval of its expiry, and readers and writers wait at most one
batch. Reads never rely on the sweeper: an expired entry is refused on the
spot.

It also does two jobs that would otherwise stall a request:

- it rebuilds the expiry index when a write asks for it (expire.py): the lock
  is held to copy the heap (a memory copy of two arrays) and to install the
  result with at most ``REPLAY_UNDER_LOCK`` items pushed meanwhile; the O(n)
  filtering and sorting, and the replay of earlier pushes, run outside it;
- it reclaims the entries a tag invalidation left behind (tags.py): an
  invalidation only bumps a generation, so the entries nobody reads again
  would stay. After one, the sweeper walks the slots, ``RECLAIM_SLOTS`` a
  lock hold (at most ``RECLAIM_BATCH`` removals), removing the entries with
  an outdated tag; one walk after the last of several invalidations serves
  them all, and a walk that an invalidation overtook is run again;
- it frees what ``Cache.clear()`` detached: a cleared store starts afresh
  under the lock at once, and the old mapping, key shards and policy
  structures are emptied here, ``RELEASE_SLICE`` items at a time, with a
  pause between slices, without the lock. Freeing a million entries is tens
  of milliseconds of deallocation; in slices, no one waits for it. Without a
  running thread (an engine used without ``start()``) the caller of
  ``clear()`` frees them, in the same slices, still without the lock.

``stop()`` wakes the thread and joins it (after it freed what was queued).
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from typing import Any

from .store import FLAG_TAGS, Clock, Store, tag_refs_of

DEFAULT_CLEANUP_INTERVAL = 60.0
SWEEP_BATCH = 1_000
RELEASE_SLICE = 10_000
# Items pushed during a rebuild that its last lock hold replays at most.
REPLAY_UNDER_LOCK = 1_000
# Slots one lock hold of the walk after a tag invalidation examines (as key
# listing's scan_count: about half a millisecond), and the removals it makes
# at most (a removal costs a few microseconds: a slice stays near a millisecond).
RECLAIM_SLOTS = 2_048
RECLAIM_BATCH = 256


def _yield_the_interpreter() -> None:
    time.sleep(0)  # lets the serving thread run between two slices


def release_in_slices(garbage: Iterable[Any], slice_size: int, pause: Callable[[], None]) -> int:
    """Empty every dict and list of ``garbage``, ``slice_size`` items per
    slice, calling ``pause()`` after each slice; return how many slices."""
    slices = 0
    for container in garbage:
        if isinstance(container, dict):
            popitem = container.popitem
            while container:
                for _ in range(min(slice_size, len(container))):
                    popitem()
                slices += 1
                pause()
        elif isinstance(container, list):
            while container:
                del container[-slice_size:]
                slices += 1
                pause()
    return slices


def reclaim_slice(store: Store, start: int, slots: int, limit: int) -> tuple[int | None, int]:
    """Remove the entries with an outdated tag among ``slots`` slots from
    ``start`` (at most ``limit`` of them); return the slot to go on from
    (None: the walk is done) and how many were removed. Under the lock."""
    stop = min(store.slot_end, start + slots)
    data, key_at, current = store._data, store.key_at, store.tags.current
    reclaimed, slot = 0, start
    while slot < stop and reclaimed < limit:
        key = key_at(slot)
        slot += 1
        if key is not None:
            blob = data[key]
            if blob[-1] & FLAG_TAGS and not current(tag_refs_of(blob)):
                store._drop_invalidated(key, blob)
                reclaimed += 1
    return (None if slot >= store.slot_end else slot), reclaimed


class Sweeper:
    """The background thread of one ``Cache``: its lock, its store."""

    def __init__(self, lock: threading.Lock, store: Store, clock: Clock, interval: float) -> None:
        if not interval > 0:
            raise ValueError(f"cleanup_interval must be greater than 0, not {interval!r}")
        self._lock = lock
        self._store = store
        self.clock = clock
        self.interval = interval
        self.pause: Callable[[], None] = _yield_the_interpreter  # between two slices of a release
        self.thread: threading.Thread | None = None
        self._stopping = threading.Event()
        self._wake = threading.Event()  # a rebuild or a release is wanted
        self._rebuild_wanted = False
        self._reclaim_wanted = False
        self._garbage: deque[list[Any]] = deque()
        # Longest single lock hold of the last sweep and of the last rebuild
        # of the expiry index, in seconds (the benchmark reports them).
        self.last_sweep_max_hold = 0.0
        self.last_rebuild_max_hold = 0.0
        self.rebuilds = 0
        self.last_reclaim_max_hold = 0.0  # of the last walk after a tag invalidation

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

    def reclaim_invalidated(self) -> int:
        """Walk the slots in slices and remove every entry an invalidated
        tag left behind, one slice per lock hold; return how many. Nothing
        to do (no invalidation since the last walk): returns at once."""
        total, longest, slot = 0, 0.0, 1
        walking, epoch = None, 0  # the registry being walked, and its epoch when the walk began
        while True:
            with self._lock:
                registry = self._store.tags
                if registry.reclaimed_epoch == registry.epoch:
                    break
                if slot == 1 or registry is not walking:  # a new walk, or cleared meanwhile
                    slot, walking, epoch = 1, registry, registry.epoch
                started = time.perf_counter()
                next_slot, reclaimed = reclaim_slice(self._store, slot, RECLAIM_SLOTS, RECLAIM_BATCH)
                longest = max(longest, time.perf_counter() - started)
                if next_slot is None:
                    # Complete for the epoch it began at; a later invalidation walks again.
                    registry.reclaimed_epoch = epoch
                    slot = 1
                else:
                    slot = next_slot
            total += reclaimed
            self.pause()
        self.last_reclaim_max_hold = longest
        return total

    def want_reclaim(self) -> None:
        """Called after a tag invalidation: the thread walks the slots soon."""
        self._reclaim_wanted = True
        self._wake.set()

    def rebuild_expiry_index(self) -> None:
        """Drop the dead items of the expiry index, holding the lock only to
        copy the heap and to install the rebuilt one (see expire.py)."""
        started = time.perf_counter()
        with self._lock:
            index = self._store.expiry
            items = index.begin_rebuild()
        copied = time.perf_counter()
        if items is None:
            return
        rebuilt = index.without_dead(items)
        longest = copied - started
        while True:
            taking = time.perf_counter()
            with self._lock:
                if self._store.expiry is not index:  # replaced by clear() meanwhile
                    return
                if index.pending() <= REPLAY_UNDER_LOCK:
                    index.end_rebuild(rebuilt)
                    break
                pushed = index.take_pushed()
            longest = max(longest, time.perf_counter() - taking)
            for expires_at, slot in pushed:
                rebuilt.push(expires_at, slot)
        self.last_rebuild_max_hold = max(longest, time.perf_counter() - taking)
        self.rebuilds += 1

    def release(self, garbage: list[Any]) -> None:
        """Free ``garbage`` (what a clear detached) in slices, without the
        lock: in the thread when it runs, else here and now."""
        if self.alive:
            self._garbage.append(garbage)
            self._wake.set()
        else:
            release_in_slices(garbage, RELEASE_SLICE, self.pause)

    def want_rebuild(self) -> None:
        """Called by a write (under the lock) when the expiry index is overgrown."""
        self._rebuild_wanted = True
        self._wake.set()

    def start(self) -> None:
        if self.alive:
            return
        self._stopping.clear()
        self._wake.clear()
        self.thread = threading.Thread(target=self._run, name="cachegrid-sweeper", daemon=True)
        self.thread.start()
        with self._lock:
            self._store.on_expiry_overgrown = self.want_rebuild

    def stop(self) -> None:
        with self._lock:
            self._store.on_expiry_overgrown = None
        self._stopping.set()
        self._wake.set()
        if self.thread is not None:
            self.thread.join()
            self.thread = None
        while self._garbage:  # queued just before the thread ended
            release_in_slices(self._garbage.popleft(), RELEASE_SLICE, self.pause)

    @property
    def alive(self) -> bool:
        return self.thread is not None and self.thread.is_alive()

    def _run(self) -> None:
        # Real time, not the injected clock: this is the thread's schedule.
        next_sweep = time.monotonic() + self.interval
        while True:
            woken = self._wake.wait(max(0.0, next_sweep - time.monotonic()))
            if woken:
                self._wake.clear()
                while self._garbage:  # before stopping too: it was asked for
                    release_in_slices(self._garbage.popleft(), RELEASE_SLICE, self.pause)
            if self._stopping.is_set():
                return
            if woken:
                if self._rebuild_wanted:
                    self._rebuild_wanted = False
                    self.rebuild_expiry_index()
                if self._reclaim_wanted:
                    self._reclaim_wanted = False
                    self.reclaim_invalidated()
            if time.monotonic() >= next_sweep:
                self.sweep()
                next_sweep = time.monotonic() + self.interval
