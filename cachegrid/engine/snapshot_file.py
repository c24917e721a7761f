"""The snapshot file format: writing a file atomically and reading one back,
checked whole (``write_file``, ``read_file``), and the errors a bad file
raises. snapshot.py loads files at start and writes them in the background.

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
                 COMPRESSED u32 the value's original size: the value is
                               the gzip-compressed bytes the cache held, kept
                               as they are (version 3)
    key, value

Records come coldest first (the policy's next victim first), so inserting
them in file order rebuilds the policy's order. TAGS joined version 2
before it was released; COMPRESSED is version 3's (a server that reads up to
version 2 refuses such a file as a newer format, moves it aside and starts
empty: it never takes compressed bytes for values). A later field is a
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
"""

from __future__ import annotations

import hashlib
import json
import os
import struct
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .entry import Extra
from .restore import Record

MAGIC = b"\x89CGSNAP\n"
FORMAT_VERSION = 3
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
FLAG_COMPRESSED = 0x20
FIELDS: tuple[tuple[int, str, struct.Struct | None], ...] = (
    (FLAG_EXPIRES, "expires_at", struct.Struct("<d")),
    (FLAG_HINT, "hint", struct.Struct("<Q")),
    (FLAG_BINARY, "binary", None),
    (FLAG_FRESH, "fresh_until", struct.Struct("<d")),
    (FLAG_TAGS, "tags", None),  # variable length: a count, then length-prefixed names
    (FLAG_COMPRESSED, "original_size", struct.Struct("<I")),
)
# The flag bits each format version may use.
_V2_FLAGS = FLAG_EXPIRES | FLAG_HINT | FLAG_BINARY | FLAG_FRESH | FLAG_TAGS
ALLOWED_FLAGS = {1: FLAG_EXPIRES | FLAG_HINT, 2: _V2_FLAGS, 3: _V2_FLAGS | FLAG_COMPRESSED}
_EXPIRES = _FRESH = struct.Struct("<d")
_HINT = struct.Struct("<Q")
_ORIGINAL = struct.Struct("<I")
_WRITE_CHUNK = 1 << 20  # bytes gathered before each write()


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


# -- the format ---------------------------------------------------------------------


def encode_record(key: str, value: bytes, expires_at: float | None, hint: int, extra: Extra | None = None) -> bytes:
    key_bytes = key.encode("utf-8", "surrogatepass")
    flags = (FLAG_EXPIRES if expires_at is not None else 0) | (FLAG_HINT if hint else 0)
    if extra is not None:
        flags |= (FLAG_BINARY if extra.binary else 0) | (FLAG_FRESH if extra.fresh_until is not None else 0)
        flags |= FLAG_TAGS if extra.tags else 0
        flags |= FLAG_COMPRESSED if extra.original_size is not None else 0
    parts = [_RECORD.pack(flags, len(key_bytes), len(value))]
    if expires_at is not None:
        parts.append(_EXPIRES.pack(expires_at))
    if hint:
        parts.append(_HINT.pack(hint))
    if flags & FLAG_FRESH:
        parts.append(_FRESH.pack(extra.fresh_until))  # type: ignore[union-attr]
    if flags & FLAG_TAGS:
        parts.append(encode_tags(extra.tags))  # type: ignore[union-attr]
    if flags & FLAG_COMPRESSED:
        parts.append(_ORIGINAL.pack(extra.original_size))  # type: ignore[union-attr]
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
            if flags & (FLAG_BINARY | FLAG_FRESH | FLAG_TAGS | FLAG_COMPRESSED):
                fresh_until: float | None = None
                tags: tuple[str, ...] = ()
                original_size: int | None = None
                if flags & FLAG_FRESH:
                    fresh_until = unpack_expires(data, offset)[0] if offset + 8 <= end else None
                    offset += 8
                if flags & FLAG_TAGS:
                    tags, offset = _decode_tags(data, offset, end, number + 1)
                if flags & FLAG_COMPRESSED:
                    original_size = _ORIGINAL.unpack_from(data, offset)[0] if offset + 4 <= end else None
                    offset += 4
                extra = Extra(bool(flags & FLAG_BINARY), fresh_until, tags, original_size)
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
