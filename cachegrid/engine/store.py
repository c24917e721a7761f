"""The store: one mapping, its bookkeeping, and the single eviction rule.

This is the part every eviction policy shares (cachetools' ``Cache`` plays the
same role). It is *not* thread-safe: ``Cache`` in cache.py wraps it in the one
lock of the engine.

Entries, and why they are bytes
-------------------------------
``self._data`` maps each key (``str``) to one ``bytes`` object: the value,
then the entry's optional fields, then a 5-byte trailer holding the entry's
*slot* (below) and a flags byte saying which optional fields are present
(docs/entry-layout.md has the bytes of each)::

    value | tag refs (u32 id, u32 generation each) | tag count (u8)
          | fresh_until (f64) | expires_at (f64) | slot (u32) | flags (u8)

``FLAG_BINARY`` (the value is raw bytes, not JSON) takes no bytes;
``FLAG_EXPIRES`` adds ``expires_at`` (an entry without it has no TTL),
``FLAG_STALE`` ``fresh_until``, ``FLAG_TAGS`` the tag refs and their count.
They are read from the end: the trailer, then the expiry, then
``fresh_until``, then the count. The version (drawn from a per-store counter
on every write; the daemon turns it into an ETag, conditional writes check
it) is kept beside the blob, in ``_versions`` by slot (``_version_at``): in
the blob its 8 bytes would take a small entry to the next block size.
``expires_at`` is always the time the entry is removed; an entry with a
stale window is stale (still served, marked so) from ``fresh_until`` until
then. The tag refs are opaque to the store.
Nothing the store keeps per entry is an object the cyclic garbage collector
tracks: a dict whose keys and values are all ``str``/``bytes``/``int`` is not
tracked at all, and the per-slot structures are ``array`` objects and such
dicts. So a full collection costs the same with a million entries as with
none, and an entry is one object instead of a value plus an entry object. A
read copies the value out of the blob (``Entry`` in entry.py is that read's
view); that copy is the price of the layout.

Slots
-----
Every live entry holds a small integer, its slot, from the moment it is
inserted until it is removed (a replacement keeps it); freed slots are
reused, most recently freed first. ``_key_at`` maps slots back to keys, in
shards of 64 slots: each shard a tuple of 64 keys (None: a free slot), 8
bytes a slot. A tuple that holds only strings and None is untracked by the
garbage collector at its first collection, so the shards, like the mapping,
are never walked; the price is that taking or freeing a slot builds its
shard's tuple anew (64 pointers copied, in C). (Shards of dicts keyed by
slot cost 36 bytes a slot.) Slots are what the policies link into their
orders (arrays indexed by slot) and what key listing walks (scan.py): a key
that stays keeps its slot, so a walk over slot numbers meets it once.

Expiry
------
An expired entry is never returned: every read compares the expiry time with
the clock and removes the entry on the spot. Entries with a TTL are also
recorded in an ``ExpiryIndex`` (expire.py), from which the sweeper and the
eviction rule reclaim expired entries earliest first, without scanning.

Memory accounting
-----------------
Each entry is charged ``len(key as UTF-8) + len(value) + its optional
fields' bytes + entry_overhead``, plus
``ttl_overhead`` when it has a TTL: ``_overheads`` is the one table of what an
entry costs beyond its key and value, and ``_write`` (every write) and
``_remove`` (every removal) the only two places that change the running sum.
The fast path of a plain write is the same ``_write`` as every other. The overheads are per
policy, measured with tracemalloc (calibrate.py; tests/engine/test_memory.py
checks them).

The eviction rule
-----------------
Before a write that adds an entry or bytes, while the store would be over
``max_size`` entries or ``max_memory`` bytes:

1. reclaim expired entries, earliest expiry first (``ExpiryIndex.pop_due``);
2. then remove the policy's victim (``_victim``), counting an eviction.

A policy that does not evict (``evicts = False``) refuses the write with
``CacheFull`` at step 2 and nothing is touched. An entry that alone is larger
than ``max_memory`` is refused with ``ValueTooLarge`` before anything happens.
When a replacement needs more room than the old entry freed, the old entry is
dropped first (so the policy can never pick the key being written as its
victim) and the new one is stored as a fresh entry.

Conditional writes
------------------
``set`` takes HTTP's two preconditions, checked in the same call as the
write: ``if_match`` (``ANY``: only if present; versions: only if present at
one of them) and ``if_none_match`` (``ANY``: only if absent; versions: unless
present at one of them). A failed condition raises ``PreconditionFailed``,
counts no hit or miss and leaves the policy's order alone.

Policies
--------
A policy subclasses ``Store`` and overrides some of these hooks, all keyed by
slot: ``_init_policy`` (build its structures; also called by ``clear``),
``_on_access(slot, key)`` (a read hit; ``key`` is the slot's key, handed
over because the store has it at hand), ``_on_insert(slot, size)``,
``_on_update(slot, old_size, new_size)`` (a replacement in place),
``_on_remove(slot, size)`` and ``_victim()`` (the slot to evict next). ``size``
is the entry's key and value length. ``list_heads`` slots (0 up to it) are
never handed out, so a policy can use them as the heads of its lists (lru
one, tinylfu three). A policy may take settings of its own as keyword
arguments of its constructor (lfu's ``decay_time``; ``Cache``'s
``policy_options``).
"""

from __future__ import annotations

import gc
import re
import secrets
import struct
import time
from array import array
from dataclasses import dataclass
from math import isfinite
from operator import itemgetter
from typing import Any, Callable, Collection, Iterable, Iterator, Literal, Mapping, NamedTuple, Union

from .entry import Entry, Extra
from .errors import (
    CacheError,
    CacheFull,
    IntegerOverflow,
    InvalidKey,
    InvalidTTL,
    KeyNotFound,
    KeyTooLong,
    NotAnInteger,
    PreconditionFailed,
    ValueTooLarge,
)
from .expire import ExpiryIndex
from .tags import TagLimits, TagRegistry, check_tags

KiB = 1024
MiB = 1024 * KiB

DEFAULT_MAX_SIZE = 10_000
DEFAULT_MAX_MEMORY = 512 * MiB
DEFAULT_MAX_KEY_LENGTH = 250  # bytes of UTF-8, as memcached
DEFAULT_MAX_VALUE_SIZE = 1 * MiB  # as memcached
MAX_TTL = 10**10  # seconds (about 317 years): keeps expiry times finite and exact

INT64_MIN = -(2**63)
INT64_MAX = 2**63 - 1
# What incr/decr accept as an integer: a JSON integer, as the daemon stores it.
_INTEGER = re.compile(rb"-?(?:0|[1-9][0-9]{0,18})")

Clock = Callable[[], float]

# The trailer of every stored blob: slot, flags; with FLAG_EXPIRES, the
# expiry time before it (_TIMED: the two read as one).
_TRAILER = struct.Struct("<IB")
TRAILER_SIZE = _TRAILER.size
_pack = _TRAILER.pack
_unpack_from = _TRAILER.unpack_from
_TIMED = struct.Struct("<dIB")
TIMED_SIZE = _TIMED.size
_pack_timed = _TIMED.pack
_unpack_timed = _TIMED.unpack_from
FOREVER = float("inf")
# The flags byte: which optional fields an entry has.
FLAG_BINARY = 0x01  # the value is raw bytes, not JSON (no bytes of its own)
FLAG_STALE = 0x02  # fresh_until follows the tag refs
FLAG_TAGS = 0x04  # tag refs and their count follow the value
FLAG_EXPIRES = 0x08  # expires_at precedes the trailer: the entry has a TTL
_FIELD_FLAGS = FLAG_STALE | FLAG_TAGS  # the flags whose fields take bytes
# The versions array keeps a version's low 32 bits (see Store._version_at).
_VERSION_MASK = 0xFFFFFFFF
_FRESH = struct.Struct("<d")
_TAG_REF = struct.Struct("<II")
MAX_TAG_REFS = 255  # the count is one byte
SHARD_BITS = 6  # slots per shard of _key_at: 64
_SHARD_MASK = (1 << SHARD_BITS) - 1
_EMPTY_SHARD: tuple[str | None, ...] = (None,) * (1 << SHARD_BITS)
_EMPTY_VERSIONS = array("I", bytes(4 << SHARD_BITS))

ANY: Literal["*"] = "*"
# A precondition: ANY, or the versions that satisfy it (an empty one: none).
Condition = Union[Literal["*"], Collection[int], None]

_new_tuple = tuple.__new__


# A snapshot record (snapshot.py): key, value, wall-clock expiry or None,
# policy hint, and what else the entry holds (None: nothing).
Record = tuple[str, bytes, Union[float, None], int, Union[Extra, None]]


class SetResult(NamedTuple):
    created: bool  # the key did not exist (or had expired) before this write
    version: int


@dataclass(frozen=True)
class Limits:
    """The limits of one store, handed around as one value."""

    max_size: int = DEFAULT_MAX_SIZE  # entries
    max_memory: int = DEFAULT_MAX_MEMORY  # bytes, as accounted (see the module docstring)
    max_key_length: int = DEFAULT_MAX_KEY_LENGTH  # bytes of UTF-8
    max_value_size: int = DEFAULT_MAX_VALUE_SIZE  # bytes

    def __post_init__(self) -> None:
        for setting in ("max_size", "max_memory", "max_key_length", "max_value_size"):
            value = getattr(self, setting)
            if value.__class__ is not int or value < 1:
                raise ValueError(f"{setting} must be a whole number of at least 1, not {value!r}")


def key_length(key: str) -> int:
    """The key's length in UTF-8 bytes, checked to be a usable key."""
    if key.__class__ is not str:
        raise InvalidKey(f"key must be a string, not {type(key).__name__}")
    if key.isascii():
        length = len(key)
    else:
        try:
            length = len(key.encode())
        except UnicodeEncodeError:
            raise InvalidKey("key is not valid Unicode (it contains a lone surrogate)") from None
    if length == 0:
        raise InvalidKey("key is empty")
    return length


def _stored_key_length(key: str) -> int:
    return len(key) if key.isascii() else len(key.encode())


def check_ttl(ttl: float) -> float:
    """``ttl`` if it is a usable number of seconds, else ``InvalidTTL``."""
    if ttl.__class__ not in (int, float):
        raise InvalidTTL(f"ttl must be a number of seconds, not {type(ttl).__name__}")
    if not (isfinite(ttl) and 0 < ttl <= MAX_TTL):
        raise InvalidTTL(f"ttl must be greater than 0 and at most {MAX_TTL} seconds, not {ttl!r}")
    return ttl


def check_stale(stale: float) -> float:
    """``stale`` if it is a usable stale window in seconds, else ``InvalidTTL``."""
    if stale.__class__ not in (int, float):
        raise InvalidTTL(f"stale must be a number of seconds, not {type(stale).__name__}")
    if not (isfinite(stale) and 0 <= stale <= MAX_TTL):
        raise InvalidTTL(f"stale must be at least 0 and at most {MAX_TTL} seconds, not {stale!r}")
    return stale


def encode_fields(fresh_until: float | None = None, tag_refs: Collection[tuple[int, int]] = ()) -> tuple[int, bytes]:
    """The flags and bytes of an entry's optional fields (none: ``(0, b"")``)."""
    flags, parts = 0, []
    if tag_refs:
        if len(tag_refs) > MAX_TAG_REFS:
            raise ValueError(f"an entry holds at most {MAX_TAG_REFS} tags, not {len(tag_refs)}")
        parts.extend(_TAG_REF.pack(tag, generation) for tag, generation in tag_refs)
        parts.append(bytes((len(tag_refs),)))
        flags |= FLAG_TAGS
    if fresh_until is not None:
        parts.append(_FRESH.pack(fresh_until))
        flags |= FLAG_STALE
    return flags, b"".join(parts)


def fields_end(blob: bytes) -> int:
    """Where the optional fields end in ``blob`` (the expiry or the trailer follows)."""
    return len(blob) - (TIMED_SIZE if blob[-1] & FLAG_EXPIRES else TRAILER_SIZE)


def expires_at_of(blob: bytes) -> float:
    """The expiry time held in ``blob`` (``FOREVER``: no TTL)."""
    return _unpack_timed(blob, len(blob) - TIMED_SIZE)[0] if blob[-1] & FLAG_EXPIRES else FOREVER


def slot_in(blob: bytes) -> int:
    """The slot held in ``blob``."""
    return _unpack_from(blob, len(blob) - TRAILER_SIZE)[0]


def value_end(blob: bytes) -> int:
    """Where the value ends in ``blob`` (its optional fields follow)."""
    end = fields_end(blob)
    flags = blob[-1]
    if flags & _FIELD_FLAGS:
        if flags & FLAG_STALE:
            end -= _FRESH.size
        if flags & FLAG_TAGS:
            end -= 1 + _TAG_REF.size * blob[end - 1]
    return end


def value_of(blob: bytes) -> bytes:
    """The value held in ``blob``."""
    flags = blob[-1]
    if not flags & _FIELD_FLAGS:
        return blob[: len(blob) - (TIMED_SIZE if flags & FLAG_EXPIRES else TRAILER_SIZE)]
    return blob[: value_end(blob)]


def fields_of(blob: bytes) -> tuple[int, bytes]:
    """The flags of ``blob`` (but ``FLAG_EXPIRES``, which ``Store._write``
    sets from the expiry) and the bytes of its optional fields, to write them again."""
    flags = blob[-1]
    if not flags & _FIELD_FLAGS:
        return flags & ~FLAG_EXPIRES, b""
    return flags & ~FLAG_EXPIRES, blob[value_end(blob) : fields_end(blob)]


def entry_of(blob: bytes, version: int, _trailer: int = TRAILER_SIZE) -> Entry:
    """The whole entry held in ``blob``, whose version is ``version`` (the
    store keeps versions beside the blobs: ``Store._version_at``)."""
    flags = blob[-1]
    if not flags:  # the common case: JSON, no TTL, no optional fields
        return _new_tuple(Entry, (blob[: len(blob) - _trailer], version, None, False, None, ()))
    if flags & FLAG_EXPIRES:
        end = len(blob) - TIMED_SIZE
        expires_at = _unpack_timed(blob, end)[0]
    else:
        end, expires_at = len(blob) - _trailer, None
    fresh_until, tag_refs = None, ()
    if flags & _FIELD_FLAGS:
        if flags & FLAG_STALE:
            end -= _FRESH.size
            fresh_until = _FRESH.unpack_from(blob, end)[0]
        if flags & FLAG_TAGS:
            count = blob[end - 1]
            end -= 1 + _TAG_REF.size * count
            tag_refs = tuple(_TAG_REF.iter_unpack(blob[end : end + _TAG_REF.size * count]))
    return _new_tuple(Entry, (blob[:end], version, expires_at, bool(flags & FLAG_BINARY), fresh_until, tag_refs))


def tag_refs_of(blob: bytes) -> tuple[tuple[int, int], ...]:
    """The (tag id, generation) refs held in ``blob`` (one with ``FLAG_TAGS``)."""
    end = fields_end(blob) - (_FRESH.size if blob[-1] & FLAG_STALE else 0)
    count = blob[end - 1]
    return tuple(_TAG_REF.iter_unpack(blob[end - 1 - _TAG_REF.size * count : end - 1]))


class Store:
    """The shared base of every policy. Not thread-safe (see ``Cache``)."""

    # Every attribute is a slot, in the base and in each policy: CPython
    # reads slots with one specialized instruction, always. (Without them an
    # object's attributes sit inline only while it has few enough of them
    # (about 30) and nothing has read its __dict__; past that each read
    # takes the generic lookup, about twice the time.)
    __slots__ = (
        "limits",
        "max_size",
        "max_memory",
        "max_key_length",
        "max_value_size",
        "clock",
        "_overheads",
        "_version",
        "hits",
        "misses",
        "sets",
        "deletes",
        "evictions",
        "expired",
        "rejected_too_large",
        "rejected_full",
        "slot_epoch",
        "_data",
        "_key_at",
        "_versions",
        "_free_slots",
        "_slot_end",
        "_expiry",
        "_memory",
        "_with_ttl",
        "tags",
        "on_expiry_overgrown",
    )
    name = "base"
    # Whether a full store makes room by evicting (False: refuse with CacheFull).
    evicts = True
    # Bytes charged per entry beyond its key and value, and per entry with a
    # TTL on top of that; measured per policy (see the module docstring).
    entry_overhead = 0
    ttl_overhead = 0
    # Slots never handed out (0, 1, ...): the heads of the policy's lists.
    list_heads = 1

    def __init__(self, limits: Limits = Limits(), clock: Clock = time.monotonic) -> None:
        self.limits = limits
        self.max_size = limits.max_size
        self.max_memory = limits.max_memory
        self.max_key_length = limits.max_key_length
        self.max_value_size = limits.max_value_size
        self.clock = clock
        # Set by Cache while its sweeper runs: rebuilds of the expiry index
        # are then handed to the sweeper instead of done inside a write.
        self.on_expiry_overgrown: Callable[[], None] | None = None
        # What an entry is charged beyond its key and value, by has-a-TTL.
        self._overheads = (self.entry_overhead, self.entry_overhead + self.ttl_overhead)
        self._version = 0
        # Statistics: every counter is updated here, in the store, and only here.
        self.hits = self.misses = self.sets = self.deletes = 0
        self.evictions = self.expired = self.rejected_too_large = self.rejected_full = 0
        self._reset()

    def _reset(self) -> None:
        # Names this numbering of slots: key-listing cursors carry it (scan.py).
        self.slot_epoch = secrets.token_hex(6)
        self._data: dict[str, bytes] = {}
        self._key_at: list[tuple[str | None, ...]] = []
        # Each slot's entry's version, its low 32 bits (see _version_at),
        # grown a shard at a time with _key_at.
        self._versions = array("I")
        self._free_slots = array("I")
        # Slots below list_heads are never handed out: policies use them as
        # the heads of their lists.
        self._slot_end = self.list_heads  # one past the highest slot ever handed out
        self._expiry = ExpiryIndex(self._expires_at_slot, self._expiry_overgrown)
        self._memory = 0
        self._with_ttl = 0  # entries that have a TTL
        # Tag names, ids and generations (tags.py); a clear forgets them too
        # (its counters stay, as the store's own do).
        # (Never vars(self) here or on any hot path: reading an instance's
        # __dict__ turns its attributes into a plain dict, and every
        # attribute read of the store then takes the slow, generic lookup,
        # about twice the time: a get or set is 0.3-0.5 us slower.)
        tags = getattr(self, "tags", None)
        self.tags = tags.emptied() if tags is not None else TagRegistry(TagLimits())
        self._init_policy()

    def detach(self) -> list[object]:
        """Start afresh, in O(1), and hand back every structure the entries
        were kept in, so that the caller can free them at its own pace
        (``Cache.clear``; sweeper.py frees them in slices)."""
        # Every object the store refers to, before and after: what _reset
        # replaced is what the entries were kept in. gc.get_referents reads
        # the attributes without making a __dict__ of them (see _reset).
        before = gc.get_referents(self)
        heap = self._expiry.detach()
        self._reset()
        kept = {id(value) for value in gc.get_referents(self)}
        return heap + [value for value in before if id(value) not in kept]

    def _expiry_overgrown(self) -> bool:
        if self.on_expiry_overgrown is None:
            return False
        self.on_expiry_overgrown()
        return True

    @property
    def expiry(self) -> ExpiryIndex:
        return self._expiry

    # -- policy hooks (defaults: a policy that records nothing) ---------------

    def _init_policy(self) -> None:
        pass

    def _on_access(self, slot: int, key: str) -> None:
        pass

    def _on_insert(self, slot: int, size: int) -> None:
        pass

    def _on_update(self, slot: int, old_size: int, new_size: int) -> None:
        self._on_access(slot, self.key_at(slot))  # type: ignore[arg-type]

    def _on_remove(self, slot: int, size: int) -> None:
        pass

    def _victim(self) -> int:
        raise NotImplementedError

    # -- slots -------------------------------------------------------------------

    def key_at(self, slot: int) -> str | None:
        """The key that holds ``slot``, or None when the slot is free."""
        shard = slot >> SHARD_BITS
        return self._key_at[shard][slot & _SHARD_MASK] if shard < len(self._key_at) else None

    @property
    def slot_end(self) -> int:
        """One past the highest slot in use or ever used since the last clear."""
        return self._slot_end

    def slot_of(self, key: str) -> int | None:
        """The slot ``key`` holds (expired or not), None when it is absent."""
        blob = self._data.get(key)
        return None if blob is None else slot_in(blob)

    def _version_at(self, slot: int) -> int:
        """The version of the entry holding ``slot``. Versions come from one
        counter, drawn on every write; the array beside the blobs keeps their
        low 32 bits (4 bytes a slot, where 8 in the blob would take an
        entry's block to the next size class), and the version is the
        latest one drawn with those bits. That is exact for an entry
        written in the last 2**32 writes; one written longer ago reads as a
        later version (its ETag changes once), never as an earlier one."""
        version = self._version
        return version - ((version - self._versions[slot]) & _VERSION_MASK)

    def _entry(self, blob: bytes) -> Entry:
        """The whole entry held in ``blob`` (``entry_of``, with its version)."""
        return entry_of(blob, self._version_at(slot_in(blob)))

    def _take_slot(self, key: str) -> int:
        if self._free_slots:
            slot = self._free_slots.pop()
        else:
            slot = self._slot_end
            self._slot_end += 1
            if slot >> SHARD_BITS == len(self._key_at):
                self._key_at.append(_EMPTY_SHARD)
                self._versions.extend(_EMPTY_VERSIONS)
        self._set_key_at(slot, key)
        return slot

    def _set_key_at(self, slot: int, key: str | None) -> None:
        shards, index, at = self._key_at, slot >> SHARD_BITS, slot & _SHARD_MASK
        shard = shards[index]
        shards[index] = shard[:at] + (key,) + shard[at + 1 :]

    def _free_slot(self, slot: int) -> None:
        self._set_key_at(slot, None)
        self._free_slots.append(slot)

    def _expires_at_slot(self, slot: int) -> float | None:
        """The expiry time of the entry holding ``slot`` (None: free slot)."""
        # .get at both steps: the sweeper calls this outside the lock (expire.py).
        key = self.key_at(slot)
        blob = None if key is None else self._data.get(key)
        return None if blob is None else expires_at_of(blob)

    # -- size bookkeeping ------------------------------------------------------

    def __len__(self) -> int:
        """Entries held, including expired ones not reclaimed yet."""
        return len(self._data)

    @property
    def memory_usage(self) -> int:
        return self._memory

    def _charge(self, size: int, has_ttl: bool) -> int:
        """What an entry of ``size`` key and value bytes is charged."""
        return size + self._overheads[has_ttl]

    def _remove(self, key: str, blob: bytes) -> None:
        slot, flags = _unpack_from(blob, len(blob) - TRAILER_SIZE)
        if flags & FLAG_TAGS:
            self._memory -= self.tags.release(tag_refs_of(blob))
        del self._data[key]
        has_ttl = flags & FLAG_EXPIRES != 0
        size = _stored_key_length(key) + len(blob) - (TIMED_SIZE if has_ttl else TRAILER_SIZE)
        self._memory -= size + self._overheads[has_ttl]
        self._with_ttl -= has_ttl
        self._on_remove(slot, size)
        self._free_slot(slot)

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
            self._remove(key, data[key])  # type: ignore[index]
            self.expired += 1
        while not self._fits(extra_entries, extra_bytes):
            if not self.evicts:
                self.rejected_full += 1
                raise CacheFull(
                    f"the cache is full ({len(data)} of {self.max_size} entries, "
                    f"{self._memory} of {self.max_memory} bytes) and the policy is {self.name}"
                )
            key = self.key_at(self._victim())
            self._remove(key, data[key])  # type: ignore[index]
            self.evictions += 1

    # -- reads -------------------------------------------------------------------

    def _live(self, key: str, now: float | None = None) -> bytes | None:
        """The blob under ``key`` if it has not expired (an expired one is
        removed on the spot). Counts nothing and changes no recency."""
        blob = self._data.get(key)
        if blob is None:
            return None
        if blob[-1] & FLAG_TAGS and not self.tags.current(tag_refs_of(blob)):
            self._drop_invalidated(key, blob)
            return None
        if blob[-1] & FLAG_EXPIRES and (
            _unpack_timed(blob, len(blob) - TIMED_SIZE)[0] <= (self.clock() if now is None else now)
        ):
            self._remove(key, blob)
            self.expired += 1
            return None
        return blob

    def _hit(
        self,
        key: str,
        _unpack_from: Callable = _unpack_from,
        _unpack_timed: Callable = _unpack_timed,
        _trailer: int = TRAILER_SIZE,
        _timed: int = TIMED_SIZE,
        _tagged: int = FLAG_TAGS,
        _expires: int = FLAG_EXPIRES,
    ) -> bytes | None:
        """A read: the live blob (counting a hit and recording the access)
        or None (counting a miss). ``lookup`` and ``lookup_entry`` are this."""
        # (The defaults bind module constants as locals: the hottest path.)
        blob = self._data.get(key)
        if blob is not None:
            flags = blob[-1]
            if flags & _tagged and not self.tags.current(tag_refs_of(blob)):
                blob = self._drop_invalidated(key, blob)  # an invalidated tag: a miss
            elif not flags & _expires:
                self._on_access(_unpack_from(blob, len(blob) - _trailer)[0], key)
                self.hits += 1
                return blob
            else:
                expires_at, slot, _ = _unpack_timed(blob, len(blob) - _timed)
                if expires_at > self.clock():
                    self._on_access(slot, key)
                    self.hits += 1
                    return blob
                self._remove(key, blob)
                self.expired += 1
        self.misses += 1
        return None

    def lookup(self, key: str, _trailer: int = TRAILER_SIZE) -> bytes | None:
        """A read: the live value (counting a hit and recording the access)
        or None (counting a miss)."""
        blob = self._hit(key)
        if blob is None:
            return None
        return blob[: len(blob) - _trailer] if not blob[-1] else value_of(blob)

    def lookup_entry(self, key: str, _trailer: int = TRAILER_SIZE, _mask: int = _VERSION_MASK) -> Entry | None:
        """``lookup``, returning the whole entry (``Entry``)."""
        blob = self._hit(key)
        if blob is None:
            return None
        version = self._version  # _entry and _version_at, written out: a GET's path
        low = self._versions[_unpack_from(blob, len(blob) - _trailer)[0]]
        return entry_of(blob, version - ((version - low) & _mask))

    def peek_entry(self, key: str) -> Entry | None:
        """The live entry, like ``lookup_entry``, but only looked at: counts
        no hit or miss and changes no recency or frequency (an expired entry
        is still removed, and counted as expired)."""
        blob = self._live(key)
        return None if blob is None else self._entry(blob)

    def lookup_many(self, keys: Iterable[str], entries: bool = False) -> dict[str, Any]:
        """``lookup`` (or ``lookup_entry`` with ``entries``) of each key, by
        key, for the keys found."""
        read = self.lookup_entry if entries else self.lookup
        found = {}
        for key in keys:
            value = read(key)
            if value is not None:
                found[key] = value
        return found

    def exists(self, key: str) -> bool:
        return self._live(key) is not None

    def ttl(self, key: str) -> float | None:
        """Seconds the key has left, None if it has no TTL; KeyNotFound if absent."""
        now = self.clock()
        blob = self._live(key, now)
        if blob is None:
            raise KeyNotFound(key)
        expires_at = expires_at_of(blob)
        return None if expires_at == FOREVER else expires_at - now

    def entries(self) -> Iterator[tuple[str, Entry]]:
        """Every held entry, expired or not, as (key, Entry): for checks and tests."""
        for key, blob in list(self._data.items()):
            yield key, self._entry(blob)

    def is_live_at(self, key: str, now: float) -> bool:
        """Whether ``key`` is held and not expired at ``now``; removes nothing."""
        blob = self._data.get(key)
        return (
            blob is not None
            and expires_at_of(blob) > now
            and (not blob[-1] & FLAG_TAGS or self.tags.current(tag_refs_of(blob)))
        )

    # -- writes ------------------------------------------------------------------

    def _check_entry(self, key: str, value: bytes) -> int:
        """Validate a key and value; return the key's length in UTF-8 bytes.
        A value over ``max_value_size`` is counted in ``rejected_too_large``
        (as is one over ``max_memory``, in ``_check_fits_alone``)."""
        if key.__class__ is str and key.isascii() and 0 < len(key) <= self.max_key_length:
            length = len(key)  # the common case, without encoding the key
        else:
            length = key_length(key)
            if length > self.max_key_length:
                raise KeyTooLong(length, self.max_key_length)
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
        charge = length + stored + self._overheads[has_ttl]
        if charge > self.max_memory:
            self.rejected_too_large += 1
            raise ValueTooLarge(charge, self.max_memory, "max_memory")

    def _write(
        self,
        key: str,
        key_length: int,
        value: bytes,
        expires_at: float,
        old: bytes | None,
        version: int | None = None,
        flags: int = 0,
        fields: bytes = b"",
    ) -> int:
        """Store ``value`` under ``key`` in place of ``old`` (the live blob, or
        None) and return the version: the one write path of the store, plain
        sets included. The key and value were checked by ``_check_entry``;
        ``flags`` and ``fields`` are the entry's optional fields
        (``encode_fields``), charged with the value."""
        size = key_length + len(value) + len(fields)
        has_ttl = expires_at != FOREVER
        charge = size + self._overheads[has_ttl]
        if charge > self.max_memory:
            self._check_fits_alone(key_length, size - key_length, has_ttl)
        if old is not None:
            if old[-1] & FLAG_EXPIRES:
                old_expires_at, slot, _ = _unpack_timed(old, len(old) - TIMED_SIZE)
                old_size, old_has_ttl = key_length + len(old) - TIMED_SIZE, True
            else:
                slot = _unpack_from(old, len(old) - TRAILER_SIZE)[0]
                old_expires_at, old_size, old_has_ttl = FOREVER, key_length + len(old) - TRAILER_SIZE, False
            growth = charge - old_size - self._overheads[old_has_ttl]
            if self._memory + growth > self.max_memory:
                if self.evicts:
                    self._remove(key, old)
                    old = None
                else:
                    self._make_room(0, growth, self.clock())
                    if self._data.get(key) is not old:
                        # Making room reclaimed the old entry itself: it
                        # expired meanwhile, so this is a fresh entry now.
                        old = None
        if old is None and (len(self._data) >= self.max_size or self._memory + charge > self.max_memory):
            self._make_room(1, charge, self.clock())
        if version is None:  # drawn only once the write can no longer fail
            self._version += 1
            version = self._version
        if old is None:
            slot = self._take_slot(key)
        self._versions[slot] = version & _VERSION_MASK
        trailer = _pack_timed(expires_at, slot, flags | FLAG_EXPIRES) if has_ttl else _pack(slot, flags)
        if old is None:
            self._data[key] = (value + fields if fields else value) + trailer
            self._memory += charge
            self._on_insert(slot, size)
            if has_ttl:
                self._with_ttl += 1
                self._expiry.add(expires_at, slot, self._with_ttl)
        else:
            self._data[key] = (value + fields if fields else value) + trailer
            self._memory += growth
            if old[-1] & FLAG_TAGS:
                self._memory -= self.tags.release(tag_refs_of(old))
            self._on_update(slot, old_size, size)
            if has_ttl != old_has_ttl:
                self._with_ttl += has_ttl - old_has_ttl
            if has_ttl and expires_at != old_expires_at:
                self._expiry.add(expires_at, slot, self._with_ttl)
        return version

    def set(
        self,
        key: str,
        value: bytes,
        ttl: float | None = None,
        if_match: Condition = None,
        if_none_match: Condition = None,
        *,
        binary: bool = False,
        stale: float | None = None,
        tag_refs: Collection[tuple[int, int]] = (),
    ) -> SetResult:
        """Store ``value`` under ``key``, optionally expiring after ``ttl``
        seconds, if the preconditions hold (see the module docstring; a
        failed one raises PreconditionFailed and nothing is written).
        ``binary``: the value is raw bytes, not JSON. ``stale``: seconds past
        the TTL during which the entry is kept and served stale (needs a
        ttl). ``tag_refs``: opaque (tag id, generation) pairs kept with it."""
        if ttl is None:
            expires_at, now = FOREVER, None
        else:
            now = self.clock()
            expires_at = now + check_ttl(ttl)
        flags, fields = FLAG_BINARY if binary else 0, b""
        if stale is not None or tag_refs:
            expires_at, more, fields = self._fields(expires_at, stale, tag_refs)
            flags |= more
        if (
            key.__class__ is str
            and key.isascii()
            and 0 < len(key) <= self.max_key_length
            and value.__class__ is bytes
            and len(value) <= self.max_value_size
        ):
            length = len(key)  # the common case, checked without a call
        else:
            length = self._check_entry(key, value)
        old = self._data.get(key)
        if old is not None and old[-1] & (FLAG_TAGS | FLAG_EXPIRES):
            old = self._live(key, now)  # it may have expired or been invalidated by a tag: _live removes it then
        if if_match is not None or if_none_match is not None:
            self._check_condition(key, old, if_match, if_none_match)
        version = self._write(key, length, value, expires_at, old, None, flags, fields)
        self.sets += 1
        return _new_tuple(SetResult, (old is None, version))  # NamedTuple's __new__ is slow

    @staticmethod
    def _fields(
        expires_at: float, stale: float | None, tag_refs: Collection[tuple[int, int]]
    ) -> tuple[float, int, bytes]:
        """(expiry, flags, bytes) of a write's optional fields: a stale window
        moves the expiry to its end and keeps the TTL's end as fresh_until."""
        fresh_until = None
        if stale is not None:
            check_stale(stale)
            if expires_at == FOREVER:
                raise InvalidTTL("a stale window needs a ttl: an entry without one never turns stale")
            if stale:
                fresh_until, expires_at = expires_at, expires_at + stale
        flags, fields = encode_fields(fresh_until, tag_refs)
        return expires_at, flags, fields

    def _check_condition(self, key: str, old: bytes | None, if_match: Condition, if_none_match: Condition) -> None:
        version = None if old is None else self._version_at(slot_in(old))
        if if_match is not None:
            if version is None:
                raise PreconditionFailed(f"key {key!r} does not exist")
            if if_match != ANY and version not in if_match:
                raise PreconditionFailed(f"key {key!r} is at version {version}, not one named in If-Match")
        if if_none_match is not None and version is not None:
            if if_none_match == ANY:
                raise PreconditionFailed(f"key {key!r} already exists")
            if version in if_none_match:
                raise PreconditionFailed(f"key {key!r} is still at version {version}, named in If-None-Match")

    def set_many(
        self,
        items: Mapping[str, bytes],
        ttl: float | None = None,
        *,
        binary: bool = False,
        stale: float | None = None,
        tag_refs: Collection[tuple[int, int]] = (),
        binary_keys: Collection[str] = (),
    ) -> int:
        """Store every item, or none of them: every key and value is checked
        first, and a policy that does not evict refuses the whole batch if it
        does not fit. Returns how many were stored. ``binary``, ``stale`` and
        ``tag_refs`` as in ``set``, the same for every item; ``binary_keys``:
        the items that are binary in a batch of both kinds (one batch, so
        still all or nothing)."""
        now = self.clock()
        expires_at = FOREVER if ttl is None else now + check_ttl(ttl)
        flags, fields = FLAG_BINARY if binary else 0, b""
        if stale is not None or tag_refs:
            expires_at, more, fields = self._fields(expires_at, stale, tag_refs)
            flags |= more
        checked = []
        for key, value in items.items():
            try:
                length = self._check_entry(key, value)
                self._check_fits_alone(length, len(value) + len(fields), ttl is not None)
            except (InvalidKey, ValueTooLarge, TypeError) as error:
                error.key = key  # type: ignore[attr-defined]
                raise
            checked.append((key, length, value))
        if not self.evicts:
            new_entries = extra_bytes = 0
            for key, length, value in checked:
                charge = self._charge(length + len(value) + len(fields), ttl is not None)
                old = self._live(key, now)
                if old is None:
                    new_entries += 1
                    extra_bytes += charge
                else:
                    extra_bytes += charge - self._charge(length + fields_end(old), old[-1] & FLAG_EXPIRES != 0)
            self._make_room(new_entries, extra_bytes, now)
        for key, length, value in checked:
            item_flags = (flags | FLAG_BINARY) if binary_keys and key in binary_keys else flags
            self._write(key, length, value, expires_at, self._live(key, now), None, item_flags, fields)
        self.sets += len(checked)
        return len(checked)

    def incr(self, key: str, by: int = 1) -> int:
        """Add ``by`` to the integer stored under ``key`` (0 when absent, as
        Redis INCR) and return the result; the TTL is kept."""
        if by.__class__ is not int:
            raise NotAnInteger(f"the increment must be an integer, not {type(by).__name__}")
        old = self._live(key)
        current, expires_at, flags, fields = 0, FOREVER, 0, b""
        if old is not None:
            end = value_end(old)
            flags, fields = fields_of(old)
            if flags & FLAG_BINARY:
                raise NotAnInteger(f"the value of {key!r} is binary, not an integer")
            if not _INTEGER.fullmatch(old, 0, end):
                raise NotAnInteger(f"the value of {key!r} is not an integer in the signed 64-bit range")
            current, expires_at = int(old[:end]), expires_at_of(old)
        result = current + by
        if not INT64_MIN <= result <= INT64_MAX:
            raise IntegerOverflow(f"incrementing {key!r} by {by} would overflow 64 bits")
        value = b"%d" % result
        self._rewrite(key, self._check_entry(key, value), value, expires_at, old, None, flags, fields)
        self.sets += 1
        return result

    def expire(self, key: str, ttl: float | None) -> bool:
        """Give a live key a new TTL (None: no TTL any more). Its value,
        version, type and tags stay; a stale window keeps its length after
        the new TTL (and goes with the TTL). False when the key does not exist."""
        now = self.clock()
        expires_at = FOREVER if ttl is None else now + check_ttl(ttl)
        old = self._live(key, now)
        if old is None:
            return False
        entry = self._entry(old)
        flags, fields = fields_of(old)
        if entry.fresh_until is not None:
            window = entry.expires_at - entry.fresh_until  # type: ignore[operator]
            fresh_until = None if ttl is None else expires_at
            expires_at = expires_at if ttl is None else expires_at + window
            more, fields = encode_fields(fresh_until, entry.tag_refs)
            flags = (flags & FLAG_BINARY) | more
        self._rewrite(
            key, self._check_entry(key, entry.value), entry.value, expires_at, old, entry.version, flags, fields
        )
        return True

    def mark_stale(self, key: str, grace: float) -> bool:
        """Make a live entry stale now without removing it (memcached's
        ``md key I``): fresh_until becomes now, and the entry is still kept
        until its expiry. An entry without a stale window gets one of
        ``grace`` seconds (its expiry is brought forward to now + grace if it
        was later). Value, version, type and tags stay. False when the key
        does not exist."""
        now = self.clock()
        old = self._live(key, now)
        if old is None:
            return False
        entry = self._entry(old)
        expires_at = FOREVER if entry.expires_at is None else entry.expires_at
        if entry.fresh_until is None:
            expires_at = min(expires_at, now + check_ttl(grace))
        more, fields = encode_fields(now if entry.fresh_until is None else min(now, entry.fresh_until), entry.tag_refs)
        self._rewrite(
            key,
            self._check_entry(key, entry.value),
            entry.value,
            expires_at,
            old,
            entry.version,
            (old[-1] & FLAG_BINARY) | more,
            fields,
        )
        return True

    def delete(self, key: str) -> bool:
        blob = self._live(key)
        if blob is None:
            return False
        self._remove(key, blob)
        self.deletes += 1
        return True

    def delete_many(self, keys: Iterable[str]) -> int:
        return sum(self.delete(key) for key in keys)

    # -- tags (tags.py): names to refs, and entries dropped for an outdated one -----

    def acquire_tags(self, tags: Collection[str], times: int = 1) -> tuple[tuple[int, int], ...]:
        """Refs to the checked ``tags`` for ``times`` entries about to be
        written (``TagRegistry.acquire``), the new tags charged in memory_usage."""
        refs, grown = self.tags.acquire(tags, times)
        self._memory += grown
        return refs

    def release_tags(self, refs: Collection[tuple[int, int]], times: int = 1) -> None:
        """Give back what ``acquire_tags`` took, for a write that did not happen."""
        self._memory -= self.tags.release(refs, times)

    def set_tagged(self, key: str, value: bytes, ttl: float | None, tags: Collection[str], **options: Any) -> SetResult:
        """``set`` with the entry carrying ``tags`` (names, checked)."""
        refs = self.acquire_tags(tags)
        try:
            return self.set(key, value, ttl, tag_refs=refs, **options)
        except BaseException:
            self.release_tags(refs)
            raise

    def set_many_tagged(
        self, items: Mapping[str, bytes], ttl: float | None, tags: Collection[str], **options: Any
    ) -> int:
        """``set_many`` with every item carrying ``tags`` (names, checked)."""
        refs = self.acquire_tags(tags, len(items))
        try:
            return self.set_many(items, ttl, tag_refs=refs, **options)
        except BaseException:
            self.release_tags(refs, len(items))
            raise

    def tags_of(self, entry: Entry) -> tuple[str, ...]:
        """The names of the tags ``entry`` (a live one) carries."""
        return self.tags.names_of(entry.tag_refs) if entry.tag_refs else ()

    def _rewrite(
        self,
        key: str,
        length: int,
        value: bytes,
        expires_at: float,
        old: bytes | None,
        version: int | None,
        flags: int,
        fields: bytes,
    ) -> None:
        """``_write`` of an entry that keeps the tag refs of ``old`` (incr,
        touch): a write gives back the old entry's counts, so they are taken
        again first."""
        refs = tag_refs_of(old) if old is not None and flags & FLAG_TAGS else ()
        if refs:
            self.tags.acquire_refs(refs)
        try:
            self._write(key, length, value, expires_at, old, version, flags, fields)
        except BaseException:
            self.release_tags(refs)
            raise

    def _drop_invalidated(self, key: str, blob: bytes) -> None:
        """Remove an entry one of whose tags was invalidated since it was written."""
        self._remove(key, blob)
        self.tags.invalidated_entries += 1

    # -- maintenance -------------------------------------------------------------

    def sweep(self, now: float, limit: int) -> int:
        """Reclaim at most ``limit`` entries expired at ``now``; return how many."""
        data = self._data
        reclaimed = 0
        while reclaimed < limit:
            slot = self._expiry.pop_due(now)
            if slot is None:
                break
            key = self.key_at(slot)
            self._remove(key, data[key])  # type: ignore[index]
            reclaimed += 1
        self.expired += reclaimed
        return reclaimed

    def counters(self) -> dict[str, int | float | str]:
        """A snapshot of the statistics the store keeps."""
        lookups = self.hits + self.misses
        return {
            "hits": self.hits,
            "misses": self.misses,
            "sets": self.sets,
            "deletes": self.deletes,
            "evictions": self.evictions,
            "expired": self.expired,
            "rejected_too_large": self.rejected_too_large,
            "rejected_full": self.rejected_full,
            "current_size": len(self._data),
            "max_size": self.max_size,
            "memory_usage_bytes": self._memory,
            "max_memory_bytes": self.max_memory,
            "hit_ratio": self.hits / lookups if lookups else 0.0,
            "policy": self.name,
            **self.tags.counters(),
        }

    # -- snapshots (snapshot.py): the store's whole surface for them ----------------
    # Kept apart on purpose: the on-disk format lives in snapshot.py and
    # relies only on these methods and the three policy hooks below.

    def _snapshot_order(self) -> Iterator[int]:
        """Every held slot, coldest first (the next victim first). The default,
        for a policy that keeps no order of its own: insertion order."""
        for blob in self._data.values():
            yield slot_in(blob)

    def _snapshot_hint(self, slot: int) -> int:
        """What the policy keeps about ``slot`` beyond its place in the order
        (lfu: its use count); 0 for a policy that keeps nothing."""
        return 0

    def _restore_hint(self, slot: int, hint: int) -> None:
        """Give the just-restored entry at ``slot`` its ``_snapshot_hint``."""

    def export_entries(self, wall_now: float) -> Iterator[Record]:
        """Every held entry (expired ones too: a loader drops them) as (key,
        value, expiry as a wall-clock time or None, policy hint, ``Extra`` or
        None), coldest first. ``wall_now`` is ``time.time()`` taken with the
        store's clock, to turn its times into wall-clock ones. The caller
        keeps the store still while it iterates (the lock, or a forked copy)."""
        offset = wall_now - self.clock()
        data, key_at, hint = self._data, self.key_at, self._snapshot_hint
        for slot in self._snapshot_order():
            key = key_at(slot)
            blob = data[key]  # type: ignore[index]
            flags = blob[-1]
            if flags & FLAG_EXPIRES:
                end = len(blob) - TIMED_SIZE
                wall_expiry = _unpack_timed(blob, end)[0] + offset
            else:
                end, wall_expiry = len(blob) - TRAILER_SIZE, None
            if not flags & ~FLAG_EXPIRES:
                yield key, blob[:end], wall_expiry, hint(slot), None  # type: ignore[misc]
                continue
            entry = entry_of(blob, 0)  # (a record keeps no version)
            fresh_until = None if entry.fresh_until is None else entry.fresh_until + offset
            if entry.tag_refs and not self.tags.current(entry.tag_refs):
                wall_expiry = wall_now  # invalidated: a loader drops it as expired
            yield (
                key,
                entry.value,
                wall_expiry,
                hint(slot),
                Extra(  # type: ignore[misc]
                    entry.binary, fresh_until, self.tags_of(entry)
                ),
            )

    @staticmethod
    def _restored_fields(
        extra: Extra | None, offset: float, tag_refs: Collection[tuple[int, int]] = ()
    ) -> tuple[int, bytes]:
        """The flags and optional fields of a record's ``Extra`` on this store's
        clock; ``tag_refs``: the refs to its tags (``_restore_tagged``)."""
        if extra is None:
            return 0, b""
        flags, fields = encode_fields(
            None if extra.fresh_until is None else extra.fresh_until + offset, tag_refs or ((0, 0),) * len(extra.tags)
        )
        return flags | (FLAG_BINARY if extra.binary else 0), fields

    def _restore_tagged(
        self, key: str, length: int, value: bytes, expires_at: float, extra: Extra, offset: float
    ) -> bool:
        """Write a restored record that has tags (by name); False when its
        tags are not usable here (invalid under this cache's tag limits):
        it is left out, since without them no invalidation would reach it."""
        try:
            refs = self.acquire_tags(check_tags(extra.tags, self.tags.limits))
        except CacheError:
            return False
        try:
            self._write(
                key, length, value, expires_at, self._data.get(key), None, *self._restored_fields(extra, offset, refs)
            )
        except BaseException:
            self.release_tags(refs)
            raise
        return True

    def restore(self, records: list[Record], wall_now: float, hints: bool = True) -> tuple[int, int, int]:
        """Insert ``records`` as ``export_entries`` yields them (coldest first,
        so the policy ends up in the same order) and return (restored,
        expired, left out by the limits). Expired records are dropped; when
        the limits are smaller than the records, the hottest that fit are
        kept. ``hints``: apply the policy hints (only when the records come
        from the same policy). Counts no set; draws new versions."""
        now = self.clock()
        offset = now - wall_now
        # Whether everything fits for sure (UTF-8 is at most 4 bytes a
        # character); if not, find the hottest that fit first.
        keys_bound = 4 * sum(map(len, map(itemgetter(0), records)))
        values = sum(map(len, map(itemgetter(1), records)))
        charges_bound = keys_bound + values + len(records) * (self._overheads[True] + _FRESH.size)
        fits = len(self._data) + len(records) <= self.max_size and self._memory + charges_bound <= self.max_memory
        start = 0 if fits else self._first_that_fits(records, now, offset)
        data, write, restore_hint = self._data, self._write, self._restore_hint
        max_key_length, max_value_size = self.max_key_length, self.max_value_size
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
            if length > max_key_length or len(value) > max_value_size:
                too_large += 1
                continue
            if extra is None:
                write(key, length, value, expires_at, data.get(key))
            elif extra.tags:
                if not self._restore_tagged(key, length, value, expires_at, extra, offset):
                    too_large += 1
                    continue
            else:
                write(key, length, value, expires_at, data.get(key), None, *self._restored_fields(extra, offset))
            restored += 1
            if hints and hint:
                restore_hint(slot_in(data[key]), hint)
        if start:  # what was cut: the expired and oversized among them are counted as such
            skipped_expired, skipped_too_large, left_out = self._classify(records[:start], now, offset)
            expired += skipped_expired
            too_large += skipped_too_large
        else:
            left_out = 0
        return restored, expired, too_large + left_out

    def _restore_keeps(self, record: Record, now: float, offset: float) -> int | None:
        """The charge of a record ``restore`` would insert, or None (expired, oversized)."""
        key, value, wall_expiry, _, extra = record
        if wall_expiry is not None and wall_expiry + offset <= now:
            return None
        length = key_length(key)
        if length > self.max_key_length or len(value) > self.max_value_size:
            return None
        fields = self._restored_fields(extra, offset)[1]
        return length + len(value) + len(fields) + self._overheads[wall_expiry is not None]

    def _first_that_fits(self, records: list[Record], now: float, offset: float) -> int:
        """The index from which the records ``restore`` keeps fit the limits:
        walking back from the hottest while they fit."""
        start, entries, memory = len(records), len(self._data), self._memory
        while start > 0:
            charge = self._restore_keeps(records[start - 1], now, offset)
            if charge is not None:
                if entries >= self.max_size or memory + charge > self.max_memory:
                    break
                entries += 1
                memory += charge
            start -= 1
        return start

    def _classify(self, records: list[Record], now: float, offset: float) -> tuple[int, int, int]:
        """(expired, oversized, left out by the limits) among records ``restore`` cut."""
        expired = too_large = 0
        for key, value, wall_expiry, *_ in records:
            if wall_expiry is not None and wall_expiry + offset <= now:
                expired += 1
            elif key_length(key) > self.max_key_length or len(value) > self.max_value_size:
                too_large += 1
        return expired, too_large, len(records) - expired - too_large
