"""The hot paths' inline copies of the entry codec agree with the codec.

entry.py is the one place the blob layout is written down; a few hot paths
of the store (each line marked ``# PERF:``) decode or encode a trailer by
hand instead of calling it. These tests hold every such copy to the codec,
for every combination of flags: what ``_write`` stores is ``encode``'s blob,
what ``_hit``, ``get`` and ``get_entry`` hand out is what
``value_of``/``entry_of`` read, and what ``_write`` (replacing) and
``_remove`` charge and free is the charge rule applied to ``fields_end``.
"""

from __future__ import annotations

import ast
import itertools
from pathlib import Path

import pytest

from cachegrid.engine import POLICIES, CacheFull
from cachegrid.engine.entry import (
    FLAG_BINARY,
    FOREVER,
    encode,
    encode_fields,
    entry_of,
    expires_at_of,
    fields_end,
    has_ttl,
    original_size_of,
    slot_in,
    value_of,
)
from cachegrid.engine.limits import Limits
from cachegrid.engine.registry import store_class
from cachegrid.engine.room import stored_key_length
from cachegrid.engine.store import Store
from cachegrid.testing import FakeClock

ENGINE = Path(__file__).resolve().parents[2] / "cachegrid" / "engine"
# The functions allowed an inline copy of the codec, each tested below.
INLINE_COPIES = {"_hit", "get", "get_entry", "set", "_write", "_remove"}
# Modules whose PERF: copies are of something else, tested elsewhere: tinylfu's
# are of its own steps and of the sketch (tests/engine/test_tinylfu_model.py),
# adaptive's of its own steps (tests/engine/test_adaptive_model.py).
OTHER_COPIES = {"tinylfu.py", "adaptive.py"}

# (binary, ttl, stale, tags, original size): every combination of the flags.
COMBINATIONS = list(itertools.product([False, True], [None, 50.0], [None, 10.0], [(), ("a", "b")], [None, 70_000]))
COMBINATIONS = [combo for combo in COMBINATIONS if combo[2] is None or combo[1] is not None]  # stale needs a ttl


def _store(policy: str, clock: FakeClock) -> Store:
    return store_class(policy)(Limits(max_size=100), clock)


def _write(store: Store, key: str, value: bytes, combo: tuple) -> None:
    binary, ttl, stale, tags, original_size = combo
    refs = store.acquire_tags(tags) if tags else ()
    store.set(key, value, ttl, binary=binary, stale=stale, tag_refs=refs, original_size=original_size)


def _expected_memory(store: Store) -> int:
    charges = sum(
        store._charge(stored_key_length(key) + fields_end(blob), has_ttl(blob)) for key, blob in store._data.items()
    )
    return store.tags.memory + charges


def test_every_inline_copy_is_one_this_file_tests() -> None:
    """A ``# PERF:`` copy of the codec elsewhere needs a test here first."""
    found = set()
    for path in ENGINE.glob("*.py"):
        if path.name in OTHER_COPIES:
            continue
        source = path.read_text()
        marked = {number for number, line in enumerate(source.splitlines(), 1) if "# PERF:" in line}
        for node in ast.walk(ast.parse(source)):
            if isinstance(node, ast.FunctionDef) and any(
                node.lineno <= line <= (node.end_lineno or 0) for line in marked
            ):
                found.add(node.name)
    assert found == INLINE_COPIES


@pytest.mark.parametrize("policy", sorted(POLICIES))
@pytest.mark.parametrize("combo", COMBINATIONS)
def test_write_stores_the_codecs_blob_and_reads_give_the_codecs_view(
    policy: str, combo: tuple, clock: FakeClock
) -> None:
    store = _store(policy, clock)
    binary, ttl, stale, tags, original_size = combo
    value = b'{"k":1}'
    _write(store, "key", value, combo)
    blob = store._data["key"]
    slot = slot_in(blob)
    expires_at = FOREVER if ttl is None else clock() + ttl + (stale or 0)
    refs = store.tags.acquire(tags)[0] if tags else ()  # the same refs again (their generation is current)
    flags, fields = encode_fields(None if not stale else clock() + ttl, refs, original_size)
    assert blob == encode(value, (flags | (FLAG_BINARY if binary else 0), fields), expires_at, slot)
    assert expires_at_of(blob) == expires_at
    assert store._hit("key") is blob
    assert store.get("key") == value_of(blob) == value
    assert store.get_entry("key") == entry_of(blob, store._version_at(slot))
    assert store.get_entry("key").original_size == original_size == original_size_of(blob)
    assert store.get_entry("key").tag_refs == tuple(refs)
    assert store.memory_usage == _expected_memory(store)


@pytest.mark.parametrize("policy", sorted(POLICIES))
def test_replace_and_remove_charge_as_the_codec_says(policy: str, clock: FakeClock) -> None:
    for old, new in itertools.product(COMBINATIONS, COMBINATIONS):
        _replace_and_remove(_store(policy, clock), old, new)


def _replace_and_remove(store: Store, old: tuple, new: tuple) -> None:
    _write(store, "other", b"[1,2,3]", old)
    _write(store, "key", b"[1]", old)
    slot = store.slot_of("key")
    assert store.memory_usage == _expected_memory(store)
    _write(store, "key", b'"a longer value"', new)
    blob = store._data["key"]
    assert slot_in(blob) == slot  # a replacement keeps its slot
    assert store.memory_usage == _expected_memory(store)
    assert store._with_ttl == sum(has_ttl(blob) for blob in store._data.values())
    assert store._expires_at_slot(slot) == expires_at_of(blob)
    assert store.delete("key") and store.delete("other")
    assert store.memory_usage == store.tags.memory == 0
    assert store._with_ttl == 0 and not store._data


@pytest.mark.parametrize("ttl", [None, 50.0])
def test_a_batch_that_does_not_evict_counts_its_room_by_the_charge_rule(ttl: float | None, clock: FakeClock) -> None:
    store = store_class("noeviction")(Limits(max_size=3), clock)
    store.set_many({"a": b"1", "b": b"2"}, ttl=50.0)
    assert store.set_many({"a": b"[1,2]", "c": b"3"}, ttl=ttl) == 2  # one replaced, one new: fits exactly
    assert store.memory_usage == _expected_memory(store)
    with pytest.raises(CacheFull):
        store.set_many({"b": b"4", "d": b"5"})  # a fourth entry
    assert store.memory_usage == _expected_memory(store) and len(store) == 3
