"""The limits of the engine, stated once: sizes, TTLs, integers and the key rule.

Every layer that checks a key, a TTL, a stale window or an integer against
the engine's limits imports them from here (through the package face,
``cachegrid.engine``), so that the daemon, its OpenAPI document and the store
cannot drift apart.

A key is a non-empty ``str`` that encodes to UTF-8 (no lone surrogates), of
at most ``max_key_length`` bytes of UTF-8 (250 by default, as memcached):
``check_key``. A TTL is a number of seconds above 0 and at most ``MAX_TTL``
(about 317 years, so that every expiry time stays finite and exact); a stale
window is one of at least 0 and at most ``MAX_TTL``. ``incr`` works in the
signed 64-bit range, ``INT64_MIN`` to ``INT64_MAX``.
"""

from __future__ import annotations

from dataclasses import dataclass
from math import isfinite

from .errors import InvalidKey, InvalidTTL, KeyTooLong

KiB = 1024
MiB = 1024 * KiB

DEFAULT_MAX_SIZE = 10_000
DEFAULT_MAX_MEMORY = 512 * MiB
DEFAULT_MAX_KEY_LENGTH = 250  # bytes of UTF-8, as memcached
DEFAULT_MAX_VALUE_SIZE = 1 * MiB  # as memcached
MAX_TTL = 10**10  # seconds (about 317 years): keeps expiry times finite and exact

INT64_MIN = -(2**63)
INT64_MAX = 2**63 - 1


@dataclass(frozen=True)
class Limits:
    """The limits of one store, handed around as one value."""

    max_size: int = DEFAULT_MAX_SIZE  # entries
    max_memory: int = DEFAULT_MAX_MEMORY  # bytes, as accounted (see room.py)
    max_key_length: int = DEFAULT_MAX_KEY_LENGTH  # bytes of UTF-8
    max_value_size: int = DEFAULT_MAX_VALUE_SIZE  # bytes

    def __post_init__(self) -> None:
        for setting in ("max_size", "max_memory", "max_key_length", "max_value_size"):
            value = getattr(self, setting)
            if value.__class__ is not int or value < 1:
                raise ValueError(f"{setting} must be a whole number of at least 1, not {value!r}")


DEFAULT_LIMITS = Limits()  # (frozen: one value shared by every store built without limits)


def key_length(key: str) -> int:
    """The key's length in UTF-8 bytes, checked to be a usable key (of any length)."""
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


def check_key(key: str, max_key_length: int) -> int:
    """The key rule: the key's length in UTF-8 bytes if it is a usable key of
    at most ``max_key_length`` bytes; else ``InvalidKey`` or ``KeyTooLong``."""
    if key.__class__ is str and key.isascii() and 0 < len(key) <= max_key_length:
        return len(key)  # the common case, without encoding the key
    length = key_length(key)
    if length > max_key_length:
        raise KeyTooLong(length, max_key_length)
    return length


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


class LimitsView:
    """Read-only views of an object's ``limits`` (``Cache``'s), field by field."""

    limits: Limits

    @property
    def max_size(self) -> int:
        return self.limits.max_size

    @property
    def max_memory(self) -> int:
        return self.limits.max_memory

    @property
    def max_key_length(self) -> int:
        return self.limits.max_key_length

    @property
    def max_value_size(self) -> int:
        return self.limits.max_value_size
