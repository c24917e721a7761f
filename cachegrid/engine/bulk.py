"""A batch of writes, all or nothing: the checks and the room of ``Store.set_many``.

``Store.set_many`` turns its options into one expiry and one set of optional
fields (the same for every item) and hands the items here. ``write_many``
checks every key and value first (an error names the key it is about), then,
for a policy that does not evict, makes the whole batch's room at once (or
refuses it with ``CacheFull`` before anything is written), and only then
writes the items one by one through the store's one write path
(``Room._write``). A policy that evicts makes room item by item as a plain
set would: its victims may be earlier items of the same batch only when the
batch alone is larger than the cache.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping

from .entry import FLAG_BINARY, Fields, with_original
from .errors import InvalidKey, ValueTooLarge
from .room import Room


def write_many(
    store: Room,
    items: Mapping[str, bytes],
    expires_at: float,
    fields: Fields,
    has_ttl: bool,
    now: float,
    binary_keys: Collection[str] = (),
    compressed: Mapping[str, int] | None = None,
) -> int:
    """Write every item of ``items`` with ``expires_at`` and ``fields``, or
    none of them; ``binary_keys`` get ``FLAG_BINARY`` too, and the keys of
    ``compressed`` their original size (``with_original``). Returns how many
    were written (the caller counts them)."""
    binary_fields = (fields[0] | FLAG_BINARY, fields[1])
    checked = []
    for key, value in items.items():
        item_fields = binary_fields if binary_keys and key in binary_keys else fields
        try:
            length = store._check_entry(key, value)
            if compressed and key in compressed:
                if compressed[key] > store.max_value_size:
                    store.rejected_too_large += 1
                    raise ValueTooLarge(compressed[key], store.max_value_size)
                item_fields = with_original(item_fields, compressed[key])
            store._check_fits_alone(length, len(value) + len(item_fields[1]), has_ttl)
        except (InvalidKey, ValueTooLarge, TypeError) as error:
            error.key = key  # type: ignore[union-attr]
            raise
        checked.append((key, length, value, item_fields))
    if not store.evicts:  # the whole batch's room, made (or refused) at once
        new_entries = extra_bytes = 0
        for key, length, value, item_fields in checked:
            stored = len(value) + len(item_fields[1])
            entries, growth = store._cost(length, stored, has_ttl, store._live(key, now))
            new_entries += entries
            extra_bytes += growth
        store._make_room(new_entries, extra_bytes, now)
    for key, length, value, item_fields in checked:
        store._write(key, length, value, expires_at, store._live(key, now), item_fields)
    return len(checked)
