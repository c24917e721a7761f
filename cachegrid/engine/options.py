"""What a write carries besides its key, value and TTL, as typed values.

A write through the engine may carry optional fields (``WriteOptions``: the
value is binary, a stale window, cache tags, and for a batch the keys whose
values are binary) and HTTP's two preconditions (``Preconditions``). The
daemon builds these from a request and hands them to ``Cache.write`` /
``Cache.write_many`` as they are, so a misspelt option is an error the type
checker sees, not a keyword that fails at run time three layers down.
``Cache.set`` and ``Cache.set_many`` keep their keyword arguments for
callers who write by hand; they build the same values.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from typing import NamedTuple

from .store import Condition


class WriteOptions(NamedTuple):
    """The optional fields of a write (none: ``PLAIN``)."""

    binary: bool = False  # the value is raw bytes, not JSON
    stale: float | None = None  # seconds past the TTL it is kept and served marked stale (needs a TTL)
    tags: Iterable[str] | None = None  # cache tags (names); None: the entry carries none
    binary_keys: Collection[str] = ()  # a batch of both kinds: the keys whose values are binary
    # The value is held gzip-compressed and is this many bytes as the client sees it.
    original_size: int | None = None
    compressed: Mapping[str, int] | None = None  # a batch: the compressed items' original sizes


class Preconditions(NamedTuple):
    """HTTP's preconditions of a write, checked in the same lock hold (store.py)."""

    if_match: Condition = None  # ANY: only if present; versions: only at one of them
    if_none_match: Condition = None  # ANY: only if absent; versions: at none of them


PLAIN = WriteOptions()
UNCONDITIONAL = Preconditions()
