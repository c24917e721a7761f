"""Leases: at most one holder per key, for a while, named by a secret token.

A lease is the right to compute a key's value (memcached's meta protocol
hands the same right with its W flag), and also a plain lock on any key for
callers that compute elsewhere. ``Leases`` keeps them beside the store, and
``Cache`` (cache.py) calls it under the engine's one lock, in the same hold
as the read or write it goes with: a read that misses and the grant of the
lease are one step, and so are a write that presents a token and the end of
the lease.

How it works
------------
``_held`` maps a key to ``(token, expires_at)``. A lease ends when its holder
releases it, when a write presents its token, or when its time runs out: an
expired lease counts as free the moment it is looked at, so a holder that
crashed blocks the key for at most its lease time. Nothing else ends one: a
delete or an overwrite of the key leaves its lease alone (a lock must not be
handed to someone else because the key it guards changed).

Tokens are ``secrets.token_urlsafe`` (128 bits), compared in constant time:
they cannot be guessed, and a token of an expired lease names nothing.

Bounds and memory: at most ``max_leases`` are held at once; past that an
acquire raises ``TooManyLeases``. Expired leases are reclaimed earliest
first from a heap of ``(expires_at, key)``: two per acquire, and all that
are due when the table is full, so the table never grows with dead leases.
Each lease is charged its key's UTF-8 length plus ``LEASE_OVERHEAD`` bytes
(the dict slot, the tuple, the token and the heap entry; measured with
tracemalloc, see tests/engine/test_leases.py), reported as
``lease_memory_bytes``. Leases are not charged against ``max_memory``: they
are bounded by their own count, so a burst of leases never evicts values.

Not thread-safe: ``Cache`` holds the lock.
"""

from __future__ import annotations

import heapq
import secrets
from collections.abc import Callable
from hmac import compare_digest
from math import isfinite
from typing import NamedTuple, cast

from .errors import InvalidLease, LeaseNotHeld, TooManyLeases

DEFAULT_MAX_LEASES = 10_000
DEFAULT_MAX_LEASE_TIME = 3600.0  # seconds
TOKEN_BYTES = 16
LEASE_OVERHEAD = 320  # bytes per lease beyond its key (tests/engine/test_leases.py measures it)
_RECLAIM_PER_ACQUIRE = 2


class Grant(NamedTuple):
    """What an acquire gave: a token (the lease is the caller's), or None and
    the seconds until the current holder's lease runs out."""

    token: str | None
    wait: float


def check_lease_time(seconds: object, limit: float) -> float:
    """``seconds`` if it is a usable lease time, else ``InvalidLease``."""
    # (The exact classes: a bool is not a lease time.)
    if seconds.__class__ not in (int, float) or not isfinite(value := cast(float, seconds)) or not 0 < value <= limit:
        raise InvalidLease(f"a lease lasts more than 0 and at most {limit:g} seconds, not {seconds!r}", limit)
    return float(value)


class Leases:
    """The leases of one cache (not thread-safe: see the module docstring)."""

    def __init__(
        self,
        clock: Callable[[], float],
        max_leases: int = DEFAULT_MAX_LEASES,
        max_lease_time: float = DEFAULT_MAX_LEASE_TIME,
    ) -> None:
        if max_leases.__class__ is not int or max_leases < 1:
            raise ValueError(f"max_leases must be a whole number of at least 1, not {max_leases!r}")
        if not (isinstance(max_lease_time, (int, float)) and 0 < max_lease_time < float("inf")):
            raise ValueError(f"max_lease_time must be a positive number of seconds, not {max_lease_time!r}")
        self.clock = clock
        self.max_leases = max_leases
        self.max_lease_time = float(max_lease_time)
        self._held: dict[str, tuple[str, float]] = {}
        self._expiry: list[tuple[float, str]] = []  # may hold entries of leases ended since: checked on pop
        self._memory = 0
        self.granted = self.refused = self.released = self.filled = self.expired = 0
        # Stale reads and marks (store.py keeps the entries; Cache counts here, beside the leases they hand out).
        self.stale_hits = self.marked_stale = 0

    def __len__(self) -> int:
        return len(self._held)

    @property
    def memory_usage(self) -> int:
        return self._memory

    # -- the table ---------------------------------------------------------------

    def _drop(self, key: str) -> None:
        del self._held[key]
        self._memory -= _charge(key)

    def _current(self, key: str, now: float) -> tuple[str, float] | None:
        """The live lease on ``key``; an expired one is dropped and counted."""
        lease = self._held.get(key)
        if lease is not None and lease[1] <= now:
            self._drop(key)
            self.expired += 1
            return None
        return lease

    def _reclaim(self, now: float, limit: int | None) -> None:
        """Drop expired leases, earliest first, at most ``limit`` (None: all due)."""
        expiry, held = self._expiry, self._held
        done = 0
        while expiry and expiry[0][0] <= now and (limit is None or done < limit):
            expires_at, key = heapq.heappop(expiry)
            lease = held.get(key)
            if lease is not None and lease[1] == expires_at:
                self._drop(key)
                self.expired += 1
            done += 1

    # -- operations --------------------------------------------------------------

    def acquire(self, key: str, seconds: float) -> Grant:
        """The lease on ``key`` for ``seconds`` if it is free (a new token),
        else no token and the seconds the holder has left."""
        seconds = check_lease_time(seconds, self.max_lease_time)
        now = self.clock()
        self._reclaim(now, _RECLAIM_PER_ACQUIRE)
        lease = self._current(key, now)
        if lease is not None:
            self.refused += 1
            return Grant(None, lease[1] - now)
        if len(self._held) >= self.max_leases:
            self._reclaim(now, None)
            if len(self._held) >= self.max_leases:
                raise TooManyLeases(f"{len(self._held)} leases are held, the most max_leases allows", self.max_leases)
        token = secrets.token_urlsafe(TOKEN_BYTES)
        expires_at = now + seconds
        self._held[key] = (token, expires_at)
        self._memory += _charge(key)
        heapq.heappush(self._expiry, (expires_at, key))
        if len(self._expiry) > 2 * self.max_leases:  # ended leases' entries: compact now and then
            self._expiry = [(at, k) for at, k in self._expiry if self._held.get(k, (None, None))[1] == at]
            heapq.heapify(self._expiry)
        self.granted += 1
        return Grant(token, seconds)

    def check(self, key: str, token: str) -> None:
        """``LeaseNotHeld`` unless ``token`` names the live lease on ``key``."""
        lease = self._current(key, self.clock())
        if lease is None or token.__class__ is not str or not compare_digest(lease[0].encode(), token.encode()):
            raise LeaseNotHeld(key)

    def release(self, key: str, token: str, filled: bool = False) -> None:
        """End the lease ``token`` names (``filled``: by a write); LeaseNotHeld if it names none."""
        self.check(key, token)
        self._drop(key)
        if filled:
            self.filled += 1
        else:
            self.released += 1

    def remaining(self, key: str) -> float | None:
        """Seconds the lease on ``key`` has left, None when it is free."""
        now = self.clock()
        lease = self._current(key, now)
        return None if lease is None else lease[1] - now

    def counters(self) -> dict[str, int]:
        return {
            "leases_held": len(self._held),
            "max_leases": self.max_leases,
            "lease_memory_bytes": self._memory,
            "leases_granted": self.granted,
            "leases_refused": self.refused,
            "leases_filled": self.filled,
            "leases_released": self.released,
            "leases_expired": self.expired,
            "stale_hits": self.stale_hits,
            "marked_stale": self.marked_stale,
        }


def _charge(key: str) -> int:
    return (len(key) if key.isascii() else len(key.encode())) + LEASE_OVERHEAD
