"""Snapshots: the file format, the atomic write, the load and every bad file.

The format and the load run in this process (no fork here); the background
writer, which forks, is in test_snapshot_background.py.
"""

from __future__ import annotations

import json
import logging
import struct
import time
from pathlib import Path

import pytest

from cachegrid.engine import POLICIES, Cache
from cachegrid.engine.snapshot import (
    CHECKSUM_SIZE,
    FORMAT_VERSION,
    MAGIC,
    Corrupt,
    FutureVersion,
    NotASnapshot,
    Snapshotter,
    Truncated,
    read_file,
    write_file,
)

WALL = 1_800_000_000.0  # a wall-clock time for the tests that pass their own


def filled(policy: str = "lru", count: int = 50, **limits: int) -> Cache:
    cache = Cache(policy, max_size=limits.pop("max_size", 1000), **limits)
    for number in range(count):
        cache.set(f"k{number}", b"v" * (number % 7 + 1), ttl=600 if number % 3 == 0 else None)
    for number in range(0, count, 4):  # some reads, so recency and counts differ from insertion
        cache.get(f"k{number}")
        cache.get(f"k{number}")
    return cache


def exported(cache: Cache) -> list[tuple[str, bytes, float | None, int]]:
    return list(cache._store.export_entries(WALL))


def snapshot_of(cache: Cache, path: Path) -> Path:
    Snapshotter(cache, path, producer="test").write_now()
    return path


def keys_in_order(cache: Cache) -> list[str]:
    return [key for key, *_ in exported(cache)]


# -- round trips -----------------------------------------------------------------


@pytest.mark.parametrize("policy", list(POLICIES))
def test_every_entry_comes_back_in_the_policys_order(policy: str, tmp_path: Path) -> None:
    cache = filled(policy)
    path = snapshot_of(cache, tmp_path / "cache.snap")
    restored = Cache(policy, max_size=1000)
    report = Snapshotter(restored, path).load()
    assert (report.result, report.entries) == ("ok", 50)
    assert keys_in_order(restored) == keys_in_order(cache)
    for key, value, *_ in exported(cache):
        assert restored.get(key) == value


@pytest.mark.parametrize("policy", list(POLICIES))
def test_the_next_victims_are_the_same_after_a_restore(policy: str, tmp_path: Path) -> None:
    cache = filled(policy, max_size=50)
    path = snapshot_of(cache, tmp_path / "cache.snap")
    restored = Cache(policy, max_size=50)
    Snapshotter(restored, path).load()
    if not cache._store.evicts:
        return  # noeviction has no victims; its order is the insertion order, checked above
    for number in range(10):  # each new key evicts one: the same one in both
        cache.set(f"new{number}", b"x")
        restored.set(f"new{number}", b"x")
        assert keys_in_order(restored) == keys_in_order(cache)


def test_lfu_counts_survive_a_restore(tmp_path: Path) -> None:
    cache = Cache("lfu", max_size=3)
    for key in ("hot", "warm", "cold"):
        cache.set(key, b"x")
    for _ in range(5):
        cache.get("hot")
    cache.get("warm")
    path = snapshot_of(cache, tmp_path / "cache.snap")
    restored = Cache("lfu", max_size=3)
    Snapshotter(restored, path).load()
    assert [hint for _, _, _, hint, _ in exported(restored)] == [1, 2, 6]
    restored.set("new", b"x")  # evicts the least used, "cold"; then "new" (1 use) is next
    restored.set("newer", b"x")
    assert sorted(key for key, *_ in exported(restored)) == ["hot", "newer", "warm"]


def test_ttls_are_kept_as_wall_clock_expiry_and_expired_ones_are_dropped(tmp_path: Path) -> None:
    cache = Cache("lru")
    cache.set("short", b"1", ttl=10)
    cache.set("long", b"2", ttl=1000)
    cache.set("forever", b"3")
    records = exported(cache)
    by_key = {key: expires for key, _, expires, *_ in records}
    assert by_key["forever"] is None
    assert by_key["long"] == pytest.approx(WALL + 1000, abs=0.5)

    # Restored 100 s (of wall clock) later: "short" ran out while down.
    restored = Cache("lru")
    assert restored.restore(records, WALL + 100) == (2, 1, 0)
    assert restored.get("short") is None
    assert restored.ttl("long") == pytest.approx(900, abs=0.5)
    assert restored.ttl("forever") is None


def test_a_new_version_is_drawn_for_each_restored_entry(tmp_path: Path) -> None:
    cache = filled()
    restored = Cache("lru")
    restored.set("before", b"x")
    first = restored.get_entry("before").version
    restored.restore(exported(cache), WALL)
    versions = [restored.get_entry(key).version for key, *_ in exported(cache)]
    assert len(set(versions)) == len(versions) and min(versions) > first
    assert restored.stats()["sets"] == 1  # a restore counts no set


def test_smaller_max_size_keeps_the_hottest_entries(tmp_path: Path) -> None:
    cache = filled("lru", count=50)
    hottest = keys_in_order(cache)[-20:]
    path = snapshot_of(cache, tmp_path / "cache.snap")
    restored = Cache("lru", max_size=20)
    report = Snapshotter(restored, path).load()
    assert (report.entries, report.left_out) == (20, 30)
    assert keys_in_order(restored) == hottest
    assert restored.stats()["evictions"] == 0


@pytest.mark.parametrize("policy", ["lru", "noeviction"])
def test_smaller_max_memory_keeps_the_hottest_that_fit(policy: str, tmp_path: Path) -> None:
    cache = Cache(policy, max_size=1000)
    for number in range(100):
        cache.set(f"k{number:03d}", b"v" * 100)
    path = snapshot_of(cache, tmp_path / "cache.snap")
    charge = cache.memory_usage // 100
    restored = Cache(policy, max_size=1000, max_memory=charge * 30 + charge // 2)
    report = Snapshotter(restored, path).load()
    assert (report.entries, report.left_out) == (30, 70)
    assert keys_in_order(restored) == keys_in_order(cache)[-30:]


def test_values_over_a_smaller_max_value_size_are_left_out(tmp_path: Path) -> None:
    cache = Cache("lru")
    cache.set("small", b"x" * 10)
    cache.set("big", b"x" * 5000)
    path = snapshot_of(cache, tmp_path / "cache.snap")
    restored = Cache("lru", max_value_size=1000)
    report = Snapshotter(restored, path).load()
    assert (report.entries, report.left_out) == (1, 1)
    assert restored.get("small") == b"x" * 10 and restored.get("big") is None


def test_a_snapshot_of_another_policy_loads_in_its_order(tmp_path: Path) -> None:
    cache = filled("lfu")
    path = snapshot_of(cache, tmp_path / "cache.snap")
    restored = Cache("lru", max_size=1000)
    report = Snapshotter(restored, path).load()
    assert report.result == "ok" and report.policy == "lfu"
    assert keys_in_order(restored) == keys_in_order(cache)
    assert all(hint == 0 for _, _, _, hint, _ in exported(restored))


def test_values_up_to_max_value_size_and_keys_of_any_character(tmp_path: Path) -> None:
    cache = Cache("lru", max_value_size=64 * 1024, max_key_length=250)
    keys = [
        "plain",
        "with space",
        "new\nline",
        "tab\tand\x00nul",
        "ünïcødé",
        "日本語",
        "emoji 🎉",
        "/slash?&=#%",
        "k" * 250,
    ]
    for number, key in enumerate(keys):
        cache.set(key, bytes([number]) * (64 * 1024 if number == 0 else number + 1))
    path = snapshot_of(cache, tmp_path / "cache.snap")
    restored = Cache("lru", max_value_size=64 * 1024, max_key_length=250)
    assert Snapshotter(restored, path).load().entries == len(keys)
    for key, value, *_ in exported(cache):
        assert restored.get(key) == value


def test_an_empty_cache_round_trips(tmp_path: Path) -> None:
    path = snapshot_of(Cache("lru"), tmp_path / "cache.snap")
    assert read_file(path).header["entries"] == 0
    report = Snapshotter(Cache("lru"), path).load()
    assert (report.result, report.entries) == ("ok", 0)


def test_the_header_names_format_producer_policy_limits_and_count(tmp_path: Path) -> None:
    cache = filled("lfu", max_size=500)
    path = snapshot_of(cache, tmp_path / "cache.snap")
    data = path.read_bytes()
    assert data.startswith(MAGIC)
    assert struct.unpack_from("<H", data, len(MAGIC))[0] == FORMAT_VERSION
    header = read_file(path).header
    assert header["cachegrid"] == "test" and header["policy"] == "lfu"
    assert header["limits"]["max_size"] == 500 and header["entries"] == 50
    assert header["written_at"] == pytest.approx(time.time(), abs=60)


# -- the atomic write --------------------------------------------------------------


def test_a_write_that_fails_midway_leaves_the_previous_snapshot(tmp_path: Path) -> None:
    path = snapshot_of(filled(), tmp_path / "cache.snap")
    before = path.read_bytes()

    def broken():
        yield "a", b"1", None, 0, None
        raise OSError("disk on fire")

    with pytest.raises(OSError, match="disk on fire"):
        write_file(path, broken(), 2, {})
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cache.snap"]


def test_a_write_with_fewer_records_than_announced_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "cache.snap"
    with pytest.raises(RuntimeError, match="1 records were written, not the 2"):
        write_file(path, iter([("a", b"1", None, 0, None)]), 2, {})
    assert not path.exists()


def test_the_partial_file_of_an_interrupted_write_is_removed_at_load(tmp_path: Path, caplog) -> None:
    path = snapshot_of(filled(), tmp_path / "cache.snap")
    partial = tmp_path / ".cache.snap.tmp-4242"
    partial.write_bytes(b"half a snapshot")
    caplog.set_level(logging.INFO, "cachegrid.snapshot")
    assert Snapshotter(Cache("lru"), path).load().entries == 50
    assert not partial.exists()
    assert "removed .cache.snap.tmp-4242" in caplog.text


def test_a_write_replaces_the_file_without_leaving_temporary_files(tmp_path: Path) -> None:
    path = snapshot_of(filled(count=5), tmp_path / "cache.snap")
    snapshot_of(filled(count=9), path)
    assert read_file(path).header["entries"] == 9
    assert [p.name for p in tmp_path.iterdir()] == ["cache.snap"]


# -- bad files ---------------------------------------------------------------------


def good_file(tmp_path: Path) -> Path:
    return snapshot_of(filled(), tmp_path / "cache.snap")


def flip(data: bytes, position: int) -> bytes:
    return data[:position] + bytes([data[position] ^ 0x40]) + data[position + 1 :]


@pytest.mark.parametrize("where", ["header", "first record", "middle", "last value byte", "checksum"])
def test_one_corrupt_byte_anywhere_is_detected(where: str, tmp_path: Path) -> None:
    path = good_file(tmp_path)
    data = path.read_bytes()
    header_end = 14 + struct.unpack_from("<I", data, 10)[0]
    position = {
        "header": 20,
        "first record": header_end + 1,
        "middle": len(data) // 2,
        "last value byte": len(data) - CHECKSUM_SIZE - 1,
        "checksum": len(data) - 3,
    }[where]
    path.write_bytes(flip(data, position))
    with pytest.raises((Corrupt, Truncated)):
        read_file(path)


@pytest.mark.parametrize("keep", [0, 5, 12, 40, 200, -CHECKSUM_SIZE - 1, -1])
def test_a_truncated_file_is_detected(keep: int, tmp_path: Path) -> None:
    path = good_file(tmp_path)
    data = path.read_bytes()
    path.write_bytes(data[:keep])
    with pytest.raises(Truncated):
        read_file(path)


def test_garbage_and_a_foreign_file_are_not_snapshots(tmp_path: Path) -> None:
    path = tmp_path / "cache.snap"
    for content in (b"\x00" * 4096, b"SQLite format 3\x00" + bytes(100), json.dumps({"a": 1}).encode()):
        path.write_bytes(content)
        with pytest.raises(NotASnapshot, match="not a CacheGrid snapshot"):
            read_file(path)


def test_a_future_format_version_is_refused(tmp_path: Path) -> None:
    path = good_file(tmp_path)
    data = bytearray(path.read_bytes())
    struct.pack_into("<H", data, len(MAGIC), FORMAT_VERSION + 1)
    path.write_bytes(bytes(data))
    with pytest.raises(
        FutureVersion, match=f"format {FORMAT_VERSION + 1}; this CacheGrid reads up to format {FORMAT_VERSION}"
    ):
        read_file(path)


def test_unknown_record_flags_are_corruption(tmp_path: Path) -> None:
    import hashlib

    path = tmp_path / "cache.snap"
    write_file(path, iter([("a", b"1", None, 0, None)]), 1, {})
    data = bytearray(path.read_bytes()[:-CHECKSUM_SIZE])
    header_end = 14 + struct.unpack_from("<I", data, 10)[0]
    data[header_end] = 0x80  # a flag no version 1 file may carry, with a valid checksum
    path.write_bytes(bytes(data) + hashlib.sha256(data).digest())
    with pytest.raises(Corrupt, match="unknown flags 0x80"):
        read_file(path)


BAD_FILES = {
    "corrupt byte": (lambda data: flip(data, len(data) - CHECKSUM_SIZE - 1), "checksum does not match the content"),
    "truncated": (lambda data: data[: len(data) // 2], "the file ends in record"),
    "garbage": (lambda data: b"\xde\xad\xbe\xef" * 1000, "not a CacheGrid snapshot"),
    "future version": (
        lambda data: data[:8] + struct.pack("<H", FORMAT_VERSION + 7) + data[10:],
        "upgrade CacheGrid to load it",
    ),
}


@pytest.mark.parametrize("case", list(BAD_FILES))
def test_a_bad_file_starts_empty_logs_one_line_and_is_kept_aside(case: str, tmp_path: Path, caplog) -> None:
    path = good_file(tmp_path)
    damage, problem = BAD_FILES[case]
    bad = damage(path.read_bytes())
    path.write_bytes(bad)
    caplog.set_level(logging.INFO, "cachegrid.snapshot")
    cache = Cache("lru")
    report = Snapshotter(cache, path).load()
    assert report.result == "failed" and problem in report.error
    assert len(cache) == 0
    errors = [record for record in caplog.records if record.levelno >= logging.ERROR]
    assert len(errors) == 1
    line = errors[0].getMessage()
    assert str(path) in line and problem in line and "starting empty" in line and "\n" not in line
    assert not path.exists()
    aside = Path(report.moved_to)
    assert aside.parent == tmp_path and aside.name.startswith("cache.snap.bad-") and str(aside) in line
    assert aside.read_bytes() == bad  # kept whole, never deleted
    # The cache serves, and the next snapshot writes a good file again.
    cache.set("after", b"1")
    Snapshotter(cache, path).write_now()
    assert read_file(path).header["entries"] == 1


def test_two_bad_files_in_a_row_are_both_kept(tmp_path: Path) -> None:
    path = tmp_path / "cache.snap"
    moved = []
    for content in (b"garbage one", b"garbage two"):
        path.write_bytes(content)
        moved.append(Snapshotter(Cache("lru"), path).load().moved_to)
    assert moved[0] != moved[1]
    assert sorted(Path(name).read_bytes() for name in moved) == [b"garbage one", b"garbage two"]


def test_no_file_is_a_quiet_empty_start(tmp_path: Path, caplog) -> None:
    caplog.set_level(logging.INFO, "cachegrid.snapshot")
    report = Snapshotter(Cache("lru"), tmp_path / "absent.snap").load()
    assert (report.result, report.error) == ("none", None)
    assert not [record for record in caplog.records if record.levelno >= logging.WARNING]


def test_the_heartbeat_is_called_while_a_load_runs(tmp_path: Path) -> None:
    path = good_file(tmp_path)
    beats = []
    cache = Cache("lru")
    slow_restore = cache.restore

    def restore(*args):
        time.sleep(0.35)
        return slow_restore(*args)

    cache.restore = restore  # type: ignore[method-assign]
    snapshotter = Snapshotter(cache, path)
    from cachegrid.engine import snapshot

    original = snapshot._keep_beating
    snapshot._keep_beating = lambda heartbeat, stop, every=0.05: original(heartbeat, stop, every)
    try:
        snapshotter.load(heartbeat=lambda: beats.append(time.monotonic()))
    finally:
        snapshot._keep_beating = original
    assert len(beats) >= 3


def test_a_negative_interval_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="interval must be 0"):
        Snapshotter(Cache("lru"), tmp_path / "s", interval=-1)


def test_the_file_is_readable_by_its_owner_only(tmp_path: Path) -> None:
    path = snapshot_of(filled(), tmp_path / "cache.snap")
    assert path.stat().st_mode & 0o777 == 0o600
