"""Slots: the small integers that name the store's entries, and the policy hooks keyed by them.

``SlotTable`` is the bottom of every store (store.py builds on it): the slot
tables, the versions beside them, and the hooks a policy overrides.

Slots
-----
Every live entry holds a small integer, its slot, from the moment it is
inserted until it is removed (a replacement keeps it); freed slots are
reused, most recently freed first. ``_key_at`` maps slots back to keys, in
shards of 64 slots: each shard a tuple of 64 keys (None: a free slot), 8
bytes a slot. A tuple that holds only strings and None is untracked by the
garbage collector at its first collection, so the shards, like the store's
mapping, are never walked; the price is that taking or freeing a slot builds
its shard's tuple anew (64 pointers copied, in C). (Shards of dicts keyed by
slot cost 36 bytes a slot.) Slots are what the policies link into their
orders (arrays indexed by slot) and what key listing walks (scan.py): a key
that stays keeps its slot, so a walk over slot numbers meets it once.

Versions
--------
Every write draws a version from one counter of the store (``_version``);
the entry's version is kept beside its blob, in ``_versions`` by slot, as
its low 32 bits (``_version_at`` says why that is enough).

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
``policy_options``). Three more hooks serve snapshots (restore.py):
``_snapshot_order`` (its default, in ``Room``: insertion order),
``_snapshot_hint`` and ``_restore_hint``.
"""

from __future__ import annotations

from array import array

SHARD_BITS = 6  # slots per shard of _key_at: 64
SHARD_MASK = (1 << SHARD_BITS) - 1
_EMPTY_SHARD: tuple[str | None, ...] = (None,) * (1 << SHARD_BITS)
_EMPTY_VERSIONS = array("I", bytes(4 << SHARD_BITS))
# The versions array keeps a version's low 32 bits (see _version_at).
VERSION_MASK = 0xFFFFFFFF


class SlotTable:
    """Slots, keys by slot, versions by slot, and the policy hooks."""

    # Every attribute is a slot (see Store): one specialized read each.
    __slots__ = ("_free_slots", "_key_at", "_slot_end", "_version", "_versions")
    _version: int  # the version counter (set by Store.__init__; a clear keeps it)
    name = "base"
    # Whether a full store makes room by evicting (False: refuse with CacheFull).
    evicts = True
    # Bytes charged per entry beyond its key and value, and per entry with a
    # TTL on top of that; measured per policy (see room.py).
    entry_overhead = 0
    ttl_overhead = 0
    # Slots never handed out (0, 1, ...): the heads of the policy's lists.
    list_heads = 1

    def _reset_slots(self) -> None:
        """No slot in use (the version counter goes on)."""
        self._key_at: list[tuple[str | None, ...]] = []
        # Each slot's entry's version, its low 32 bits (see _version_at),
        # grown a shard at a time with _key_at.
        self._versions = array("I")
        self._free_slots = array("I")
        # Slots below list_heads are never handed out: policies use them as
        # the heads of their lists.
        self._slot_end = self.list_heads  # one past the highest slot ever handed out

    def key_at(self, slot: int) -> str | None:
        """The key that holds ``slot``, or None when the slot is free."""
        shard = slot >> SHARD_BITS
        return self._key_at[shard][slot & SHARD_MASK] if shard < len(self._key_at) else None

    @property
    def slot_end(self) -> int:
        """One past the highest slot in use or ever used since the last clear."""
        return self._slot_end

    def _version_at(self, slot: int) -> int:
        """The version of the entry holding ``slot``. Versions come from one
        counter, drawn on every write; the array beside the blobs keeps their
        low 32 bits (4 bytes a slot, where 8 in the blob would take an
        entry's block to the next size class), and the version is the
        latest one drawn with those bits. That is exact for an entry
        written in the last 2**32 writes; one written longer ago reads as a
        later version (its ETag changes once), never as an earlier one."""
        version = self._version
        return version - ((version - self._versions[slot]) & VERSION_MASK)

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
        shards, index, at = self._key_at, slot >> SHARD_BITS, slot & SHARD_MASK
        shard = shards[index]
        shards[index] = shard[:at] + (key,) + shard[at + 1 :]  # noqa: RUF005 (concatenation: no list in between)

    def _free_slot(self, slot: int) -> None:
        self._set_key_at(slot, None)
        self._free_slots.append(slot)

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

    # -- snapshot hooks (restore.py) ----------------------------------------------

    def _snapshot_hint(self, slot: int) -> int:
        """What the policy keeps about ``slot`` beyond its place in the order
        (lfu: its use count); 0 for a policy that keeps nothing."""
        return 0

    def _restore_hint(self, slot: int, hint: int) -> None:
        """Give the just-restored entry at ``slot`` its ``_snapshot_hint``."""
