"""Entries held compressed: the flag and the original size in the blob,
charged as held, kept by every rewrite, by batches and by snapshots."""

from __future__ import annotations

import gzip
import hashlib
import struct
from pathlib import Path

import pytest

from cachegrid.engine import POLICIES, Cache, NotAnInteger, ValueTooLarge
from cachegrid.engine.entry import ORIGINAL_SIZE, original_size_of
from cachegrid.engine.options import WriteOptions
from cachegrid.engine.snapshot import CHECKSUM_SIZE, FORMAT_VERSION, Snapshotter, read_file

ORIGINAL = b'[{"name":"Alice","age":30}]' * 200
PACKED = gzip.compress(ORIGINAL)


@pytest.fixture(params=sorted(POLICIES))
def cache(request: pytest.FixtureRequest) -> Cache:
    return Cache(request.param, max_size=1000)


def test_a_compressed_entry_carries_its_original_size_and_is_charged_as_held(cache: Cache) -> None:
    cache.write("plain1", ORIGINAL)  # (a key as long as "packed")
    plain_charge = cache.memory_usage
    cache.write("packed", PACKED, options=WriteOptions(original_size=len(ORIGINAL)))
    entry = cache.get_entry("packed")
    assert entry is not None and entry.value == PACKED and entry.original_size == len(ORIGINAL)
    assert cache.get_entry("plain1").original_size is None  # type: ignore[union-attr]
    assert cache.memory_usage - plain_charge == plain_charge - len(ORIGINAL) + len(PACKED) + ORIGINAL_SIZE
    assert original_size_of(cache._store._data["packed"]) == len(ORIGINAL)


def test_max_value_size_applies_to_the_original_size() -> None:
    cache = Cache("lru", max_value_size=1000)
    with pytest.raises(ValueTooLarge):
        cache.write("k", PACKED, options=WriteOptions(original_size=len(ORIGINAL)))
    with pytest.raises(ValueTooLarge):
        cache.write_many({"k": PACKED}, options=WriteOptions(compressed={"k": len(ORIGINAL)}))
    assert len(cache) == 0 and cache.stats()["rejected_too_large"] == 2


def test_touch_mark_stale_and_tags_keep_the_original_size(cache: Cache) -> None:
    cache.write("k", PACKED, ttl=100, options=WriteOptions(original_size=len(ORIGINAL), tags=["t"], stale=10))
    assert cache.touch("k", 200)
    assert cache.mark_stale("k", 5)
    entry = cache.peek_entry("k")
    assert entry is not None and entry.original_size == len(ORIGINAL) and entry.value == PACKED
    assert cache.tags_of(entry) == ("t",)
    with pytest.raises(NotAnInteger):
        cache.incr("k")


def test_a_batch_holds_the_items_it_is_told_are_compressed(cache: Cache) -> None:
    cache.write_many({"a": PACKED, "b": b"1"}, ttl=50, options=WriteOptions(stale=5, compressed={"a": len(ORIGINAL)}))
    a, b = cache.get_entry("a"), cache.get_entry("b")
    assert a is not None and b is not None
    assert (a.value, a.original_size, a.fresh_until is not None) == (PACKED, len(ORIGINAL), True)
    assert (b.value, b.original_size) == (b"1", None)


def test_a_snapshot_keeps_the_compressed_bytes_as_they_are(tmp_path: Path) -> None:
    cache = Cache("lru")
    cache.write("packed", PACKED, ttl=100, options=WriteOptions(original_size=len(ORIGINAL), tags=["t"]))
    cache.write("plain", b"2")
    path = tmp_path / "cache.snap"
    Snapshotter(cache, path).write_now()
    assert struct.unpack_from("<H", path.read_bytes(), 8)[0] == FORMAT_VERSION == 3
    restored = Cache("lru")
    Snapshotter(restored, path).load()
    entry = restored.get_entry("packed")
    assert entry is not None and (entry.value, entry.original_size) == (PACKED, len(ORIGINAL))
    assert restored.tags_of(entry) == ("t",)
    assert restored.memory_usage == cache.memory_usage


def test_a_version_2_file_is_still_read(tmp_path: Path) -> None:
    cache = Cache("lru")
    cache.set("a", b"1", ttl=100, stale=10)
    cache.set("b", b"\x00", binary=True)
    path = tmp_path / "cache.snap"
    Snapshotter(cache, path).write_now()
    data = bytearray(path.read_bytes()[:-CHECKSUM_SIZE])
    struct.pack_into("<H", data, 8, 2)  # what version 2 wrote: the same records, no compressed one
    path.write_bytes(bytes(data) + hashlib.sha256(data).digest())
    restored = Cache("lru")
    Snapshotter(restored, path).load()
    assert restored.get_entry("a").fresh_until is not None  # type: ignore[union-attr]
    assert restored.get_entry("b").binary  # type: ignore[union-attr]


def test_a_version_2_file_may_not_hold_a_compressed_record(tmp_path: Path) -> None:
    cache = Cache("lru")
    cache.write("packed", PACKED, options=WriteOptions(original_size=len(ORIGINAL)))
    path = tmp_path / "cache.snap"
    Snapshotter(cache, path).write_now()
    data = bytearray(path.read_bytes()[:-CHECKSUM_SIZE])
    struct.pack_into("<H", data, 8, 2)
    path.write_bytes(bytes(data) + hashlib.sha256(data).digest())
    with pytest.raises(Exception, match="unknown flags"):
        read_file(path)


def test_a_restore_under_a_smaller_max_value_size_leaves_out_what_is_too_large(tmp_path: Path) -> None:
    cache = Cache("lru")
    cache.write("packed", PACKED, options=WriteOptions(original_size=len(ORIGINAL)))
    path = tmp_path / "cache.snap"
    Snapshotter(cache, path).write_now()
    small = Cache("lru", max_value_size=1000)
    report = Snapshotter(small, path).load()
    assert len(small) == 0 and report.left_out == 1


def _counted(cache: Cache) -> tuple[int, int, int]:
    stats = cache.stats()
    return stats["compressed_entries"], stats["compressed_original_bytes"], stats["compressed_stored_bytes"]


def test_the_counters_follow_every_write_and_removal(cache: Cache) -> None:
    sized = WriteOptions(original_size=len(ORIGINAL))
    cache.write("a", PACKED, options=sized)
    cache.write("b", PACKED, ttl=100, options=WriteOptions(original_size=len(ORIGINAL), tags=["t"], stale=5))
    assert _counted(cache) == (2, 2 * len(ORIGINAL), 2 * len(PACKED))
    cache.write("a", b"1")  # replaced by a plain value
    assert _counted(cache) == (1, len(ORIGINAL), len(PACKED))
    cache.touch("b", 50)
    assert _counted(cache) == (1, len(ORIGINAL), len(PACKED))
    cache.write("a", PACKED, options=sized)
    cache.delete("b")
    assert _counted(cache) == (1, len(ORIGINAL), len(PACKED))
    cache.invalidate_tags(["t"])
    cache.clear()
    assert _counted(cache) == (0, 0, 0)
