"""Key listing in pages, each call bounded, as Redis' SCAN with COUNT.

``Cache.keys(pattern, limit, cursor)`` must never hold the lock for a pass
over the store: with a million keys one pass is hundreds of milliseconds,
during which every other client waits. So one call examines at most
``scan_count`` slots and returns the live matching keys among them, and a
cursor to go on from; a page may therefore hold fewer than ``limit`` keys,
even none. Only ``cursor=None`` means the listing is done.

Why slots
---------
A Python dict cannot be iterated across calls while it changes, and copying
its keys to list them later costs O(n) at the start. The store instead gives
every live entry a slot, a small integer it keeps until it is removed, and
can say which key holds a slot (slots.py). A listing walks the slot numbers
upwards, from 1 to the highest slot handed out: a key present for the whole
listing keeps its slot and is met exactly once; a key removed meanwhile is
not returned once it is gone, and a key added meanwhile takes a free slot or
a new one, before or after the walk's position, so it may or may not be
returned. Expired keys are never returned. Starting a listing costs nothing
beyond its first page, and no listing keeps any state in the engine.

The cursor is ``"<epoch>.<slot>"``: the epoch names the store's current
numbering of slots (``clear()`` starts a new one), so a cursor from before a
clear, a made-up one or a malformed one raises ``InvalidCursor``.

A pattern without glob characters is a prefix (``user:`` matches
``user:123``); with ``*``, ``?`` or ``[...]`` it is a glob over the whole key
(``fnmatch.fnmatchcase`` rules, case-sensitive).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from fnmatch import translate
from functools import lru_cache
from typing import Any, NamedTuple

from .entry import original_size_of, value_end
from .errors import InvalidCursor
from .store import Store

# Slots examined per call. 2,048 keeps one call near half a millisecond on
# a 2-core server (benchmarks/engine_bench.py measures it; 4,096 came to
# 1.2 ms, with calls up to 2.2 ms), and a listing of a million keys at ~490
# calls.
DEFAULT_SCAN_COUNT = 2_048
# Keys one page of a listing holds unless the caller says otherwise.
DEFAULT_KEYS_LIMIT = 100
_GLOB = re.compile(r"[*?\[]")


class KeyPage(NamedTuple):
    keys: list[str]
    cursor: str | None  # None when the listing is complete
    # Per key, in the same order: (bytes held, bytes as the client sees the
    # value); the two differ for a value held compressed.
    sizes: Sequence[tuple[int, int]] = ()


@lru_cache(maxsize=64)
def key_matcher(pattern: str | None) -> Callable[[str], Any]:
    """A predicate for ``pattern``: a prefix, or a glob if it has ``*?[``."""
    if not pattern:
        return lambda key: True
    if _GLOB.search(pattern):
        return re.compile(translate(pattern)).match
    return lambda key: key.startswith(pattern)


def start_of(cursor: str | None, store: Store) -> int:
    """The slot a listing goes on from; InvalidCursor if ``cursor`` is not one
    of this store's current numbering."""
    if cursor is None:
        return 1
    epoch, _, slot_text = cursor.partition(".")
    if epoch != store.slot_epoch:
        raise InvalidCursor(f"unknown or expired cursor {cursor!r}: start the listing again")
    if not (slot_text.isascii() and slot_text.isdigit()) or not 1 <= int(slot_text) <= store.slot_end:
        raise InvalidCursor(f"malformed cursor {cursor!r}")
    return int(slot_text)


def scan_page(
    store: Store, start: int, limit: int, scan_count: int, matches: Callable[[str], Any], now: float
) -> KeyPage:
    """Up to ``limit`` live keys matching ``matches`` in the slots from
    ``start``, examining at most ``scan_count`` slots. Under the lock."""
    stop = min(store.slot_end, start + scan_count)
    key_at, is_live_at, data = store.key_at, store.is_live_at, store._data
    keys: list[str] = []
    sizes: list[tuple[int, int]] = []
    slot = start
    while slot < stop and len(keys) < limit:
        key = key_at(slot)
        slot += 1
        if key is not None and matches(key) and is_live_at(key, now):
            keys.append(key)
            blob = data[key]
            held = value_end(blob)
            original = original_size_of(blob)
            sizes.append((held, held if original is None else original))
    return KeyPage(keys, None if slot >= store.slot_end else f"{store.slot_epoch}.{slot}", sizes)
