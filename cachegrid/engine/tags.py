"""Tags: names for groups of entries, invalidated in O(1) by generations.

An entry written with tags (``Cache.set(..., tags=["user:42", "page"])``)
carries, inside its blob, one *ref* per tag: the tag's id and the tag's
generation at the time of the write (store.py keeps the refs, opaque to it).
This registry, beside the store and under the engine's one lock, maps each
tag name to its id and current generation (Laravel's TagSet and Symfony's
TagAwareAdapter keep the same counter per tag).

Invalidating a tag adds one to its generation, and that is all: O(1) however
many entries carry it. Every read of an entry with tags (``Store._hit``,
``_live``: only entries whose flags byte has ``FLAG_TAGS`` pay for it)
compares each ref with the tag's current generation, and an entry holding an
outdated one is a miss, removed on the spot (counted in
``tag_invalidated_entries``). The entries nobody reads again are reclaimed
by the sweeper (sweeper.py), which walks the slots in bounded slices under
the lock after an invalidation (``reclaim_slice``), as key listing does.

Live entries per tag
--------------------
Each tag counts the entries that hold a ref to it, of any generation (an
invalidated entry not reclaimed yet still holds its ref). The count is taken
before the write (``acquire``, so the write's eviction can never drop a tag
the new entry is about to use) and given back by every removal and
replacement (``release``; a write that fails gives it back at once). A tag
whose count falls to zero is forgotten and its id reused: invalidating or
listing it then costs nothing, and the registry holds only tags in use.

Memory
------
A tag costs ``TAG_OVERHEAD`` bytes plus its name's length, charged in the
store's ``memory_usage`` (so the eviction rule makes room for it); the
refs in the blobs are charged with their entries (8 bytes each, plus 1).
``measure_tag_overhead`` is how ``TAG_OVERHEAD`` was found, and
tests/engine/test_tags.py checks it.

Names and limits
----------------
A tag name is 1 to ``max_tag_length`` bytes of ``A-Z a-z 0-9 _ . : @ -``
(nothing that needs escaping in a URL path or a comma-separated query), an
entry holds at most ``max_tags_per_entry`` of them (at most 255: the count is
one byte of the blob), and the registry at most ``max_tags`` distinct tags.
"""

from __future__ import annotations

import re
from array import array
from collections.abc import Collection, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from .errors import CacheError

DEFAULT_MAX_TAGS_PER_ENTRY = 32
DEFAULT_MAX_TAG_LENGTH = 128  # bytes
DEFAULT_MAX_TAGS = 100_000  # distinct tags at once
MAX_TAGS_PER_ENTRY = 255  # the blob's count is one byte
TAG_NAME = re.compile(r"[A-Za-z0-9_.:@-]+")
TAG_NAME_RULE = "letters, digits and _ . : @ -"
# What one registered tag costs beyond its name's length (measure_tag_overhead:
# the name's str header, its dict item and index, the list and array slots).
TAG_OVERHEAD = 128
_GENERATION_MASK = 0xFFFFFFFF  # generations are uint32 in the blob

Ref = tuple[int, int]  # (tag id, generation)


class InvalidTag(CacheError, ValueError):
    """A tag name that is empty, not a string, or has characters outside the rule."""


class TagTooLong(InvalidTag):
    def __init__(self, tag: str, limit: int) -> None:
        super().__init__(f"tag {tag[:64]!r} is {len(tag.encode())} bytes long; the limit is {limit} bytes")
        self.limit = limit


class TooManyTags(InvalidTag):
    """More tags on one entry than ``max_tags_per_entry``."""

    def __init__(self, count: int, limit: int) -> None:
        super().__init__(f"{count} tags on one entry; the limit is {limit}")
        self.limit = limit


class TagLimitReached(CacheError):
    """The registry holds ``max_tags`` distinct tags already: a new one is refused."""

    def __init__(self, limit: int) -> None:
        super().__init__(f"the cache holds {limit} distinct tags, its limit (max_tags): a new tag is refused")
        self.limit = limit


@dataclass(frozen=True)
class TagLimits:
    max_tags_per_entry: int = DEFAULT_MAX_TAGS_PER_ENTRY
    max_tag_length: int = DEFAULT_MAX_TAG_LENGTH  # bytes
    max_tags: int = DEFAULT_MAX_TAGS  # distinct tags

    def __post_init__(self) -> None:
        for setting in ("max_tags_per_entry", "max_tag_length", "max_tags"):
            value = getattr(self, setting)
            if value.__class__ is not int or value < 1:
                raise ValueError(f"{setting} must be a whole number of at least 1, not {value!r}")
        if self.max_tags_per_entry > MAX_TAGS_PER_ENTRY:
            raise ValueError(f"max_tags_per_entry must be at most {MAX_TAGS_PER_ENTRY}, not {self.max_tags_per_entry}")


def check_tag(tag: Any, max_length: int) -> str:
    """``tag`` if it is a usable tag name, else InvalidTag (or TagTooLong)."""
    if tag.__class__ is not str:
        raise InvalidTag(f"a tag must be a string, not {type(tag).__name__}")
    if not tag:
        raise InvalidTag("a tag is empty")
    if len(tag) > max_length:  # the rule admits ASCII only: characters are bytes
        raise TagTooLong(tag, max_length)
    if not TAG_NAME.fullmatch(tag):
        raise InvalidTag(f"tag {tag[:64]!r} has a character outside {TAG_NAME_RULE}")
    return tag


def check_tags(tags: Iterable[Any], limits: TagLimits) -> tuple[str, ...]:
    """The tags of one entry, checked, duplicates then dropped (the first kept)."""
    if isinstance(tags, (str, bytes)):
        raise InvalidTag("tags must be a list of names, not one string")
    given = list(tags)
    if len(given) > limits.max_tags_per_entry:  # counted as given: a repeated tag counts too
        raise TooManyTags(len(given), limits.max_tags_per_entry)
    return tuple(dict.fromkeys(check_tag(tag, limits.max_tag_length) for tag in given))


class TagRegistry:
    """Tag name -> (id, generation, live entries), for one store. Not
    thread-safe: the store's owner holds the engine's lock."""

    def __init__(self, limits: TagLimits = TagLimits()) -> None:
        self.limits = limits
        self._ids: dict[str, int] = {}
        self._names: list[str | None] = []  # by id; None: a free id
        self._generations = array("I")  # by id
        self._counts = array("Q")  # by id: entries holding a ref to it
        self._free = array("I")  # ids to reuse
        self.memory = 0  # bytes charged for the registered tags
        self.invalidations = 0  # tags invalidated (one per name asked for)
        self.invalidated_entries = 0  # entries dropped for an outdated generation
        # Grows with every invalidation of a tag in use: the sweeper walks
        # the store when it differs from the value it last walked for.
        self.epoch = 0
        self.reclaimed_epoch = 0  # the epoch the sweeper's last complete walk began at

    def __len__(self) -> int:
        return len(self._ids)

    def emptied(self) -> TagRegistry:
        """A registry with no tag, the same limits and the counters so far
        (what a cleared store starts with)."""
        fresh = TagRegistry(self.limits)
        fresh.invalidations, fresh.invalidated_entries = self.invalidations, self.invalidated_entries
        return fresh

    # -- writes: taking and giving back refs --------------------------------------

    def acquire(self, tags: Collection[str], times: int = 1) -> tuple[tuple[Ref, ...], int]:
        """Refs to the (checked) ``tags`` at their current generations, each
        counted ``times`` (the entries about to be written), registering the
        new ones; returns the refs and the bytes the new tags cost. Nothing
        changes when a new tag would pass ``max_tags``."""
        ids = self._ids
        new = sum(1 for tag in tags if tag not in ids)
        if new and len(ids) + new > self.limits.max_tags:
            raise TagLimitReached(self.limits.max_tags)
        refs, grown = [], 0
        for tag in tags:
            tag_id = ids.get(tag)
            if tag_id is None:
                tag_id = self._register(tag)
                grown += TAG_OVERHEAD + len(tag)
            self._counts[tag_id] += times
            refs.append((tag_id, self._generations[tag_id]))
        self.memory += grown
        return tuple(refs), grown

    def acquire_refs(self, refs: Iterable[Ref]) -> None:
        """Count one more entry for each ref (an entry rewritten with the
        refs it had); refs this registry did not hand out are ignored."""
        counts, names = self._counts, self._names
        for tag_id, _ in refs:
            if tag_id < len(names) and names[tag_id] is not None:
                counts[tag_id] += 1

    def _register(self, tag: str) -> int:
        if self._free:
            tag_id = self._free.pop()
            self._names[tag_id] = tag
        else:
            tag_id = len(self._names)
            self._names.append(tag)
            self._generations.append(0)
            self._counts.append(0)
        self._ids[tag] = tag_id
        return tag_id

    def release(self, refs: Iterable[Ref], times: int = 1) -> int:
        """Give back the counts of ``refs`` (an entry removed or replaced, or
        a write that failed); forget the tags no entry holds any more and
        return the bytes that frees. Refs this registry did not hand out
        (written by a caller of the store's own ``tag_refs=``) are ignored."""
        freed = 0
        counts, names = self._counts, self._names
        for tag_id, _ in refs:
            if tag_id >= len(names) or names[tag_id] is None or counts[tag_id] < times:
                continue
            counts[tag_id] -= times
            if not counts[tag_id]:
                tag = names[tag_id]
                del self._ids[tag]  # type: ignore[arg-type]
                names[tag_id] = None
                self._free.append(tag_id)
                freed += TAG_OVERHEAD + len(tag)  # type: ignore[arg-type]
        self.memory -= freed
        return freed

    # -- reads ---------------------------------------------------------------------

    def current(self, refs: Iterable[Ref]) -> bool:
        """Whether no ref is outdated: each tag still at the generation the
        entry was written at (refs this registry did not hand out are current)."""
        generations, names = self._generations, self._names
        for tag_id, generation in refs:
            if tag_id < len(names) and generations[tag_id] != generation and names[tag_id] is not None:
                return False
        return True

    def names_of(self, refs: Iterable[Ref]) -> tuple[str, ...]:
        """The names of the current refs among ``refs``."""
        names, generations = self._names, self._generations
        return tuple(
            name
            for tag_id, generation in refs
            if tag_id < len(names) and (name := names[tag_id]) is not None and generations[tag_id] == generation
        )

    def entries_of(self, tag: str) -> int:
        """Entries holding a ref to ``tag`` (outdated ones not reclaimed yet included)."""
        tag_id = self._ids.get(tag)
        return 0 if tag_id is None else self._counts[tag_id]

    def __iter__(self) -> Iterator[str]:
        return iter(self._ids)

    # -- invalidation --------------------------------------------------------------

    def invalidate(self, tags: Iterable[str]) -> list[str]:
        """Make every entry carrying one of ``tags`` a miss: one generation
        bump per tag, O(1) each. Returns those that were in use (a tag no
        entry holds has nothing to invalidate)."""
        in_use = []
        for tag in tags:
            self.invalidations += 1
            tag_id = self._ids.get(tag)
            if tag_id is not None:
                self._generations[tag_id] = (self._generations[tag_id] + 1) & _GENERATION_MASK
                in_use.append(tag)
        if in_use:
            self.epoch += 1
        return in_use

    def counters(self) -> dict[str, int]:
        return {
            "tags": len(self._ids),
            "tag_memory_bytes": self.memory,
            "tag_invalidations": self.invalidations,
            "tag_invalidated_entries": self.invalidated_entries,
        }


def measure_tag_overhead(tags: int = 100_000) -> float:
    """Bytes per registered tag beyond its name's length, by tracemalloc
    (names like ``tag:000123``, as a cache with many small groups has)."""
    import gc
    import tracemalloc

    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        registry = TagRegistry(TagLimits(max_tags=tags))
        lengths = 0
        for number in range(tags):
            name = f"tag:{number:06d}"
            registry.acquire((name,))
            lengths += len(name)
        gc.collect()
        traced = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    del registry
    return (traced - lengths) / tags
