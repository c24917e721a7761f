"""What the engine reports to whoever listens for changes: one hook.

A ``Cache`` has at most one change hook (``Cache.set_change_hook``), a
callable of ``(kind, name)``, called under the engine's lock right after
each change is applied, in the order of the changes. It must be quick and
must never call back into the cache (the lock is held). The engine knows
nothing of who listens; the daemon's event stream (daemon/events.py) is
one such listener.

The kinds, and what ``name`` is:

- ``set``: ``name`` is the key, written (a plain or conditional write, a
  batch item, incr/decr, a new TTL, a stale mark: the entry changed);
- ``delete``: the key, deleted (one for each key a batch or a delete by
  pattern removes);
- ``expire``: the key, whose TTL ran out (reclaimed by a read, the sweeper
  or the eviction rule);
- ``evict``: the key, removed by the eviction policy to make room;
- ``clear``: None (everything is gone);
- ``invalidate``: the tag, invalidated (its entries are misses from now on;
  they are reclaimed later without further reports);
- ``reset``: None: the store was replaced wholesale (a snapshot restored);
  the keys it loaded are not reported one by one.

With no hook the cost on the hot path is one ``is not None`` test per write
(room.py); reads report only the expiries they find.
"""

from __future__ import annotations

from collections.abc import Callable

from .room import DELETE, EVICT, EXPIRE, SET
from .store import CLEAR

INVALIDATE = "invalidate"
RESET = "reset"
KINDS = (SET, DELETE, EXPIRE, EVICT, CLEAR, INVALIDATE, RESET)

# (kind, key or tag or None) -> None
ChangeHook = Callable[[str, "str | None"], None]

__all__ = ["CLEAR", "DELETE", "EVICT", "EXPIRE", "INVALIDATE", "KINDS", "RESET", "SET", "ChangeHook"]
