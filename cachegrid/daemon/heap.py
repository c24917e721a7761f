"""Giving the heap's free memory back to the OS: glibc's ``malloc_trim``, in the background.

Why. After a fill the worker's RSS holds more than the cache: memory that
glibc's malloc has been given back by ``free`` but keeps inside its heap
(bodies read from sockets, per-request buffers, the old tables of grown
arrays, all between the engine's long-lived arrays). glibc returns only the
top of the heap on its own; free pages in the middle stay resident until
``malloc_trim`` is called. Redis (jemalloc) and memcached give such memory
back by themselves, and a user reading RSS expects it to follow what the
cache holds (docs/entry-layout.md, "In the daemon", has the figures).

How. ``HeapTrimmer`` runs a daemon thread in the worker that wakes every
``memory_trim_interval`` seconds and calls ``malloc_trim(0)`` only when it
can pay:

- the process did work since the last trim: the engine's counters (reads,
  writes, deletes, evictions, expirations) or its memory changed, or the
  worker's RSS grew by ``RSS_STEP`` (a request that stored nothing, such as
  a large body refused, still leaves free memory behind); or
- the last trim gave back at least ``RSS_STEP``: memory may still be being
  freed (``clear()`` releases a big cache in slices after it returns), so
  the next tick looks once more; this stops by itself, as every such trim
  shrinks the RSS.

An idle server does nothing. RSS is read from ``/proc/self/statm`` (one
small read) before and after each trim; the difference is what /stats and
/metrics report as given back (``memory_trim_*``).

Cost. ``malloc_trim`` consolidates the free chunks of every arena and
``madvise``\\ s away the whole free pages among them: 4 to 9 ms for a 160 MB
heap on a 2-core machine. The call goes through ``ctypes.CDLL``, which
releases the GIL for the foreign call and takes it back afterwards (the
ctypes documentation, "Loading shared libraries"; checked: a thread blocked
in ``read(2)`` through this module's handle lets the main thread run and
write what it waits for, which a ``ctypes.PyDLL`` handle, holding the GIL,
deadlocks on; tests/daemon/test_heap.py). So request threads and meinheld's
loop run on during a trim; what can wait is a ``malloc`` of theirs in the
arena being trimmed, since glibc holds each arena's lock while it trims it:
at most the trim's few milliseconds, at most once per interval.

Where glibc is absent (musl, macOS) there is no ``malloc_trim``: the trimmer
is a no-op, said once in the log at info level.
"""

from __future__ import annotations

import ctypes
import logging
import os
import threading
import time
from collections.abc import Callable, Hashable
from typing import Any

from ..engine import Cache

log = logging.getLogger("cachegrid.daemon")

RSS_STEP = 1024 * 1024  # RSS growth that counts as work, and a give-back worth another look
PAGE_SIZE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096
STOP_WAIT = 1.0  # at most this for a trim in progress at shutdown (it takes milliseconds)


def process_library() -> ctypes.CDLL:
    """The process's own symbols (the C library among them), as a
    ``ctypes.CDLL``: its calls release the GIL. OSError where there is no
    ``dlopen(NULL)``."""
    return ctypes.CDLL(None)


def find_malloc_trim() -> tuple[Callable[[int], int] | None, str]:
    """glibc's ``malloc_trim`` through ``process_library()``, or None and why not."""
    try:
        process = process_library()
    except OSError as error:
        return None, f"the C library cannot be opened ({error})"
    try:
        trim = process.malloc_trim
    except AttributeError:
        return None, "the C library has no malloc_trim (not glibc)"
    trim.argtypes = [ctypes.c_size_t]
    trim.restype = ctypes.c_int
    return trim, "glibc"


def resident_bytes() -> int | None:
    """This process's RSS, from /proc/self/statm (None where there is no /proc)."""
    try:
        with open("/proc/self/statm", "rb") as statm:
            return int(statm.read().split()[1]) * PAGE_SIZE
    except (OSError, IndexError, ValueError):
        return None


def engine_activity(cache: Cache) -> Callable[[], Hashable]:
    """What changes whenever the engine did work: its counters and its memory."""
    names = (
        "hits",
        "misses",
        "sets",
        "deletes",
        "evictions",
        "expired",
        "current_size",
        "memory_usage_bytes",
        "tag_invalidated_entries",
    )

    def activity() -> Hashable:
        stats = cache.stats()
        return tuple(stats[name] for name in names)

    return activity


class HeapTrimmer:
    """Calls ``trim(0)`` from a daemon thread every ``interval`` seconds when
    it can pay (see the module docstring). ``trim`` None: not available."""

    def __init__(
        self,
        interval: float,
        activity: Callable[[], Hashable],
        trim: Callable[[int], int] | None,
        rss: Callable[[], int | None] = resident_bytes,
    ) -> None:
        self.interval = interval
        self.activity = activity
        self.trim = trim
        self.rss = rss
        self.trims = 0
        self.released_bytes = 0
        self.last_at: float | None = None
        self.last_released_bytes: int | None = None
        self.last_duration_seconds: float | None = None
        self._seen = activity()
        self._rss_after = rss()
        self._look_again = False
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def enabled(self) -> bool:
        return self.interval > 0 and self.trim is not None

    def worth_trimming(self) -> bool:
        """Whether a trim can pay now (and remember what was seen)."""
        seen = self.activity()
        rss = self.rss()
        worked = seen != self._seen
        grew = rss is not None and self._rss_after is not None and rss - self._rss_after >= RSS_STEP
        self._seen = seen
        return worked or grew or self._look_again

    def maybe_trim(self) -> bool:
        """One tick: trim if it can pay; True when it trimmed."""
        if self.trim is None or not self.worth_trimming():
            return False
        before = self.rss()
        started_at, started = time.time(), time.perf_counter()
        self.trim(0)
        duration = time.perf_counter() - started
        after = self.rss()
        released = max(0, before - after) if before is not None and after is not None else 0
        self.last_at, self.last_released_bytes, self.last_duration_seconds = started_at, released, duration
        self.released_bytes += released
        self.trims += 1  # last: a reader that sees the count advance sees this trim's fields
        self._rss_after = after
        self._look_again = released >= RSS_STEP
        return True

    def start(self) -> None:
        """Start the thread (in the process that serves: threads do not survive fork)."""
        if not self.enabled or self._thread is not None:
            return
        self._stopping.clear()
        self._thread = threading.Thread(target=self._run, name="cachegrid-heap-trim", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop the thread; waits for a trim in progress, never more than ``STOP_WAIT``."""
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(STOP_WAIT)
            self._thread = None

    def _run(self) -> None:
        while not self._stopping.wait(self.interval):
            try:
                self.maybe_trim()
            except Exception:  # never let the thread die silently; the next tick tries again
                log.exception("memory trim failed")


def start_trimmer(cache: Cache, interval: float) -> HeapTrimmer:
    """A started trimmer for ``cache`` (a no-op where glibc is absent or
    ``interval`` is 0, said once in the log)."""
    trim, origin = find_malloc_trim() if interval > 0 else (None, "")
    trimmer = HeapTrimmer(interval, engine_activity(cache), trim)
    if interval <= 0:
        log.debug("memory trim off (memory_trim_interval = 0)")
    elif trim is None:
        log.info("memory trim not available: %s; the heap's free memory stays with the process", origin)
    else:
        log.debug("memory trim every %g s when there was work (%s malloc_trim)", interval, origin)
    trimmer.start()
    return trimmer


def trim_fields(trimmer: HeapTrimmer | None) -> dict[str, Any]:
    """The trimmer's state as flat ``memory_trim_*`` fields, for /stats
    (only ``memory_trim_enabled`` when it is off: interval 0, no glibc, or
    a cache the caller owns)."""
    if trimmer is None or not trimmer.enabled:
        return {"memory_trim_enabled": False}
    last_at, duration = trimmer.last_at, trimmer.last_duration_seconds
    return {
        "memory_trim_enabled": True,
        "memory_trim_interval_seconds": trimmer.interval,
        "memory_trims": trimmer.trims,
        "memory_trim_released_bytes": trimmer.released_bytes,
        "memory_trim_last_at": None if last_at is None else round(last_at, 3),
        "memory_trim_last_released_bytes": trimmer.last_released_bytes,
        "memory_trim_last_seconds": None if duration is None else round(duration, 6),
    }
