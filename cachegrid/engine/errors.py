"""Errors raised by the cache engine.

They describe what went wrong in cache terms and know nothing of HTTP: the
daemon maps each of them to a status code in one place. Every error that comes
from a limit carries the limit, so that a caller can say what it was.
"""

from __future__ import annotations


class CacheError(Exception):
    """Base class of every error the engine raises on purpose."""


class InvalidKey(CacheError, ValueError):
    """The key is not a non-empty string that encodes to UTF-8."""


class KeyTooLong(InvalidKey):
    """The key's UTF-8 encoding is longer than ``max_key_length`` bytes."""

    def __init__(self, length: int, limit: int) -> None:
        super().__init__(f"key is {length} bytes long; the limit is {limit} bytes")
        self.length = length
        self.limit = limit


class InvalidTTL(CacheError, ValueError):
    """A TTL that is not a finite number of seconds greater than zero."""


class ValueTooLarge(CacheError):
    """The value is larger than ``max_value_size``, or the entry alone would
    not fit in ``max_memory`` (it is refused rather than stored by evicting
    everything else)."""

    def __init__(self, size: int, limit: int, what: str = "max_value_size") -> None:
        super().__init__(f"value is {size} bytes; {what} is {limit} bytes")
        self.size = size
        self.limit = limit
        self.what = what


class CacheFull(CacheError):
    """The ``noeviction`` policy refused a write because the cache is full."""


class NotAnInteger(CacheError):
    """incr/decr on a value that is not a decimal integer."""


class IntegerOverflow(CacheError):
    """incr/decr whose result would leave the signed 64-bit range (as Redis)."""


class PreconditionFailed(CacheError):
    """A conditional write whose condition did not hold; nothing was written."""


class KeyNotFound(CacheError, KeyError):
    """An operation that needs an existing key found none (or an expired one)."""

    def __str__(self) -> str:  # KeyError's str() quotes its argument
        return f"no such key: {self.args[0]!r}" if self.args else "no such key"


class InvalidCursor(CacheError, ValueError):
    """A key-listing cursor that is malformed, finished or has expired."""


class InvalidLease(CacheError, ValueError):
    """A lease time that is not a finite number of seconds in (0, max_lease_time]."""

    def __init__(self, message: str, limit: float) -> None:
        super().__init__(message)
        self.limit = limit


class LeaseNotHeld(CacheError):
    """A token that names no live lease on the key: forged, or its lease
    ended (released, filled or run out). Nothing was changed."""

    def __init__(self, key: str) -> None:
        super().__init__(f"the token names no lease held on {key!r} (forged, or the lease ended or ran out)")
        self.key = key


class TooManyLeases(CacheError):
    """``max_leases`` leases are held already; no new one can be granted."""

    def __init__(self, message: str, limit: int) -> None:
        super().__init__(message)
        self.limit = limit
