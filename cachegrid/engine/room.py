"""Writing and removing entries: the one charge rule and the one room check.

``Room`` (between ``SlotTable``, slots.py, and ``Store``, store.py) holds the
store's mapping and everything that changes what the store holds: ``_write``
(every write, plain sets included: insert or replace), ``_remove`` (every
removal) and ``_make_room`` (the eviction rule). cachetools states the same
rule in one ``__setitem__`` around one ``popitem``; here it is these three.

Memory accounting
-----------------
Each entry is charged ``len(key as UTF-8) + len(value) + its optional
fields' bytes + entry_overhead``, plus ``ttl_overhead`` when it has a TTL
(``_charge``: ``_overheads`` is the one table of what an entry costs beyond
its key and value); ``_write`` and ``_remove`` are the only two places that
change the running sum (and the tag registry's own bytes, through
``acquire_tags`` and ``release_tags``). The overheads are per policy,
measured with tracemalloc (calibrate.py; tests/engine/test_memory.py checks
them).

The eviction rule
-----------------
Before a write that adds an entry or bytes, while the store would be over
``max_size`` entries or ``max_memory`` bytes (``_fits``):

1. reclaim expired entries, earliest expiry first (``ExpiryIndex.pop_due``);
2. then remove the policy's victim (``_victim``), counting an eviction.

A policy that does not evict (``evicts = False``) refuses the write with
``CacheFull`` at step 2 and nothing is touched. An entry that alone is larger
than ``max_memory`` is refused with ``ValueTooLarge`` before anything happens.

Insert and replace
------------------
An insert needs room for one more entry and its charge. A replacement keeps
the entry's slot and needs room only for its growth (its charge less the old
entry's). When the growth does not fit, the old entry is dropped first (so
the policy can never pick the key being written as its victim) and the new
one is inserted as a fresh entry; a policy that does not evict makes room
for the growth instead, keeping the old entry unless that room was made by
reclaiming the old entry itself (it had expired).

Changes
-------
``on_change`` (None, or a callable of (kind, key)) is told of every change
this room makes, after it is applied: "set" at the end of ``_write`` (every
write, incr, touch and mark_stale included), "expire" and "evict" where
the eviction rule, the sweeper and reads reclaim an entry. Store reports
deletes and clears; Cache reports tag invalidations and restores
(changes.py says what the daemon makes of them). With nobody listening the
cost is one ``is not None`` test per write.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterator

from .entry import (
    FLAG_COMPRESSED,
    FLAG_EXPIRES,
    FLAG_TAGS,
    FOREVER,
    PLAIN,
    TIMED_SIZE,
    TRAILER_SIZE,
    Fields,
    expires_at_of,
    fields_end,
    flags_of,
    has_ttl,
    original_in_fields,
    pack_timed,
    pack_trailer,
    slot_in,
    tag_refs_of,
    unpack_timed,
    unpack_trailer,
    value_end,
)
from .errors import CacheFull, ValueTooLarge
from .expire import ExpiryIndex
from .limits import check_key
from .slots import VERSION_MASK, SlotTable
from .tags import TagRegistry

# The flags whose entries are counted beside the charge: tags, compression.
_ACCOUNTED = FLAG_TAGS | FLAG_COMPRESSED

# The kinds of change on_change reports (changes.py has the whole list).
SET, DELETE, EXPIRE, EVICT = "set", "delete", "expire", "evict"


def stored_key_length(key: str) -> int:
    """The UTF-8 length of a key already checked and stored."""
    return len(key) if key.isascii() else len(key.encode())


class Room(SlotTable):
    """The mapping, its charges and its limits; every write and removal."""

    __slots__ = (
        "_data",
        "_expiry",
        "_memory",
        "_overheads",
        "_with_ttl",
        "clock",
        "compressed",
        "evictions",
        "expired",
        "max_key_length",
        "max_memory",
        "max_size",
        "max_value_size",
        "on_change",
        "rejected_full",
        "rejected_too_large",
        "tags",
    )

    # (Annotations only: the slots above hold them; Store.__init__ sets them.)
    max_size: int
    max_memory: int
    max_key_length: int
    max_value_size: int
    clock: Callable[[], float]
    _data: dict[str, bytes]
    _overheads: tuple[int, int]
    _memory: int
    _with_ttl: int
    _expiry: ExpiryIndex
    tags: TagRegistry
    evictions: int
    expired: int
    rejected_too_large: int
    rejected_full: int
    on_change: Callable[[str, str | None], None] | None
    # Entries held compressed: [count, their original bytes, their held bytes].
    compressed: list[int]

    def __len__(self) -> int:
        """Entries held, including expired ones not reclaimed yet."""
        return len(self._data)

    @property
    def memory_usage(self) -> int:
        return self._memory

    # -- the charge rule and the room check ---------------------------------------

    def _charge(self, size: int, has_ttl: bool) -> int:
        """What an entry of ``size`` bytes (key, value and optional fields) is charged."""
        return size + self._overheads[has_ttl]

    def _cost(self, length: int, stored: int, with_ttl: bool, old: bytes | None) -> tuple[int, int]:
        """(entries, bytes) a write of an entry (key ``length``, value and
        fields ``stored`` bytes, a TTL or not) adds in place of ``old`` (a live blob or None)."""
        charge = self._charge(length + stored, with_ttl)
        if old is None:
            return 1, charge
        return 0, charge - self._charge(length + fields_end(old), has_ttl(old))

    def _fits(self, extra_entries: int, extra_bytes: int) -> bool:
        return len(self._data) + extra_entries <= self.max_size and self._memory + extra_bytes <= self.max_memory

    def _make_room(self, extra_entries: int, extra_bytes: int, now: float) -> None:
        """The eviction rule: reclaim expired entries, then evict, until
        ``extra_entries`` more entries and ``extra_bytes`` more bytes fit."""
        data = self._data
        while not self._fits(extra_entries, extra_bytes):
            slot = self._expiry.pop_due(now)
            if slot is None:
                break
            key = self.key_at(slot)
            self._remove(key, data[key])  # type: ignore[arg-type, index]
            self.expired += 1
            if self.on_change is not None:
                self.on_change(EXPIRE, key)
        while not self._fits(extra_entries, extra_bytes):
            if not self.evicts:
                self.rejected_full += 1
                raise CacheFull(
                    f"the cache is full ({len(data)} of {self.max_size} entries, "
                    f"{self._memory} of {self.max_memory} bytes) and the policy is {self.name}"
                )
            key = self.key_at(self._victim())
            self._remove(key, data[key])  # type: ignore[arg-type, index]
            self.evictions += 1
            if self.on_change is not None:
                self.on_change(EVICT, key)

    def _check_entry(self, key: str, value: bytes) -> int:
        """Validate a key and value; return the key's length in UTF-8 bytes.
        A value over ``max_value_size`` is counted in ``rejected_too_large``
        (as is one over ``max_memory``, in ``_check_fits_alone``)."""
        length = check_key(key, self.max_key_length)
        if value.__class__ is not bytes:
            raise TypeError(f"value must be bytes, not {type(value).__name__}")
        size = len(value)
        if size > self.max_value_size:
            self.rejected_too_large += 1
            raise ValueTooLarge(size, self.max_value_size)
        return length

    def _check_fits_alone(self, length: int, stored: int, has_ttl: bool) -> None:
        """ValueTooLarge (counted) if the entry alone (key ``length``, value
        and optional fields ``stored`` bytes) exceeds ``max_memory``: it is
        refused, never stored by evicting everything else."""
        charge = self._charge(length + stored, has_ttl)
        if charge > self.max_memory:
            self.rejected_too_large += 1
            raise ValueTooLarge(charge, self.max_memory, "max_memory")

    # -- the live entry -----------------------------------------------------------------

    def _live(self, key: str, now: float | None = None) -> bytes | None:
        """The blob under ``key`` if it has not expired (an expired one is
        removed on the spot). Counts nothing and changes no recency."""
        blob = self._data.get(key)
        if blob is None:
            return None
        flags = flags_of(blob)
        if flags & FLAG_TAGS and not self.tags.current(tag_refs_of(blob)):
            self._drop_invalidated(key, blob)
            return None
        if flags & FLAG_EXPIRES and expires_at_of(blob) <= (self.clock() if now is None else now):
            self._remove(key, blob)
            self.expired += 1
            if self.on_change is not None:
                self.on_change(EXPIRE, key)
            return None
        return blob

    # -- the one write path ---------------------------------------------------------

    def _write(
        self,
        key: str,
        length: int,
        value: bytes,
        expires_at: float,
        old: bytes | None,
        fields: Fields = PLAIN,
        version: int | None = None,
    ) -> int:
        """Store ``value`` under ``key`` (``length``: its UTF-8 length) in place
        of ``old`` (the live blob, or None) and return the version (``version``,
        or a new one): the one write path of the store, plain sets included.
        The key and value were checked by ``_check_entry``; ``fields`` are the
        entry's optional fields (``encode_fields``), charged with the value."""
        flags, data = fields
        size = length + len(value) + len(data)
        has_ttl = expires_at != FOREVER
        charge = size + self._overheads[has_ttl]  # PERF: _charge, written out (every write)
        if charge > self.max_memory:
            self._check_fits_alone(length, size - length, has_ttl)
        if old is not None:
            # PERF: old's trailer decoded here (slot_in, expires_at_of,
            # fields_end of entry.py, written out: every replacement).
            if old[-1] & FLAG_EXPIRES:
                old_expires_at, slot, _ = unpack_timed(old, len(old) - TIMED_SIZE)
                old_size, old_has_ttl = length + len(old) - TIMED_SIZE, True
            else:
                slot = unpack_trailer(old, len(old) - TRAILER_SIZE)[0]
                old_expires_at, old_size, old_has_ttl = FOREVER, length + len(old) - TRAILER_SIZE, False
            growth = charge - old_size - self._overheads[old_has_ttl]
            if self._memory + growth <= self.max_memory or self._room_to_grow(key, old, growth):
                # A replacement: the entry keeps its slot.
                if version is None:  # drawn only once the write can no longer fail
                    self._version += 1
                    version = self._version
                self._versions[slot] = version & VERSION_MASK
                # PERF: entry.py's trailer(), written out.
                end = pack_timed(expires_at, slot, flags | FLAG_EXPIRES) if has_ttl else pack_trailer(slot, flags)
                self._data[key] = self._with_fields(value, data, flags, end) if data else value + end
                self._memory += growth
                if old[-1] & _ACCOUNTED:
                    if old[-1] & FLAG_TAGS:
                        self._memory -= self.tags.release(tag_refs_of(old))
                    if old[-1] & FLAG_COMPRESSED:
                        self._uncount_compressed(old)
                self._on_update(slot, old_size, size)
                if has_ttl != old_has_ttl:
                    self._with_ttl += has_ttl - old_has_ttl
                if has_ttl and expires_at != old_expires_at:
                    self._expiry.add(expires_at, slot, self._with_ttl)
                if self.on_change is not None:
                    self.on_change(SET, key)
                return version
        # An insert. PERF: the room check (not _fits(1, charge)) written out.
        if len(self._data) >= self.max_size or self._memory + charge > self.max_memory:
            self._make_room(1, charge, self.clock())
        if version is None:  # drawn only once the write can no longer fail
            self._version += 1
            version = self._version
        slot = self._take_slot(key)
        self._versions[slot] = version & VERSION_MASK
        end = pack_timed(expires_at, slot, flags | FLAG_EXPIRES) if has_ttl else pack_trailer(slot, flags)
        self._data[key] = self._with_fields(value, data, flags, end) if data else value + end
        self._memory += charge
        self._on_insert(slot, size)
        if has_ttl:
            self._with_ttl += 1
            self._expiry.add(expires_at, slot, self._with_ttl)
        if self.on_change is not None:
            self.on_change(SET, key)
        return version

    def _room_to_grow(self, key: str, old: bytes, growth: int) -> bool:
        """Make room for a replacement that grows by ``growth`` bytes past
        ``max_memory``: True when the old entry stays (the growth fits now),
        False when it is gone and the write becomes an insert."""
        if self.evicts:
            self._remove(key, old)  # so that the policy cannot pick it as its victim
            return False
        self._make_room(0, growth, self.clock())
        # Making room may have reclaimed the old entry itself (it expired meanwhile).
        return self._data.get(key) is old

    def _rewrite(
        self, key: str, value: bytes, expires_at: float, old: bytes | None, fields: Fields, version: int | None = None
    ) -> None:
        """``_write`` of an entry that keeps the tag refs of ``old`` (incr,
        expire, mark_stale): a write gives back the old entry's counts, so
        they are taken again first."""
        length = self._check_entry(key, value)
        refs = tag_refs_of(old) if old is not None and fields[0] & FLAG_TAGS else ()
        if refs:
            self.tags.acquire_refs(refs)
        try:
            self._write(key, length, value, expires_at, old, fields, version=version)
        except BaseException:
            self.release_tags(refs)
            raise

    # -- removal ----------------------------------------------------------------------

    def _remove(self, key: str, blob: bytes) -> None:
        # PERF: the trailer decoded here (slot_in, has_ttl, fields_end of
        # entry.py, written out: every eviction, expiry and delete).
        slot, flags = unpack_trailer(blob, len(blob) - TRAILER_SIZE)
        if flags & _ACCOUNTED:
            if flags & FLAG_TAGS:
                self._memory -= self.tags.release(tag_refs_of(blob))
            if flags & FLAG_COMPRESSED:
                self._uncount_compressed(blob)
        del self._data[key]
        has_ttl = flags & FLAG_EXPIRES != 0
        size = stored_key_length(key) + len(blob) - (TIMED_SIZE if has_ttl else TRAILER_SIZE)
        self._memory -= size + self._overheads[has_ttl]  # PERF: _charge, written out
        self._with_ttl -= has_ttl
        self._on_remove(slot, size)
        self._free_slot(slot)

    def _with_fields(self, value: bytes, data: bytes, flags: int, end: bytes) -> bytes:
        """The blob of an entry with optional fields (counted when compressed)."""
        if flags & FLAG_COMPRESSED:
            self._count_compressed(len(value), data, flags, 1)
        return value + data + end

    def _count_compressed(self, held: int, data: bytes, flags: int, sign: int) -> None:
        """Count an entry held compressed (``held`` bytes of value, ``data``
        its optional fields) in, or with ``sign`` -1 out of, ``compressed``."""
        counts = self.compressed
        counts[0] += sign
        counts[1] += sign * original_in_fields(data, flags)
        counts[2] += sign * held

    def _uncount_compressed(self, blob: bytes) -> None:
        end = value_end(blob)
        self._count_compressed(end, blob[end : fields_end(blob)], blob[-1], -1)

    def _drop_invalidated(self, key: str, blob: bytes) -> None:
        """Remove an entry one of whose tags was invalidated since it was written."""
        self._remove(key, blob)
        self.tags.invalidated_entries += 1

    def sweep(self, now: float, limit: int) -> int:
        """Reclaim at most ``limit`` entries expired at ``now``; return how many."""
        data = self._data
        reclaimed = 0
        while reclaimed < limit:
            slot = self._expiry.pop_due(now)
            if slot is None:
                break
            key = self.key_at(slot)
            self._remove(key, data[key])  # type: ignore[arg-type, index]
            reclaimed += 1
            if self.on_change is not None:
                self.on_change(EXPIRE, key)
        self.expired += reclaimed
        return reclaimed

    # -- snapshots (restore.py) ---------------------------------------------------------

    def _snapshot_order(self) -> Iterator[int]:
        """Every held slot, coldest first (the next victim first). The default,
        for a policy that keeps no order of its own: insertion order."""
        for blob in self._data.values():
            yield slot_in(blob)

    # -- the tag registry's bytes ------------------------------------------------------

    def acquire_tags(self, tags: Collection[str], times: int = 1) -> tuple[tuple[int, int], ...]:
        """Refs to the checked ``tags`` for ``times`` entries about to be
        written (``TagRegistry.acquire``), the new tags charged in memory_usage."""
        refs, grown = self.tags.acquire(tags, times)
        self._memory += grown
        return refs

    def release_tags(self, refs: Collection[tuple[int, int]], times: int = 1) -> None:
        """Give back what ``acquire_tags`` took, for a write that did not happen."""
        self._memory -= self.tags.release(refs, times)
