"""A store's entries as snapshot records, and back: the store's side of snapshot.py.

snapshot.py owns the file format and relies only on ``Store.export_entries``
and ``Store.restore``, which are the two functions here, and on the policy
hooks ``_snapshot_order``, ``_snapshot_hint`` and ``_restore_hint``
(slots.py). A record is (key, value, wall-clock expiry or None, policy hint,
``Extra`` or None): times are wall-clock ones in a record, since a store's
clock (``time.monotonic`` by default) means nothing in another process.

Export walks the policy's order, coldest first, so that a restore, which
inserts the records in the order given, leaves the policy in the same order;
the hints carry what the order cannot (lfu's counts, tinylfu's estimates and
its protected segment). An entry invalidated by a tag is exported as expired
now, so a loader drops it. A restore into limits smaller than the records
keeps the hottest that fit: it walks back from the hottest record while they
fit (``_first_that_fits``) and inserts from there, so nothing is evicted on
the way; the records it cut are then sorted into expired, oversized and left
out (``_classify``). Tags travel by name and are checked against the
restoring cache's tag limits; a record whose tags are not usable there is
left out, since no invalidation could reach it.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator
from operator import itemgetter

from .entry import (
    FLAG_BINARY,
    FLAG_EXPIRES,
    FOREVER,
    FRESH_SIZE,
    ORIGINAL_SIZE,
    PLAIN,
    Extra,
    Fields,
    encode_fields,
    entry_of,
    expires_at_of,
    fields_end,
    flags_of,
    slot_in,
)
from .errors import CacheError
from .limits import key_length
from .room import Room
from .tags import check_tags

# A snapshot record (snapshot.py): key, value, wall-clock expiry or None,
# policy hint, and what else the entry holds (None: nothing).
Record = tuple[str, bytes, float | None, int, Extra | None]


def export_entries(store: Room, wall_now: float) -> Iterator[Record]:
    """``Store.export_entries``: every held entry, coldest first."""
    offset = wall_now - store.clock()
    data, key_at, hint = store._data, store.key_at, store._snapshot_hint
    for slot in store._snapshot_order():
        key = key_at(slot)
        blob = data[key]  # type: ignore[index]
        expires_at = expires_at_of(blob)
        wall_expiry = None if expires_at == FOREVER else expires_at + offset
        if not flags_of(blob) & ~FLAG_EXPIRES:
            yield key, blob[: fields_end(blob)], wall_expiry, hint(slot), None  # type: ignore[misc]
            continue
        entry = entry_of(blob, 0)  # (a record keeps no version)
        fresh_until = None if entry.fresh_until is None else entry.fresh_until + offset
        if entry.tag_refs and not store.tags.current(entry.tag_refs):
            wall_expiry = wall_now  # invalidated: a loader drops it as expired
        tags = store.tags.names_of(entry.tag_refs) if entry.tag_refs else ()
        extra = Extra(entry.binary, fresh_until, tags, entry.original_size)
        yield key, entry.value, wall_expiry, hint(slot), extra  # type: ignore[misc]


def restored_fields(extra: Extra | None, offset: float, tag_refs: Collection[tuple[int, int]] = ()) -> Fields:
    """The optional fields of a record's ``Extra`` on the store's clock
    (``offset``: store clock less wall clock); ``tag_refs``: the refs to
    its tags (``_restore_tagged``; without them, placeholders of the same size)."""
    if extra is None:
        return PLAIN
    flags, fields = encode_fields(
        None if extra.fresh_until is None else extra.fresh_until + offset,
        tag_refs or ((0, 0),) * len(extra.tags),
        extra.original_size,
    )
    return flags | (FLAG_BINARY if extra.binary else 0), fields


def _restore_tagged(
    store: Room, key: str, length: int, value: bytes, expires_at: float, extra: Extra, offset: float
) -> bool:
    """Write a restored record that has tags (by name); False when its
    tags are not usable here (invalid under this cache's tag limits):
    it is left out, since without them no invalidation would reach it."""
    try:
        refs = store.acquire_tags(check_tags(extra.tags, store.tags.limits))
    except CacheError:
        return False
    try:
        store._write(key, length, value, expires_at, store._data.get(key), restored_fields(extra, offset, refs))
    except BaseException:
        store.release_tags(refs)
        raise
    return True


def restore(store: Room, records: list[Record], wall_now: float, hints: bool = True) -> tuple[int, int, int]:
    """``Store.restore``: insert the records, coldest first; (restored,
    expired, left out by the limits)."""
    now = store.clock()
    offset = now - wall_now
    # Whether everything fits for sure (UTF-8 is at most 4 bytes a
    # character, and a record's fields at most a fresh_until and an original
    # size beside its tags); if not, find the hottest that fit first.
    keys_bound = 4 * sum(map(len, map(itemgetter(0), records)))
    values = sum(map(len, map(itemgetter(1), records)))
    charges_bound = keys_bound + values + len(records) * store._charge(FRESH_SIZE + ORIGINAL_SIZE, True)
    fits = len(store) + len(records) <= store.max_size and store.memory_usage + charges_bound <= store.max_memory
    start = 0 if fits else _first_that_fits(store, records, now, offset)
    data, write, restore_hint = store._data, store._write, store._restore_hint
    max_key_length, max_value_size = store.max_key_length, store.max_value_size
    restored = expired = too_large = 0
    for index in range(start, len(records)):
        key, value, wall_expiry, hint, extra = records[index]
        if wall_expiry is None:
            expires_at = FOREVER
        else:
            expires_at = wall_expiry + offset
            if expires_at <= now:
                expired += 1
                continue
        length = len(key) if key.isascii() else key_length(key)
        if length > max_key_length or len(value) > max_value_size or _too_large_original(extra, max_value_size):
            too_large += 1
            continue
        if extra is None:
            write(key, length, value, expires_at, data.get(key))
        elif extra.tags:
            if not _restore_tagged(store, key, length, value, expires_at, extra, offset):
                too_large += 1
                continue
        else:
            write(key, length, value, expires_at, data.get(key), restored_fields(extra, offset))
        restored += 1
        if hints and hint:
            restore_hint(slot_in(data[key]), hint)
    if start:  # what was cut: the expired and oversized among them are counted as such
        skipped_expired, skipped_too_large, left_out = _classify(store, records[:start], now, offset)
        expired += skipped_expired
        too_large += skipped_too_large
    else:
        left_out = 0
    return restored, expired, too_large + left_out


def _too_large_original(extra: Extra | None, max_value_size: int) -> bool:
    """Whether a compressed record is over ``max_value_size`` as the client sees it."""
    return extra is not None and extra.original_size is not None and extra.original_size > max_value_size


def _restore_keeps(store: Room, record: Record, now: float, offset: float) -> int | None:
    """The charge of a record ``restore`` would insert, or None (expired, oversized)."""
    key, value, wall_expiry, _, extra = record
    if wall_expiry is not None and wall_expiry + offset <= now:
        return None
    length = key_length(key)
    if length > store.max_key_length or len(value) > store.max_value_size:
        return None
    if _too_large_original(extra, store.max_value_size):
        return None
    fields = restored_fields(extra, offset)[1]
    return store._charge(length + len(value) + len(fields), wall_expiry is not None)


def _first_that_fits(store: Room, records: list[Record], now: float, offset: float) -> int:
    """The index from which the records ``restore`` keeps fit the limits:
    walking back from the hottest while they fit."""
    start, entries, memory = len(records), len(store), store.memory_usage
    while start > 0:
        charge = _restore_keeps(store, records[start - 1], now, offset)
        if charge is not None:
            if entries >= store.max_size or memory + charge > store.max_memory:
                break
            entries += 1
            memory += charge
        start -= 1
    return start


def _classify(store: Room, records: list[Record], now: float, offset: float) -> tuple[int, int, int]:
    """(expired, oversized, left out by the limits) among records ``restore`` cut."""
    expired = too_large = 0
    for key, value, wall_expiry, _, extra in records:
        if wall_expiry is not None and wall_expiry + offset <= now:
            expired += 1
        elif (
            key_length(key) > store.max_key_length
            or len(value) > store.max_value_size
            or _too_large_original(extra, store.max_value_size)
        ):
            too_large += 1
    return expired, too_large, len(records) - expired - too_large
