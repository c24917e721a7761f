"""The store: one mapping, its bookkeeping, and the single eviction rule.

This is the part every eviction policy shares (cachetools' ``Cache`` plays the
same role). It is *not* thread-safe: ``Cache`` in cache.py wraps it in the one
lock of the engine.

``Store`` is the coordinator of rooms of one concern each, and holds the
reads, the writes' checks and conditions, and the statistics:

- entry.py: the entry codec, one ``bytes`` blob per entry, and why;
- limits.py: the limits (``Limits``), the key rule, TTLs and stale windows;
- slots.py (``SlotTable``): slots, keys and versions by slot, the policy hooks;
- room.py (``Room``): the one write path, removal, the memory charge and the
  eviction rule;
- restore.py: snapshot records out of a store and back (snapshot.py's side);
- tags.py, expire.py: the tag registry and the expiry index.

Expiry
------
An expired entry is never returned: every read compares the expiry time with
the clock and removes the entry on the spot. Entries with a TTL are also
recorded in an ``ExpiryIndex`` (expire.py), from which the sweeper and the
eviction rule reclaim expired entries earliest first, without scanning.

Conditional writes
------------------
``set`` takes HTTP's two preconditions, checked in the same call as the
write: ``if_match`` (``ANY``: only if present; versions: only if present at
one of them) and ``if_none_match`` (``ANY``: only if absent; versions: unless
present at one of them). A failed condition raises ``PreconditionFailed``,
counts no hit or miss and leaves the policy's order alone.
"""

from __future__ import annotations

import gc
import re
import secrets
import time
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping
from typing import Any, Literal, NamedTuple

from .bulk import write_many
from .entry import (  # noqa: F401  (the codec's names, importable from here as before)
    BINARY,
    FIELD_FLAGS,
    FLAG_BINARY,
    FLAG_EXPIRES,
    FLAG_STALE,
    FLAG_TAGS,
    FOREVER,
    MAX_TAG_REFS,
    PLAIN,
    TIMED_SIZE,
    TRAILER_SIZE,
    Entry,
    Extra,
    Fields,
    encode_fields,
    entry_of,
    expires_at_of,
    fields_end,
    fields_of,
    flags_of,
    slot_in,
    tag_refs_of,
    unpack_timed,
    unpack_trailer,
    value_end,
    value_of,
)
from .errors import (
    IntegerOverflow,
    InvalidTTL,
    KeyNotFound,
    NotAnInteger,
    PreconditionFailed,
    ValueTooLarge,
)
from .expire import ExpiryIndex
from .limits import (  # noqa: F401  (importable from here as before)
    DEFAULT_LIMITS,
    DEFAULT_MAX_KEY_LENGTH,
    DEFAULT_MAX_MEMORY,
    DEFAULT_MAX_SIZE,
    DEFAULT_MAX_VALUE_SIZE,
    INT64_MAX,
    INT64_MIN,
    MAX_TTL,
    KiB,
    Limits,
    MiB,
    check_key,
    check_stale,
    check_ttl,
    key_length,
)
from .restore import Record, export_entries, restore
from .room import DELETE, EXPIRE, Room
from .slots import SHARD_BITS, VERSION_MASK  # noqa: F401
from .tags import TagLimits, TagRegistry

CLEAR = "clear"  # a change reported to on_change (changes.py)

# What incr/decr accept as an integer: a JSON integer, as the daemon stores it.
_INTEGER = re.compile(rb"-?(?:0|[1-9][0-9]{0,18})")

Clock = Callable[[], float]

ANY: Literal["*"] = "*"
# A precondition: ANY, or the versions that satisfy it (an empty one: none).
Condition = Literal["*"] | Collection[int] | None

_new_tuple = tuple.__new__


class SetResult(NamedTuple):
    created: bool  # the key did not exist (or had expired) before this write
    version: int


def write_fields(
    expires_at: float,
    stale: float | None,
    tag_refs: Collection[tuple[int, int]],
    binary: bool,
    original_size: int | None = None,
) -> tuple[float, Fields]:
    """(expiry, fields) of a write's optional fields: a stale window
    moves the expiry to its end and keeps the TTL's end as fresh_until.
    ``original_size``: the value is held compressed (``FLAG_COMPRESSED``)."""
    fresh_until = None
    if stale is not None:
        check_stale(stale)
        if expires_at == FOREVER:
            raise InvalidTTL("a stale window needs a ttl: an entry without one never turns stale")
        if stale:
            fresh_until, expires_at = expires_at, expires_at + stale
    flags, fields = encode_fields(fresh_until, tag_refs, original_size)
    return expires_at, ((flags | FLAG_BINARY) if binary else flags, fields)


def check_condition(key: str, version: int | None, if_match: Condition, if_none_match: Condition) -> None:
    """PreconditionFailed unless the entry at ``version`` (None: absent)
    satisfies both preconditions (see the module docstring)."""
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


class Store(Room):
    """The shared base of every policy. Not thread-safe (see ``Cache``)."""

    # Every attribute is a slot, in the base, its rooms (slots.py, room.py)
    # and each policy: CPython reads slots with one specialized instruction,
    # always. (Without them an object's attributes sit inline only while it
    # has few enough of them (about 30) and nothing has read its __dict__;
    # past that each read takes the generic lookup, about twice the time.)
    __slots__ = (
        "deletes",
        "hits",
        "limits",
        "misses",
        "on_expiry_overgrown",
        "sets",
        "slot_epoch",
    )

    def __init__(self, limits: Limits = DEFAULT_LIMITS, clock: Clock = time.monotonic) -> None:
        self.limits = limits
        self.max_size = limits.max_size
        self.max_memory = limits.max_memory
        self.max_key_length = limits.max_key_length
        self.max_value_size = limits.max_value_size
        self.clock = clock
        # Set by Cache while its sweeper runs: rebuilds of the expiry index
        # are then handed to the sweeper instead of done inside a write.
        self.on_expiry_overgrown: Callable[[], None] | None = None
        self.on_change = None  # told of every change (room.py, changes.py)
        # What an entry is charged beyond its key and value, by has-a-TTL (room.py).
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
        self._reset_slots()
        self._expiry = ExpiryIndex(self._expires_at_slot, self._expiry_overgrown)
        self._memory = 0
        self._with_ttl = 0  # entries that have a TTL
        self.compressed = [0, 0, 0]  # entries held compressed: count, original bytes, held bytes
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
        if self.on_change is not None:
            self.on_change(CLEAR, None)
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

    def slot_of(self, key: str) -> int | None:
        """The slot ``key`` holds (expired or not), None when it is absent."""
        blob = self._data.get(key)
        return None if blob is None else slot_in(blob)

    def _entry(self, blob: bytes) -> Entry:
        """The whole entry held in ``blob`` (``entry_of``, with its version)."""
        return entry_of(blob, self._version_at(slot_in(blob)))

    def _expires_at_slot(self, slot: int) -> float | None:
        """The expiry time of the entry holding ``slot`` (None: free slot)."""
        # .get at both steps: the sweeper calls this outside the lock (expire.py).
        key = self.key_at(slot)
        blob = None if key is None else self._data.get(key)
        return None if blob is None else expires_at_of(blob)

    # -- reads -------------------------------------------------------------------

    def _hit(
        self,
        key: str,
        _unpack_trailer: Callable = unpack_trailer,
        _unpack_timed: Callable = unpack_timed,
        _trailer: int = TRAILER_SIZE,
        _timed: int = TIMED_SIZE,
        _tagged: int = FLAG_TAGS,
        _expires: int = FLAG_EXPIRES,
    ) -> bytes | None:
        """A read: the live blob (counting a hit and recording the access)
        or None (counting a miss). ``get`` and ``get_entry`` are this."""
        # (The defaults bind module constants as locals: the hottest path.)
        # PERF: the trailer decoded here (slot_in, expires_at_of of entry.py,
        # written out: every read).
        blob = self._data.get(key)
        if blob is not None:
            flags = blob[-1]
            if flags & _tagged and not self.tags.current(tag_refs_of(blob)):
                self._drop_invalidated(key, blob)  # an invalidated tag: a miss
            elif not flags & _expires:
                self._on_access(_unpack_trailer(blob, len(blob) - _trailer)[0], key)
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
                if self.on_change is not None:
                    self.on_change(EXPIRE, key)
        self.misses += 1
        return None

    def get(self, key: str, _trailer: int = TRAILER_SIZE) -> bytes | None:
        """A read: the live value (counting a hit and recording the access)
        or None (counting a miss)."""
        blob = self._hit(key)
        if blob is None:
            return None
        # PERF: value_of's common case (no flags) written out: every read.
        return blob[: len(blob) - _trailer] if not blob[-1] else value_of(blob)

    def get_entry(self, key: str, _trailer: int = TRAILER_SIZE, _mask: int = VERSION_MASK) -> Entry | None:
        """``get``, returning the whole entry (``Entry``)."""
        blob = self._hit(key)
        if blob is None:
            return None
        # PERF: _entry (slot_in and _version_at) written out: a GET's path.
        version = self._version
        low = self._versions[unpack_trailer(blob, len(blob) - _trailer)[0]]
        return entry_of(blob, version - ((version - low) & _mask))

    def peek_entry(self, key: str) -> Entry | None:
        """The live entry, like ``get_entry``, but only looked at: counts
        no hit or miss and changes no recency or frequency (an expired entry
        is still removed, and counted as expired)."""
        blob = self._live(key)
        return None if blob is None else self._entry(blob)

    def get_many(self, keys: Iterable[str], entries: bool = False) -> dict[str, Any]:
        """``get`` (or ``get_entry`` with ``entries``) of each key, by
        key, for the keys found."""
        read = self.get_entry if entries else self.get
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
            and (not flags_of(blob) & FLAG_TAGS or self.tags.current(tag_refs_of(blob)))
        )

    # -- writes (room.py has the one write path, ``_write``) ----------------------

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
        original_size: int | None = None,
    ) -> SetResult:
        """Store ``value`` under ``key``, optionally expiring after ``ttl``
        seconds, if the preconditions hold (see the module docstring; a
        failed one raises PreconditionFailed and nothing is written).
        ``binary``: the value is raw bytes, not JSON. ``stale``: seconds past
        the TTL during which the entry is kept and served stale (needs a
        ttl). ``tag_refs``: opaque (tag id, generation) pairs kept with it.
        ``original_size``: ``value`` is gzip-compressed, and this is its size
        uncompressed (held with it; ``max_value_size`` applies to it)."""
        if ttl is None:
            expires_at, now = FOREVER, None
        else:
            now = self.clock()
            expires_at = now + check_ttl(ttl)
        fields = BINARY if binary else PLAIN
        if stale is not None or tag_refs or original_size is not None:
            if original_size is not None and original_size > self.max_value_size:
                self.rejected_too_large += 1
                raise ValueTooLarge(original_size, self.max_value_size)
            expires_at, fields = write_fields(expires_at, stale, tag_refs, binary, original_size)
        if (
            key.__class__ is str
            and key.isascii()
            and 0 < len(key) <= self.max_key_length
            and value.__class__ is bytes
            and len(value) <= self.max_value_size
        ):
            length = len(key)  # PERF: check_key's common case (and the value's), without a call
        else:
            length = self._check_entry(key, value)
        old = self._data.get(key)
        # PERF: the flags byte read here (flags_of, written out: every write).
        if old is not None and old[-1] & (FLAG_TAGS | FLAG_EXPIRES):
            old = self._live(key, now)  # it may have expired or been invalidated by a tag: _live removes it then
        if if_match is not None or if_none_match is not None:
            check_condition(key, None if old is None else self._version_at(slot_in(old)), if_match, if_none_match)
        version = self._write(key, length, value, expires_at, old, fields)
        self.sets += 1
        return _new_tuple(SetResult, (old is None, version))  # NamedTuple's __new__ is slow

    def set_many(
        self,
        items: Mapping[str, bytes],
        ttl: float | None = None,
        *,
        binary: bool = False,
        stale: float | None = None,
        tag_refs: Collection[tuple[int, int]] = (),
        binary_keys: Collection[str] = (),
        compressed: Mapping[str, int] | None = None,
    ) -> int:
        """Store every item, or none of them: every key and value is checked
        first, and a policy that does not evict refuses the whole batch if it
        does not fit. Returns how many were stored. ``binary``, ``stale`` and
        ``tag_refs`` as in ``set``, the same for every item; ``binary_keys``:
        the items that are binary in a batch of both kinds (one batch, so
        still all or nothing); ``compressed``: the items held gzip-compressed,
        each with its original size (``set``'s ``original_size``)."""
        now = self.clock()
        expires_at = FOREVER if ttl is None else now + check_ttl(ttl)
        fields = BINARY if binary else PLAIN
        if stale is not None or tag_refs:
            expires_at, fields = write_fields(expires_at, stale, tag_refs, binary)
        stored = write_many(self, items, expires_at, fields, ttl is not None, now, binary_keys, compressed)
        self.sets += stored
        return stored

    def incr(self, key: str, by: int = 1) -> int:
        """Add ``by`` to the integer stored under ``key`` (0 when absent, as
        Redis INCR) and return the result; the TTL is kept."""
        if by.__class__ is not int:
            raise NotAnInteger(f"the increment must be an integer, not {type(by).__name__}")
        old = self._live(key)
        current, expires_at, fields = 0, FOREVER, PLAIN
        if old is not None:
            end = value_end(old)
            fields = fields_of(old)
            if fields[0] & FLAG_BINARY:
                raise NotAnInteger(f"the value of {key!r} is binary, not an integer")
            if not _INTEGER.fullmatch(old, 0, end):
                raise NotAnInteger(f"the value of {key!r} is not an integer in the signed 64-bit range")
            current, expires_at = int(old[:end]), expires_at_of(old)
        result = current + by
        if not INT64_MIN <= result <= INT64_MAX:
            raise IntegerOverflow(f"incrementing {key!r} by {by} would overflow 64 bits")
        self._rewrite(key, b"%d" % result, expires_at, old, fields)
        self.sets += 1
        return result

    def touch(self, key: str, ttl: float | None) -> bool:
        """Give a live key a new TTL (None: no TTL any more, ``persist``). Its value,
        version, type and tags stay; a stale window keeps its length after
        the new TTL (and goes with the TTL). False when the key does not exist."""
        now = self.clock()
        expires_at = FOREVER if ttl is None else now + check_ttl(ttl)
        old = self._live(key, now)
        if old is None:
            return False
        entry = self._entry(old)
        fields = fields_of(old)
        if entry.fresh_until is not None:
            window = entry.expires_at - entry.fresh_until  # type: ignore[operator]
            fresh_until = None if ttl is None else expires_at
            expires_at = expires_at if ttl is None else expires_at + window
            more, data = encode_fields(fresh_until, entry.tag_refs, entry.original_size)
            fields = ((fields[0] & FLAG_BINARY) | more, data)
        self._rewrite(key, entry.value, expires_at, old, fields, entry.version)
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
        fresh_until = now if entry.fresh_until is None else min(now, entry.fresh_until)
        more, data = encode_fields(fresh_until, entry.tag_refs, entry.original_size)
        self._rewrite(key, entry.value, expires_at, old, ((flags_of(old) & FLAG_BINARY) | more, data), entry.version)
        return True

    def delete(self, key: str) -> bool:
        blob = self._live(key)
        if blob is None:
            return False
        self._remove(key, blob)
        self.deletes += 1
        if self.on_change is not None:
            self.on_change(DELETE, key)
        return True

    def delete_many(self, keys: Iterable[str]) -> int:
        return sum(self.delete(key) for key in keys)

    # -- tags (tags.py): names to refs; room.py charges the registry's bytes ---------

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

    # -- statistics ----------------------------------------------------------------

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
            "compressed_entries": self.compressed[0],
            "compressed_original_bytes": self.compressed[1],
            "compressed_stored_bytes": self.compressed[2],
            "compressed_saved_bytes": self.compressed[1] - self.compressed[2],
            # held ÷ original of the entries held compressed (1.0: none is)
            "compression_ratio": self.compressed[2] / self.compressed[1] if self.compressed[1] else 1.0,
            **self.tags.counters(),
        }

    # -- snapshots (snapshot.py): the store's whole surface for them, in restore.py ---

    def export_entries(self, wall_now: float) -> Iterator[Record]:
        """Every held entry (expired ones too: a loader drops them) as (key,
        value, expiry as a wall-clock time or None, policy hint, ``Extra`` or
        None), coldest first. ``wall_now`` is ``time.time()`` taken with the
        store's clock, to turn its times into wall-clock ones. The caller
        keeps the store still while it iterates (the lock, or a forked copy)."""
        return export_entries(self, wall_now)

    def restore(self, records: list[Record], wall_now: float, hints: bool = True) -> tuple[int, int, int]:
        """Insert ``records`` as ``export_entries`` yields them (coldest first,
        so the policy ends up in the same order) and return (restored,
        expired, left out by the limits). Expired records are dropped; when
        the limits are smaller than the records, the hottest that fit are
        kept. ``hints``: apply the policy hints (only when the records come
        from the same policy). Counts no set; draws new versions."""
        return restore(self, records, wall_now, hints)
