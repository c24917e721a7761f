"""Snapshots: the cache on disk, so that a restart does not start it empty.

What this file holds: the on-disk format (``write_file``, ``read_file``), the
load at start with its clear failures (``load``), and the background writer
(``Snapshotter``), which copies the cache by ``fork`` as Redis' BGSAVE does.

The file
--------
All integers little-endian::

    magic        8 bytes   b"\\x89CGSNAP\\n"  (not text: a text transfer or a
                           foreign file fails here)
    version      u16       the format version (FORMAT_VERSION)
    header_size  u32
    header       JSON      {"cachegrid", "policy", "limits", "entries",
                           "written_at", "order"}: what wrote it, under which
                           policy and limits, how many records follow
    records      entries x record
    checksum     32 bytes  SHA-256 of every byte before it

A record::

    flags        u8        which optional fields follow (FIELDS)
    key_size     u32       bytes of the key's UTF-8
    value_size   u32
    optional     the fields whose flag bit is set, in FIELDS order:
                 EXPIRES  f64  the absolute expiry, wall-clock (time.time())
                 HINT     u64  what the policy keeps beyond the order (lfu:
                               the use count), valid under header["policy"]
                 BINARY   -    the value is raw bytes, not JSON (version 2)
                 FRESH    f64  when the entry turns stale, wall-clock: it is
                               served stale from then until EXPIRES (version 2)
                 TAGS     u8 count, then per tag u8 length + the name's
                               ASCII: its tags by name, since tag ids and
                               generations are one process's own (version 2)
    key, value

Records come coldest first (the policy's next victim first), so inserting
them in file order rebuilds the policy's order. TAGS joined version 2
before it was released. A later field is a
new flag bit and a new row of FIELDS under a new format version, read
where the others are; files of the older versions stay readable.
``ALLOWED_FLAGS`` says which bits each version may use, and a bit outside
them is corruption.

Writing is atomic: the records go to a temporary file beside the target
(``.<name>.tmp-<pid>``), which is fsynced, renamed over the target, and the
directory fsynced. A crash mid-write leaves the previous snapshot whole; the
partial temporary file is removed at the next start (it never was a snapshot).

Reading checks, in order: the magic (else "not a CacheGrid snapshot"), the
version (a newer one is refused, never guessed at), the header, the
checksum (a mismatch is then told apart: the records run past the end,
"truncated", or not, "corrupt"), and that exactly ``entries`` records fill
the file. ``load`` turns any failure into one log line naming the file and
the problem, moves the file aside (``<name>.bad-<UTC time>``; a user's data
is never deleted) and lets the cache start empty.

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
import hashlib
import json
import logging
import os
import signal
import struct
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from .entry import Extra
from .restore import Record

log = logging.getLogger("cachegrid.snapshot")

MAGIC = b"\x89CGSNAP\n"
FORMAT_VERSION = 2
_PRELUDE = struct.Struct("<8sHI")  # magic, version, header size
_RECORD = struct.Struct("<BII")  # flags, key size, value size
CHECKSUM_SIZE = 32  # SHA-256
MAX_HEADER_SIZE = 1 << 20

# The optional fields of a record: (flag bit, name, layout), in file order.
FLAG_EXPIRES = 0x01
FLAG_HINT = 0x02
FLAG_BINARY = 0x04
FLAG_FRESH = 0x08
FLAG_TAGS = 0x10
FIELDS: tuple[tuple[int, str, struct.Struct | None], ...] = (
    (FLAG_EXPIRES, "expires_at", struct.Struct("<d")),
    (FLAG_HINT, "hint", struct.Struct("<Q")),
    (FLAG_BINARY, "binary", None),
    (FLAG_FRESH, "fresh_until", struct.Struct("<d")),
    (FLAG_TAGS, "tags", None),  # variable length: a count, then length-prefixed names
)
# The flag bits each format version may use.
ALLOWED_FLAGS = {1: FLAG_EXPIRES | FLAG_HINT, 2: FLAG_EXPIRES | FLAG_HINT | FLAG_BINARY | FLAG_FRESH | FLAG_TAGS}
_EXPIRES = _FRESH = struct.Struct("<d")
_HINT = struct.Struct("<Q")
_WRITE_CHUNK = 1 << 20  # bytes gathered before each write()
CHILD_NICENESS = 10  # added to the forked writer's nice value


class SnapshotError(Exception):
    """A snapshot file that cannot be loaded; the message says why, in one line."""


class NotASnapshot(SnapshotError):
    """Garbage or a foreign file: the magic is not ours."""


class FutureVersion(SnapshotError):
    """Written by a newer format version than this CacheGrid reads."""


class Truncated(SnapshotError):
    """The file ends before its records do."""


class Corrupt(SnapshotError):
    """The checksum or the structure does not hold."""


class SnapshotRunning(Exception):
    """A snapshot is being written already (one at a time)."""


# -- the format ---------------------------------------------------------------------


def encode_record(key: str, value: bytes, expires_at: float | None, hint: int, extra: Extra | None = None) -> bytes:
    key_bytes = key.encode("utf-8", "surrogatepass")
    flags = (FLAG_EXPIRES if expires_at is not None else 0) | (FLAG_HINT if hint else 0)
    if extra is not None:
        flags |= (FLAG_BINARY if extra.binary else 0) | (FLAG_FRESH if extra.fresh_until is not None else 0)
        flags |= FLAG_TAGS if extra.tags else 0
    parts = [_RECORD.pack(flags, len(key_bytes), len(value))]
    if expires_at is not None:
        parts.append(_EXPIRES.pack(expires_at))
    if hint:
        parts.append(_HINT.pack(hint))
    if flags & FLAG_FRESH:
        parts.append(_FRESH.pack(extra.fresh_until))  # type: ignore[union-attr]
    if flags & FLAG_TAGS:
        parts.append(encode_tags(extra.tags))  # type: ignore[union-attr]
    parts += (key_bytes, value)
    return b"".join(parts)


def encode_tags(tags: tuple[str, ...]) -> bytes:
    """A record's TAGS field: the count, then each name with its length."""
    names = [tag.encode("ascii") for tag in tags]
    return bytes((len(names),)) + b"".join(bytes((len(name),)) + name for name in names)


def _decode_tags(data: bytes, offset: int, end: int, number: int) -> tuple[tuple[str, ...], int]:
    """The TAGS field at ``offset`` and the offset after it (Truncated, Corrupt)."""
    if offset >= end:
        raise Truncated(f"the file ends in record {number}")
    count, offset = data[offset], offset + 1
    tags = []
    for _ in range(count):
        if offset >= end or offset + 1 + data[offset] > end:
            raise Truncated(f"the file ends in record {number}")
        name_end = offset + 1 + data[offset]
        try:
            tags.append(data[offset + 1 : name_end].decode("ascii"))
        except UnicodeDecodeError:
            raise Corrupt(f"a tag of record {number} is not ASCII") from None
        offset = name_end
    return tuple(tags), offset


def _temporary_path(path: Path) -> Path:
    return path.with_name(f".{path.name}.tmp-{os.getpid()}")


def write_file(path: str | os.PathLike[str], records: Iterable[Record], count: int, meta: dict[str, Any]) -> int:
    """Write ``count`` records atomically to ``path`` (see the module
    docstring) with ``meta`` in the header; return the file's size. A
    ``records`` that yields another number of records is an error, and the
    previous file stays."""
    path = Path(path)
    header = json.dumps({**meta, "entries": count, "order": "coldest_first"}, sort_keys=True).encode()
    temporary = _temporary_path(path)
    digest = hashlib.sha256()
    size = written = 0
    try:
        # 0600: the file holds every value of the cache; O_EXCL: never write through a planted file.
        descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_TRUNC, 0o600)
        with open(descriptor, "wb", buffering=0) as file:

            def emit(chunk: bytes) -> None:
                nonlocal size
                digest.update(chunk)
                file.write(chunk)
                size += len(chunk)

            emit(_PRELUDE.pack(MAGIC, FORMAT_VERSION, len(header)) + header)
            pending: list[bytes] = []
            pending_size = 0
            for key, value, expires_at, hint, extra in records:
                record = encode_record(key, value, expires_at, hint, extra)
                pending.append(record)
                pending_size += len(record)
                written += 1
                if pending_size >= _WRITE_CHUNK:
                    emit(b"".join(pending))
                    pending, pending_size = [], 0
            emit(b"".join(pending))
            if written != count:
                raise RuntimeError(f"{written} records were written, not the {count} announced")
            file.write(digest.digest())
            size += CHECKSUM_SIZE
            os.fsync(file.fileno())
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    directory = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)
    return size


@dataclass
class Snapshot:
    header: dict[str, Any]
    records: list[Record]
    size: int


def _parse_records(data: bytes, offset: int, end: int, count: int, allowed: int) -> tuple[list[Record], int]:
    """``count`` records from ``data[offset:end]``; raises Truncated when they
    run past ``end`` and Corrupt on an impossible record."""
    records: list[Record] = []
    append = records.append
    unpack_record, unpack_expires, unpack_hint = _RECORD.unpack_from, _EXPIRES.unpack_from, _HINT.unpack_from
    fixed = _RECORD.size
    for number in range(count):
        if offset + fixed > end:
            raise Truncated(f"the file ends in record {number + 1} of {count}")
        flags, key_size, value_size = unpack_record(data, offset)
        offset += fixed
        expires_at = extra = None
        hint = 0
        if flags:
            if flags & ~allowed:
                raise Corrupt(f"record {number + 1} has unknown flags {flags:#04x}")
            if flags & FLAG_EXPIRES:
                expires_at = unpack_expires(data, offset)[0] if offset + 8 <= end else None
                offset += 8
            if flags & FLAG_HINT:
                hint = unpack_hint(data, offset)[0] if offset + 8 <= end else 0
                offset += 8
            if flags & (FLAG_BINARY | FLAG_FRESH | FLAG_TAGS):
                fresh_until: float | None = None
                tags: tuple[str, ...] = ()
                if flags & FLAG_FRESH:
                    fresh_until = unpack_expires(data, offset)[0] if offset + 8 <= end else None
                    offset += 8
                if flags & FLAG_TAGS:
                    tags, offset = _decode_tags(data, offset, end, number + 1)
                extra = Extra(bool(flags & FLAG_BINARY), fresh_until, tags)
        key_end = offset + key_size
        value_end = key_end + value_size
        if value_end > end:
            raise Truncated(f"the file ends in record {number + 1} of {count}")
        if key_size == 0:
            raise Corrupt(f"record {number + 1} has an empty key")
        try:
            key = data[offset:key_end].decode("utf-8")
        except UnicodeDecodeError:
            raise Corrupt(f"the key of record {number + 1} is not UTF-8") from None
        append((key, data[key_end:value_end], expires_at, hint, extra))
        offset = value_end
    return records, offset


def read_file(path: str | os.PathLike[str]) -> Snapshot:
    """The snapshot in ``path``, checked whole (see the module docstring);
    SnapshotError (or OSError) when it cannot be used."""
    data = Path(path).read_bytes()
    if not data:
        raise Truncated("the file is empty")
    if len(data) < _PRELUDE.size and MAGIC.startswith(data[: len(MAGIC)]):
        raise Truncated(f"the file is {len(data)} bytes, shorter than the snapshot prelude")
    if len(data) < _PRELUDE.size or not data.startswith(MAGIC):
        raise NotASnapshot("not a CacheGrid snapshot (its first bytes are not the snapshot magic)")
    _, version, header_size = _PRELUDE.unpack_from(data)
    if version > FORMAT_VERSION:
        raise FutureVersion(
            f"written in snapshot format {version}; this CacheGrid reads up to format "
            f"{FORMAT_VERSION} (upgrade CacheGrid to load it)"
        )
    if version not in ALLOWED_FLAGS:
        raise Corrupt(f"unknown snapshot format {version}")
    header_end = _PRELUDE.size + header_size
    if header_size > MAX_HEADER_SIZE:
        raise Corrupt(f"the header claims {header_size} bytes")
    if header_end + CHECKSUM_SIZE > len(data):
        raise Truncated(f"the file is {len(data)} bytes, shorter than its header and checksum")
    try:
        header = json.loads(data[_PRELUDE.size : header_end])
        count = header["entries"]
        if not isinstance(header, dict) or count.__class__ is not int or count < 0:
            raise ValueError
    except (ValueError, KeyError, TypeError):
        raise Corrupt("the header is not the JSON document a snapshot starts with") from None
    end = len(data) - CHECKSUM_SIZE
    checksum_ok = hashlib.sha256(memoryview(data)[:end]).digest() == data[end:]
    if not checksum_ok:
        # Tell a cut file from a damaged one: do the records run past the end?
        # (Records that reach into the last 32 bytes: the checksum was cut off.)
        try:
            _, records_end = _parse_records(data, header_end, len(data), count, ALLOWED_FLAGS[version])
        except Corrupt:
            records_end = end
        except Truncated as error:
            raise Truncated(f"the checksum does not match and {error}: the file was cut short") from None
        if records_end > end:
            raise Truncated(f"the file ends {records_end + CHECKSUM_SIZE - len(data)} bytes before its checksum does")
        raise Corrupt("the checksum does not match the content")
    records, offset = _parse_records(data, header_end, end, count, ALLOWED_FLAGS[version])
    if offset != end:
        raise Corrupt(f"{end - offset} bytes follow the last of the {count} records")
    return Snapshot(header, records, len(data))


def move_aside(path: Path) -> Path:
    """Rename a file that cannot be loaded to ``<name>.bad-<UTC time>``."""
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    aside = path.with_name(f"{path.name}.bad-{stamp}")
    number = 1
    while aside.exists():
        number += 1
        aside = path.with_name(f"{path.name}.bad-{stamp}-{number}")
    os.replace(path, aside)
    return aside


def remove_partial_writes(path: Path) -> list[Path]:
    """Remove the temporary files of writes that never finished (a crash or
    kill mid-write): they never were snapshots. Returns what was removed."""
    removed = []
    prefix = f".{path.name}.tmp-"
    if path.parent.is_dir():
        for candidate in path.parent.iterdir():
            if candidate.name.startswith(prefix) and candidate.name[len(prefix) :].isdigit():
                candidate.unlink(missing_ok=True)
                removed.append(candidate)
    return removed


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
