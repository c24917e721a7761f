"""The entry codec: how one entry is written down as one ``bytes`` blob, and
what a read hands out of it (``Entry``).

This module is the only place the layout is written down: every reader and
writer of a blob goes through the functions below, except three hot paths of
the store (``Store._hit``, ``Store.get``/``get_entry`` and
``Store._write``, and the removal of ``Room._remove``) that keep an inline
copy of a few lines for speed, each marked ``# PERF:`` and checked against
this codec for every combination of flags by tests/engine/test_entry_codec.py.

Entries, and why they are bytes
-------------------------------
The store's mapping (``Store._data``) maps each key (``str``) to one
``bytes`` object: the value, then the entry's optional fields, then a 5-byte
trailer holding the entry's *slot* (slots.py) and a flags byte saying which
optional fields are present (docs/entry-layout.md has the bytes of each)::

    value | tag refs (u32 id, u32 generation each) | tag count (u8)
          | original size (u32) | fresh_until (f64) | expires_at (f64)
          | slot (u32) | flags (u8)

``FLAG_BINARY`` (the value is raw bytes, not JSON) takes no bytes;
``FLAG_EXPIRES`` adds ``expires_at`` (an entry without it has no TTL),
``FLAG_STALE`` ``fresh_until``, ``FLAG_TAGS`` the tag refs and their count,
``FLAG_COMPRESSED`` the value's original size (the value is then held
gzip-compressed, and that is its size as the client sees it; only compressed
entries pay for the field). They are read from the end: the trailer, then
the expiry, then ``fresh_until``, then the original size, then the count. The version (drawn from a per-store counter
on every write; the daemon turns it into an ETag, conditional writes check
it) is kept beside the blob, in the store's versions array by slot
(``SlotTable._version_at``): in the blob its 8 bytes would take a small entry
to the next block size. ``expires_at`` is always the time the entry is
removed; an entry with a stale window is stale (still served, marked so)
from ``fresh_until`` until then. The tag refs are opaque to the store.

Nothing the store keeps per entry is an object the cyclic garbage collector
tracks: a dict whose keys and values are all ``str``/``bytes``/``int`` is not
tracked at all, and the per-slot structures are ``array`` objects and such
dicts. So a full collection costs the same with a million entries as with
none, and an entry is one object instead of a value plus an entry object. A
read copies the value out of the blob (``Entry`` is that read's view, built
by ``entry_of``); that copy is the price of the layout. The caller may keep
an ``Entry``: it is a tuple, and never changes.
"""

from __future__ import annotations

import struct
from collections.abc import Collection
from typing import NamedTuple

# The trailer of every stored blob: slot, flags; with FLAG_EXPIRES, the
# expiry time before it (_TIMED: the two read as one).
_TRAILER = struct.Struct("<IB")
TRAILER_SIZE = _TRAILER.size
pack_trailer = _TRAILER.pack
unpack_trailer = _TRAILER.unpack_from
_TIMED = struct.Struct("<dIB")
TIMED_SIZE = _TIMED.size
pack_timed = _TIMED.pack
unpack_timed = _TIMED.unpack_from
FOREVER = float("inf")
# The flags byte: which optional fields an entry has.
FLAG_BINARY = 0x01  # the value is raw bytes, not JSON (no bytes of its own)
FLAG_STALE = 0x02  # fresh_until follows the tag refs
FLAG_TAGS = 0x04  # tag refs and their count follow the value
FLAG_EXPIRES = 0x08  # expires_at precedes the trailer: the entry has a TTL
FLAG_COMPRESSED = 0x10  # the value is held gzip-compressed; its original size follows the tags
FIELD_FLAGS = FLAG_STALE | FLAG_TAGS | FLAG_COMPRESSED  # the flags whose fields take bytes
_FRESH = struct.Struct("<d")
FRESH_SIZE = _FRESH.size
_ORIGINAL = struct.Struct("<I")
ORIGINAL_SIZE = _ORIGINAL.size
MAX_ORIGINAL_SIZE = 2**32 - 1
_TAG_REF = struct.Struct("<II")
MAX_TAG_REFS = 255  # the count is one byte

# An entry's optional fields as a write takes them: (flags, bytes), as
# ``encode_fields`` makes them (FLAG_EXPIRES is not among the flags: the
# write sets it from the expiry).
Fields = tuple[int, bytes]
PLAIN: Fields = (0, b"")  # JSON, no optional fields
BINARY: Fields = (FLAG_BINARY, b"")  # raw bytes, no optional fields

_new_tuple = tuple.__new__


class Entry(NamedTuple):
    value: bytes
    version: int
    expires_at: float | None  # on the store's clock; None: no TTL
    binary: bool = False  # the value is raw bytes, not JSON
    # When the entry turns stale (store clock): from then until expires_at it
    # may still be served, marked stale. None: no stale window.
    fresh_until: float | None = None
    # (tag id, generation) pairs, opaque to the store.
    tag_refs: tuple[tuple[int, int], ...] = ()
    # The value is held gzip-compressed and is this many bytes uncompressed.
    # None: the value is held as it was sent.
    original_size: int | None = None

    def ttl(self, now: float) -> float | None:
        """Seconds left at ``now``, or None when the entry has no TTL."""
        return None if self.expires_at is None else self.expires_at - now

    def is_stale(self, now: float) -> bool:
        """Whether the entry is past its TTL and inside its stale window."""
        return self.fresh_until is not None and now >= self.fresh_until


class Extra(NamedTuple):
    """What a snapshot record keeps of an entry beyond its key, value, expiry
    and policy hint (None in a record when the entry has none of it)."""

    binary: bool = False
    fresh_until: float | None = None  # wall clock (time.time()) in a record
    tags: tuple[str, ...] = ()  # the names of its tags (a store's ids are its own)
    original_size: int | None = None  # held gzip-compressed: the size uncompressed


# -- writing ---------------------------------------------------------------------


def encode_fields(
    fresh_until: float | None = None,
    tag_refs: Collection[tuple[int, int]] = (),
    original_size: int | None = None,
) -> Fields:
    """The flags and bytes of an entry's optional fields (none: ``(0, b"")``)."""
    flags, parts = 0, []  # type: int, list[bytes]
    if tag_refs:
        if len(tag_refs) > MAX_TAG_REFS:
            raise ValueError(f"an entry holds at most {MAX_TAG_REFS} tags, not {len(tag_refs)}")
        parts.extend(_TAG_REF.pack(tag, generation) for tag, generation in tag_refs)
        parts.append(bytes((len(tag_refs),)))
        flags |= FLAG_TAGS
    if original_size is not None:
        if not 0 <= original_size <= MAX_ORIGINAL_SIZE:
            raise ValueError(f"an original size is 0 to {MAX_ORIGINAL_SIZE} bytes, not {original_size}")
        parts.append(_ORIGINAL.pack(original_size))
        flags |= FLAG_COMPRESSED
    if fresh_until is not None:
        parts.append(_FRESH.pack(fresh_until))
        flags |= FLAG_STALE
    return flags, b"".join(parts)


def with_original(fields: Fields, original_size: int) -> Fields:
    """``fields`` (``encode_fields``'s) with the original size of a compressed
    value added in its place (before ``fresh_until``): a batch's shared fields
    made one compressed item's."""
    flags, data = fields
    if not 0 <= original_size <= MAX_ORIGINAL_SIZE:
        raise ValueError(f"an original size is 0 to {MAX_ORIGINAL_SIZE} bytes, not {original_size}")
    cut = len(data) - (_FRESH.size if flags & FLAG_STALE else 0)
    return flags | FLAG_COMPRESSED, data[:cut] + _ORIGINAL.pack(original_size) + data[cut:]


def trailer(slot: int, flags: int, expires_at: float) -> bytes:
    """The end of a blob: the expiry (unless ``FOREVER``), the slot and the flags."""
    return pack_timed(expires_at, slot, flags | FLAG_EXPIRES) if expires_at != FOREVER else pack_trailer(slot, flags)


def encode(value: bytes, fields: Fields, expires_at: float, slot: int) -> bytes:
    """The whole blob of an entry."""
    flags, data = fields
    return value + data + trailer(slot, flags, expires_at)


# -- reading ---------------------------------------------------------------------


def flags_of(blob: bytes) -> int:
    """The flags byte of ``blob``."""
    return blob[-1]


def has_ttl(blob: bytes) -> bool:
    """Whether the entry held in ``blob`` has a TTL."""
    return blob[-1] & FLAG_EXPIRES != 0


def fields_end(blob: bytes) -> int:
    """Where the optional fields end in ``blob`` (the expiry or the trailer
    follows): also the bytes the entry is charged for beyond its key."""
    return len(blob) - (TIMED_SIZE if blob[-1] & FLAG_EXPIRES else TRAILER_SIZE)


def expires_at_of(blob: bytes) -> float:
    """The expiry time held in ``blob`` (``FOREVER``: no TTL)."""
    return unpack_timed(blob, len(blob) - TIMED_SIZE)[0] if blob[-1] & FLAG_EXPIRES else FOREVER


def slot_in(blob: bytes) -> int:
    """The slot held in ``blob``."""
    return unpack_trailer(blob, len(blob) - TRAILER_SIZE)[0]


def value_end(blob: bytes) -> int:
    """Where the value ends in ``blob`` (its optional fields follow)."""
    end = fields_end(blob)
    flags = blob[-1]
    if flags & FIELD_FLAGS:
        if flags & FLAG_STALE:
            end -= _FRESH.size
        if flags & FLAG_COMPRESSED:
            end -= _ORIGINAL.size
        if flags & FLAG_TAGS:
            end -= 1 + _TAG_REF.size * blob[end - 1]
    return end


def value_of(blob: bytes) -> bytes:
    """The value held in ``blob``."""
    flags = blob[-1]
    if not flags & FIELD_FLAGS:
        return blob[: len(blob) - (TIMED_SIZE if flags & FLAG_EXPIRES else TRAILER_SIZE)]
    return blob[: value_end(blob)]


def fields_of(blob: bytes) -> Fields:
    """The flags of ``blob`` (but ``FLAG_EXPIRES``, which a write sets from
    the expiry) and the bytes of its optional fields, to write them again."""
    flags = blob[-1]
    if not flags & FIELD_FLAGS:
        return flags & ~FLAG_EXPIRES, b""
    return flags & ~FLAG_EXPIRES, blob[value_end(blob) : fields_end(blob)]


def entry_of(blob: bytes, version: int, _trailer: int = TRAILER_SIZE) -> Entry:
    """The whole entry held in ``blob``, whose version is ``version`` (the
    store keeps versions beside the blobs: ``SlotTable._version_at``)."""
    flags = blob[-1]
    if not flags:  # the common case: JSON, no TTL, no optional fields
        return _new_tuple(Entry, (blob[: len(blob) - _trailer], version, None, False, None, (), None))
    if flags & FLAG_EXPIRES:
        end = len(blob) - TIMED_SIZE
        expires_at = unpack_timed(blob, end)[0]
    else:
        end, expires_at = len(blob) - _trailer, None
    fresh_until, tag_refs, original = None, (), None  # type: float | None, tuple[tuple[int, int], ...], int | None
    if flags & FIELD_FLAGS:
        if flags & FLAG_STALE:
            end -= _FRESH.size
            fresh_until = _FRESH.unpack_from(blob, end)[0]
        if flags & FLAG_COMPRESSED:
            end -= _ORIGINAL.size
            original = _ORIGINAL.unpack_from(blob, end)[0]
        if flags & FLAG_TAGS:
            count = blob[end - 1]
            end -= 1 + _TAG_REF.size * count
            tag_refs = tuple(_TAG_REF.iter_unpack(blob[end : end + _TAG_REF.size * count]))
    return _new_tuple(
        Entry, (blob[:end], version, expires_at, bool(flags & FLAG_BINARY), fresh_until, tag_refs, original)
    )


def tag_refs_of(blob: bytes) -> tuple[tuple[int, int], ...]:
    """The (tag id, generation) refs held in ``blob`` (one with ``FLAG_TAGS``)."""
    flags = blob[-1]
    end = (
        fields_end(blob)
        - (_FRESH.size if flags & FLAG_STALE else 0)
        - (_ORIGINAL.size if flags & FLAG_COMPRESSED else 0)
    )
    count = blob[end - 1]
    return tuple(_TAG_REF.iter_unpack(blob[end - 1 - _TAG_REF.size * count : end - 1]))


def original_size_of(blob: bytes) -> int | None:
    """The original size held in ``blob`` (None: the value is not compressed)."""
    flags = blob[-1]
    if not flags & FLAG_COMPRESSED:
        return None
    return _ORIGINAL.unpack_from(blob, fields_end(blob) - (_FRESH.size if flags & FLAG_STALE else 0) - _ORIGINAL.size)[
        0
    ]


def original_in_fields(data: bytes, flags: int) -> int:
    """The original size in the optional fields ``data`` (``encode_fields``'
    bytes) of an entry with ``flags``, one held compressed: the size comes
    last but for a stale window's ``fresh_until``."""
    return _ORIGINAL.unpack_from(data, len(data) - ORIGINAL_SIZE - (FRESH_SIZE if flags & FLAG_STALE else 0))[0]
