"""Snapshots: the cache on disk, so that a restart does not start it empty.

What this file holds: the load at start with its clear failures (``load``),
and the background writer (``Snapshotter``), which copies the cache by
``fork`` as Redis' BGSAVE does.

The file format (its layout, atomic writes and the checks of a read) is in
snapshot_file.py; ``write_file`` and ``read_file`` are importable from here.

The policy and the limits are settings, not part of the data: a snapshot
written under another policy is loaded (its order kept, its hints ignored),
and under smaller limits the hottest entries that fit are kept.

Writing in the background
-------------------------
``Snapshotter.start()`` forks while holding the engine's lock, so the child
holds a consistent copy of the whole cache and the lock is held only for
the ``fork`` itself (copying the page tables). The child writes the file
from its copy and leaves with ``os._exit``, touching no lock, no logger and
no thread of the parent; a pipe brings back its result, and a reaper thread
of the parent waits for it. The child runs at a lower CPU priority (nice +10):
on a small machine the serving worker comes first. The parent's memory is shared copy-on-write:
every page the parent (or the child's reference counting) writes to while
the child runs is copied, so budget up to the cache's size again in memory
headroom (docs/snapshots.md has the numbers). One snapshot at a time.

The store surface this relies on
--------------------------------
Everything of the engine this file uses, so that a change of the store's
layout is a matter of re-pointing these:

- ``Store.export_entries(wall_now)``: every held entry as (key, value,
  wall-clock expiry or None, policy hint int, ``Extra`` or None), coldest
  first (``Extra``, entry.py: the binary flag, the wall-clock fresh_until
  and the tag names; an entry invalidated by a tag is exported expired);
- ``Store.restore(records, wall_now, hints)``: insert such records coldest
  first, drop the expired, keep the hottest that fit; returns (restored,
  expired, left out by the limits);
- the policy hooks behind them: ``_snapshot_order()`` (slots coldest first;
  default insertion order), ``_snapshot_hint(slot)`` and
  ``_restore_hint(slot, hint)`` (default: nothing);
- ``len(store)``; ``Cache.fork_locked``, ``Cache.export_locked`` and
  ``Cache.restore`` (cache.py), which take the lock around those;
- ``Cache.policy`` and ``Cache.limits`` (``Limits``' four fields).
"""

from __future__ import annotations

import gc
import json
import logging
import os
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from .snapshot_file import (  # noqa: F401  (the format's names, importable from here as before)
    ALLOWED_FLAGS,
    CHECKSUM_SIZE,
    FIELDS,
    FLAG_BINARY,
    FLAG_EXPIRES,
    FLAG_FRESH,
    FLAG_HINT,
    FLAG_TAGS,
    FORMAT_VERSION,
    MAGIC,
    MAX_HEADER_SIZE,
    Corrupt,
    FutureVersion,
    NotASnapshot,
    Snapshot,
    SnapshotError,
    Truncated,
    encode_record,
    encode_tags,
    move_aside,
    read_file,
    remove_partial_writes,
    write_file,
)

log = logging.getLogger("cachegrid.snapshot")

CHILD_NICENESS = 10  # added to the forked writer's nice value


class SnapshotRunning(Exception):
    """A snapshot is being written already (one at a time)."""


# -- the state operators read -------------------------------------------------------


@dataclass
class LastSnapshot:
    """The last snapshot written (or tried): what GET /admin/snapshot shows."""

    result: str = "none"  # none, ok, failed
    started_at: float | None = None  # wall clock
    finished_at: float | None = None
    duration_seconds: float | None = None
    entries: int | None = None
    bytes: int | None = None
    error: str | None = None
    trigger: str | None = None  # interval, request, shutdown


@dataclass
class LoadReport:
    """What the load at start found: the result, and what was restored."""

    result: str = "none"  # none (no file), ok, failed
    file: str | None = None
    entries: int = 0  # restored
    expired: int = 0  # dropped: their TTL ran out while the server was down
    left_out: int = 0  # dropped: over the (smaller) limits
    duration_seconds: float = 0.0
    error: str | None = None
    moved_to: str | None = None
    written_at: float | None = None
    policy: str | None = None


@dataclass
class _Running:
    pid: int
    started_at: float
    started: float  # monotonic
    trigger: str
    done: threading.Event = field(default_factory=threading.Event)


def _keep_beating(heartbeat: Callable[[], None] | None, stop: threading.Event, every: float = 1.0) -> threading.Thread:
    def beat() -> None:
        while not stop.wait(every):
            heartbeat()  # type: ignore[misc]

    thread = threading.Thread(target=beat, name="cachegrid-load-heartbeat", daemon=True)
    if heartbeat is not None:
        thread.start()
    return thread


class Snapshotter:
    """The snapshots of one cache: load at start, write in the background
    (``start``), every ``interval`` seconds (``start_interval``; 0: never),
    and in the foreground at shutdown (``shutdown``)."""

    def __init__(
        self, cache: Any, path: str | os.PathLike[str], interval: float = 0.0, producer: str = "unknown"
    ) -> None:
        if interval < 0:
            raise ValueError(f"interval must be 0 (off) or a number of seconds, not {interval!r}")
        self.cache = cache
        self.path = Path(path)
        self.interval = interval
        self.producer = producer
        self.last = LastSnapshot()
        self.loaded = LoadReport()
        self.snapshots_written = self.snapshots_failed = 0
        self._running: _Running | None = None
        self._state = threading.Lock()
        self._stopping = threading.Event()
        self._interval_thread: threading.Thread | None = None

    # -- load ------------------------------------------------------------------

    def load(self, heartbeat: Callable[[], None] | None = None) -> LoadReport:
        """Load the snapshot into the (empty) cache, if there is one; a file
        that cannot be used is moved aside and logged (see the module
        docstring). ``heartbeat`` is called every second while it runs."""
        started = time.monotonic()
        for partial in remove_partial_writes(self.path):
            log.warning("snapshot %s: removed %s, left by a write that did not finish", self.path, partial.name)
        report = LoadReport(file=str(self.path))
        stop = threading.Event()
        beating = _keep_beating(heartbeat, stop)
        # A million records are a million new tuples: the cyclic collector
        # would walk them again and again for nothing (none holds a cycle).
        collecting = gc.isenabled()
        gc.disable()
        try:
            snapshot = read_file(self.path)
            report.written_at = snapshot.header.get("written_at")
            report.policy = snapshot.header.get("policy")
            same_policy = snapshot.header.get("policy") == self.cache.policy
            report.entries, report.expired, report.left_out = self.cache.restore(
                snapshot.records, time.time(), same_policy
            )
            report.result = "ok"
            del snapshot
        except FileNotFoundError:
            report.result = "none"
            log.info("snapshot %s: no file yet; starting empty", self.path)
        except (SnapshotError, OSError) as error:
            report.result, report.error = "failed", str(error)
            moved = self._move_aside_quietly()
            report.moved_to = str(moved) if moved else None
            kept = f"the file is kept as {moved}" if moved else "the file could not be moved aside"
            log.error("snapshot %s cannot be loaded: %s; starting empty, %s", self.path, error, kept)
        finally:
            if collecting:
                gc.enable()
            stop.set()
            if beating.is_alive():
                beating.join()
        report.duration_seconds = time.monotonic() - started
        if report.result == "ok":
            log.info(
                "snapshot %s: loaded %d entries in %.2f s (%d expired while down, %d over the limits)",
                self.path,
                report.entries,
                report.duration_seconds,
                report.expired,
                report.left_out,
            )
        self.loaded = report
        return report

    def _move_aside_quietly(self) -> Path | None:
        try:
            return move_aside(self.path) if self.path.exists() else None
        except OSError:
            return None

    # -- write -----------------------------------------------------------------

    def _meta(self) -> dict[str, Any]:
        limits = self.cache.limits
        return {
            "cachegrid": self.producer,
            "policy": self.cache.policy,
            "limits": asdict(limits),
            "written_at": time.time(),
        }

    @property
    def running(self) -> bool:
        return self._running is not None

    def start(self, trigger: str = "request") -> dict[str, Any]:
        """Start a background snapshot now; SnapshotRunning if one runs."""
        with self._state:
            if self._running is not None:
                raise SnapshotRunning(f"a snapshot started at {self._running.started_at:.3f} is still being written")
            self._stopping_check()
            read_end, write_end = os.pipe()
            meta = self._meta()
            path = self.path

            def child(store: Any) -> None:  # in the forked child: no locks, no logging, os._exit
                try:
                    for number in (signal.SIGTERM, signal.SIGINT, signal.SIGQUIT, signal.SIGHUP, signal.SIGUSR1):
                        signal.signal(number, signal.SIG_DFL)
                    os.close(read_end)
                    os.nice(CHILD_NICENESS)  # background work: the serving worker goes first for the CPU
                    size = write_file(path, store.export_entries(meta["written_at"]), len(store), meta)
                    message: dict[str, Any] = {"entries": len(store), "bytes": size}
                    code = 0
                except BaseException as error:
                    message, code = {"error": f"{type(error).__name__}: {error}"}, 1
                try:
                    os.write(write_end, json.dumps(message).encode())
                finally:
                    os._exit(code)

            started = time.monotonic()
            try:
                pid = self.cache.fork_locked(child)
            except BaseException:  # no child (ENOMEM, EAGAIN): nothing runs
                os.close(read_end)
                raise
            finally:
                os.close(write_end)
            running = self._running = _Running(pid, meta["written_at"], started, trigger)
        threading.Thread(
            target=self._reap, args=(running, read_end), name="cachegrid-snapshot-reaper", daemon=True
        ).start()
        return self.status()

    def _stopping_check(self) -> None:
        if self._stopping.is_set():
            raise SnapshotRunning("the server is shutting down; the shutdown snapshot is being written")

    def _reap(self, running: _Running, read_end: int) -> None:
        chunks = []
        with os.fdopen(read_end, "rb") as pipe:
            while chunk := pipe.read(65536):
                chunks.append(chunk)
        _, status = os.waitpid(running.pid, 0)
        try:
            message = json.loads(b"".join(chunks)) if chunks else {}
        except ValueError:
            message = {}
        if "error" not in message and (not os.WIFEXITED(status) or os.WEXITSTATUS(status) != 0):
            message["error"] = f"the snapshot process ended with status {status:#x} before it finished"
            self.path.with_name(f".{self.path.name}.tmp-{running.pid}").unlink(missing_ok=True)  # its partial file
        self._finish(running.started_at, running.started, running.trigger, message)
        with self._state:
            self._running = None
        running.done.set()

    def _finish(self, started_at: float, started: float, trigger: str, message: dict[str, Any]) -> None:
        last = LastSnapshot(
            started_at=started_at,
            finished_at=time.time(),
            duration_seconds=round(time.monotonic() - started, 6),
            trigger=trigger,
        )
        if "error" in message:
            last.result, last.error = "failed", message["error"]
            self.snapshots_failed += 1
            log.error("snapshot %s failed: %s", self.path, message["error"])
        else:
            last.result, last.entries, last.bytes = "ok", message["entries"], message["bytes"]
            self.snapshots_written += 1
            log.info(
                "snapshot %s: %d entries, %d bytes in %.2f s (%s)",
                self.path,
                last.entries,
                last.bytes,
                last.duration_seconds,
                trigger,
            )
        self.last = last

    def wait(self, timeout: float | None = None) -> bool:
        """Wait for the running snapshot (if any) to end; False on timeout."""
        running = self._running
        return True if running is None else running.done.wait(timeout)

    def write_now(self, trigger: str = "shutdown") -> LastSnapshot:
        """Write a snapshot in this process, holding the lock throughout (at
        shutdown, when nothing is served any more): waits for a background
        one first, so this one is the last word."""
        self.wait()
        meta = self._meta()
        started = time.monotonic()
        try:
            count, size = self.cache.export_locked(
                lambda entries, count: (count, write_file(self.path, entries, count, meta)), meta["written_at"]
            )
            message: dict[str, Any] = {"entries": count, "bytes": size}
        except Exception as error:
            message = {"error": f"{type(error).__name__}: {error}"}
        self._finish(meta["written_at"], started, trigger, message)
        return self.last

    # -- the interval and shutdown ------------------------------------------------

    def start_interval(self) -> None:
        """Start the thread that snapshots every ``interval`` seconds (none for 0)."""
        if self.interval <= 0 or self._interval_thread is not None:
            return
        self._interval_thread = threading.Thread(target=self._every_interval, name="cachegrid-snapshots", daemon=True)
        self._interval_thread.start()

    def _every_interval(self) -> None:
        while not self._stopping.wait(self.interval):
            try:
                self.start("interval")
            except SnapshotRunning:
                pass  # one asked for by an operator is running: the next interval will do
            except Exception:
                log.exception("snapshot %s: could not start the interval snapshot", self.path)

    def shutdown(self, write: bool = True) -> None:
        """Stop the interval thread, wait for a background snapshot, and (with
        ``write``) write the final one."""
        self._stopping.set()
        if self._interval_thread is not None:
            self._interval_thread.join(timeout=5)
        if write:
            self.write_now("shutdown")
        else:
            self.wait()

    # -- what operators read ---------------------------------------------------------

    def status(self) -> dict[str, Any]:
        running = self._running
        return {
            "enabled": True,
            "path": str(self.path),
            "interval_seconds": self.interval,
            "running": running is not None,
            "running_since": None if running is None else running.started_at,
            "written": self.snapshots_written,
            "failed": self.snapshots_failed,
            "last": asdict(self.last),
            "loaded": asdict(self.loaded),
        }
