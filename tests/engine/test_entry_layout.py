"""The entry layout: a flags byte and optional fields inside each entry's blob
(store.py, docs/entry-layout.md), for every policy."""

from __future__ import annotations

import hashlib
import struct
from pathlib import Path

import pytest

from cachegrid.engine import POLICIES, Cache, InvalidTTL, NotAnInteger, PreconditionFailed
from cachegrid.engine.snapshot import CHECKSUM_SIZE, Snapshotter, read_file
from cachegrid.engine.store import (
    FLAG_EXPIRES,
    FOREVER,
    MAX_TAG_REFS,
    TIMED_SIZE,
    TRAILER_SIZE,
    encode_fields,
    entry_of,
    expires_at_of,
    slot_in,
    value_of,
)

from .conftest import FakeClock

# Raw (tag id, generation) refs are a field of the store only (Cache takes
# tag names), so the tests that write them go through cache._store.
TAGS = ((1, 7), (2**32 - 1, 0), (5, 2**32 - 1))


@pytest.fixture(params=sorted(POLICIES))
def cache(request: pytest.FixtureRequest, clock: FakeClock) -> Cache:
    return Cache(request.param, max_size=1000, clock=clock)


@pytest.mark.parametrize("binary", [False, True])
@pytest.mark.parametrize("expires_at", [None, 99.5])
@pytest.mark.parametrize("fresh_until", [None, 1234.5])
@pytest.mark.parametrize("tag_refs", [(), TAGS[:1], TAGS])
@pytest.mark.parametrize("value", [b"", b"{}", bytes(range(256))])
def test_every_combination_of_fields_reads_back(binary, expires_at, fresh_until, tag_refs, value) -> None:
    flags, fields = encode_fields(fresh_until, tag_refs)
    trailer = struct.pack("<IB", 17, flags | binary | (FLAG_EXPIRES if expires_at else 0))
    expiry = b"" if expires_at is None else struct.pack("<d", expires_at)
    blob = value + fields + expiry + trailer
    entry = entry_of(blob, 42)
    assert len(trailer) == TRAILER_SIZE and len(expiry + trailer) == (TIMED_SIZE if expires_at else TRAILER_SIZE)
    assert value_of(blob) == entry.value == value
    assert (entry.version, entry.expires_at, entry.binary) == (42, expires_at, binary)
    assert (entry.fresh_until, entry.tag_refs) == (fresh_until, tag_refs)
    assert slot_in(blob) == 17 and expires_at_of(blob) == (FOREVER if expires_at is None else expires_at)


def test_a_plain_entry_has_no_optional_bytes(cache: Cache) -> None:
    cache.set("k", b"[1]")
    blob = cache._store._data["k"]
    assert len(blob) == 3 + TRAILER_SIZE and blob[-1] == 0
    entry = cache.get_entry("k")
    assert (entry.binary, entry.fresh_until, entry.tag_refs) == (False, None, ())


def test_the_binary_flag_goes_with_the_value(cache: Cache) -> None:
    cache.set("k", b"\x00\xff", binary=True)
    assert cache.get("k") == b"\x00\xff" and cache.get_entry("k").binary
    assert cache.peek_entry("k").binary
    cache.set("k", b'"text"')  # a plain write replaces the type too
    assert not cache.get_entry("k").binary


def test_a_stale_window_moves_the_expiry_and_keeps_the_ttls_end(cache: Cache, clock: FakeClock) -> None:
    start = clock.now
    cache.set("k", b"1", ttl=10, stale=5)
    entry = cache.get_entry("k")
    assert (entry.fresh_until, entry.expires_at) == (start + 10, start + 15)
    assert not entry.is_stale(clock.now)
    clock.tick(12)
    entry = cache.get_entry("k")
    assert entry.value == b"1" and entry.is_stale(clock.now)  # the store keeps it; the reader decides
    clock.tick(3)
    assert cache.get("k") is None


def test_a_stale_window_of_zero_stores_nothing(cache: Cache) -> None:
    cache.set("k", b"1", ttl=10, stale=0)
    assert cache.get_entry("k").fresh_until is None


@pytest.mark.parametrize("stale", [-1, float("inf"), float("nan"), 10**11, "5", True])
def test_a_bad_stale_window_is_refused_and_changes_nothing(cache: Cache, stale) -> None:
    cache.set("k", b"old")
    with pytest.raises(InvalidTTL):
        cache.set("k", b"new", ttl=10, stale=stale)
    assert cache.get("k") == b"old" and cache.get_entry("k").fresh_until is None


def test_a_stale_window_needs_a_ttl(cache: Cache) -> None:
    with pytest.raises(InvalidTTL, match="needs a ttl"):
        cache.set("k", b"1", stale=5)
    assert cache.get("k") is None


def test_tag_refs_are_kept_and_not_part_of_the_value(cache: Cache) -> None:
    cache._store.set("k", b'{"a":1}', ttl=60, stale=30, tag_refs=TAGS)
    assert cache.get("k") == b'{"a":1}'
    entry = cache.get_entry("k")
    assert entry.tag_refs == TAGS and entry.fresh_until is not None


def test_too_many_tag_refs_are_refused(cache: Cache) -> None:
    with pytest.raises(ValueError, match=f"at most {MAX_TAG_REFS}"):
        cache._store.set("k", b"1", tag_refs=[(n, 0) for n in range(MAX_TAG_REFS + 1)])
    assert cache.get("k") is None


def test_the_optional_fields_are_charged_with_the_value(cache: Cache) -> None:
    cache.set("plain", b"1", ttl=60)
    plain = cache.memory_usage
    cache._store.set("fields", b"1", ttl=60, stale=10, tag_refs=TAGS)  # same key length, same value
    assert cache.memory_usage - plain == plain + 1 + 8 + 1 + 8 * len(TAGS)
    cache.delete("fields")
    cache.delete("plain")
    assert cache.memory_usage == 0


def test_set_many_gives_every_item_the_same_fields(cache: Cache, clock: FakeClock) -> None:
    cache._store.set_many({"a": b"\x01", "b": b"\x02"}, ttl=10, binary=True, stale=5, tag_refs=TAGS[:2])
    for key in "ab":
        entry = cache.get_entry(key)
        assert entry.binary and entry.fresh_until == clock.now + 10 and entry.tag_refs == TAGS[:2]


def test_incr_keeps_the_fields_and_refuses_a_binary_value(cache: Cache) -> None:
    cache._store.set("n", b"41", ttl=10, stale=5, tag_refs=TAGS[:1])
    assert cache.incr("n") == 42
    entry = cache.get_entry("n")
    assert entry.value == b"42" and entry.tag_refs == TAGS[:1] and entry.fresh_until is not None
    cache.set("b", b"41", binary=True)
    with pytest.raises(NotAnInteger, match="binary"):
        cache.incr("b")
    assert cache.get("b") == b"41"


def test_touch_keeps_the_stale_windows_length_and_persist_drops_it(cache: Cache, clock: FakeClock) -> None:
    cache._store.set("k", b"1", ttl=10, stale=5, binary=True, tag_refs=TAGS[:1])
    version = cache.get_entry("k").version
    clock.tick(3)
    assert cache.touch("k", 100)
    entry = cache.get_entry("k")
    assert (entry.fresh_until, entry.expires_at) == (clock.now + 100, clock.now + 105)
    assert entry.binary and entry.tag_refs == TAGS[:1] and entry.version == version
    assert cache.persist("k")
    entry = cache.get_entry("k")
    assert (entry.fresh_until, entry.expires_at, entry.binary, entry.tag_refs) == (None, None, True, TAGS[:1])


def test_a_snapshot_keeps_the_binary_flag_and_the_stale_window(tmp_path: Path) -> None:
    cache = Cache("lru")
    cache.set("bin", bytes(range(256)), binary=True)
    cache.set("stale", b"1", ttl=100, stale=50)
    cache.set("plain", b"2")
    path = tmp_path / "cache.snap"
    Snapshotter(cache, path).write_now()
    restored = Cache("lru")
    Snapshotter(restored, path).load()
    assert restored.get_entry("bin").binary and restored.get("bin") == bytes(range(256))
    entry = restored.get_entry("stale")
    assert entry.fresh_until == pytest.approx(restored.clock() + 100, abs=1)
    assert entry.expires_at == pytest.approx(restored.clock() + 150, abs=1)
    plain = restored.get_entry("plain")
    assert (plain.value, plain.binary, plain.fresh_until, plain.expires_at) == (b"2", False, None, None)


def test_a_version_1_file_is_still_read(tmp_path: Path) -> None:
    cache = Cache("lru")
    cache.set("a", b"1", ttl=100)
    cache.set("b", b"2")
    path = tmp_path / "cache.snap"
    Snapshotter(cache, path).write_now()
    data = bytearray(path.read_bytes()[:-CHECKSUM_SIZE])
    struct.pack_into("<H", data, 8, 1)  # what version 1 wrote: the same records, no new flag in use
    path.write_bytes(bytes(data) + hashlib.sha256(data).digest())
    records = read_file(path).records
    assert [(key, value, extra) for key, value, _, _, extra in records] == [("a", b"1", None), ("b", b"2", None)]


def test_versions_stay_exact_across_the_32_bit_line(cache: Cache) -> None:
    store = cache._store
    store._version = 2**32 - 2  # as after four billion writes
    versions = [cache.set(f"k{i}", b"1").version for i in range(4)]
    assert versions == [2**32 - 1, 2**32, 2**32 + 1, 2**32 + 2]
    assert [cache.get_entry(f"k{i}").version for i in range(4)] == versions
    assert cache.set("k0", b"2", if_match=[versions[0]]).version == 2**32 + 3


def test_an_entry_older_than_2_to_the_32_writes_reads_as_a_later_version_never_an_earlier_one(cache: Cache) -> None:
    store = cache._store
    old = cache.set("old", b"1").version
    etag_seen = cache.get_entry("old").version
    store._version += 2**32 + 5  # four billion writes later, "old" untouched
    now = cache.get_entry("old").version
    assert now > etag_seen and now <= store._version and (now - old) % 2**32 == 0
    with pytest.raises(PreconditionFailed):  # the ETag a client kept matches no more
        cache.set("old", b"2", if_match=[etag_seen])
    assert cache.get("old") == b"1"
    assert cache.set("old", b"2", if_match=[now]).version == store._version
