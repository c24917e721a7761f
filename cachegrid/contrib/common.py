"""What the framework backends share: the client they build from their
configuration, how they store values, and what they do with keys longer
than the server takes.

Values. A framework hands its backend any Python object. An integer (not a
bool) within the server's signed 64-bit counter range is stored as a JSON
number, so that ``incr``/``decr`` stay one atomic operation on the server;
everything else is serialized (pickled, unless the framework's serializer
says otherwise) and stored as a binary value (``application/octet-stream``).
On the way back a binary value is deserialized, and a JSON value is
returned as it is: a counter, or a value another client wrote as JSON.

Keys. The server refuses keys longer than ``max_key_length`` bytes of UTF-8
(250 by default, as memcached does). The frameworks add prefixes and
versions, so a key of the application's own may not fit once they have: such
a key is stored as its first bytes, ``#`` and the SHA-256 of the whole key,
as long as the limit allows. (Django's memcached backends refuse these keys;
the hash keeps them usable and distinct.) ``max_key_length`` must match the
server's setting of that name.

Batches. The server takes at most ``max_batch_size`` (1,000) keys a batch
request; a backend sends a larger batch as one request per ``batch_size``
keys.
"""

from __future__ import annotations

import hashlib
import logging
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any, TypeVar

from cachegrid.client import NearCache, RequestError, SyncCacheGridClient, Unauthorized

INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1  # the server's counter range
MAX_TTL = 10**10  # seconds: the longest TTL the server takes (about 317 years)
DEFAULT_MAX_KEY_LENGTH = 250  # the server's default, in bytes of UTF-8
DEFAULT_BATCH_SIZE = 1000  # the server's default max_batch_size
HASH_MARK = "#"
_HASHED_LENGTH = len(HASH_MARK) + 64  # "#" and a SHA-256 in hex

# SyncCacheGridClient's keyword arguments; ``token`` is one more name of ``auth_token``.
CLIENT_OPTIONS = frozenset(
    {
        "timeout",
        "max_retries",
        "auth_token",
        "api_key",
        "token",
        "cooldown",
        "replicas",
        "sharding",
        "ring",
        "fail_open",
        "near_cache",
        "ca_file",
        "verify",
    }
)

T = TypeVar("T")


def split_hosts(location: str | Iterable[str]) -> list[str]:
    """``"a:8080"``, ``"a:8080,b:8080"`` (or ``;``-separated, as Django's
    LOCATION), or a list of them: the list of hosts."""
    parts = re.split("[;,]", location) if isinstance(location, str) else [str(host) for host in location]
    hosts = [part.strip() for part in parts if part.strip()]
    if not hosts:
        raise ValueError(f"no CacheGrid host in {location!r}: give a URL or host:port, or a list of them")
    return hosts


def make_client(
    hosts: str | Iterable[str], options: Mapping[str, Any], backend_options: Iterable[str] = ()
) -> SyncCacheGridClient:
    """A synchronous client for ``hosts``; ``options`` are its keyword
    arguments (``token`` for ``auth_token``). An unknown option is a TypeError
    that names it and the known ones (the client's and ``backend_options``)."""
    kwargs = dict(options)
    unknown = sorted(set(kwargs) - CLIENT_OPTIONS)
    if unknown:
        known = sorted(CLIENT_OPTIONS | set(backend_options))
        raise TypeError(f"unknown CacheGrid option(s): {', '.join(unknown)} (known: {', '.join(known)})")
    if "token" in kwargs:
        token = kwargs.pop("token")
        if kwargs.get("auth_token", token) != token:
            raise ValueError("token and auth_token are two names of the token: give one (they differ)")
        kwargs["auth_token"] = token
    if isinstance(kwargs.get("near_cache"), Mapping):  # a near cache's settings (max_entries, ...)
        kwargs["near_cache"] = NearCache(**kwargs["near_cache"])
    return SyncCacheGridClient(split_hosts(hosts), **kwargs)


def check_key_length(max_key_length: int) -> int:
    if isinstance(max_key_length, bool) or not isinstance(max_key_length, int) or max_key_length < _HASHED_LENGTH + 1:
        raise ValueError(
            f"max_key_length must be a whole number of at least {_HASHED_LENGTH + 1} (room for a "
            f"hash of {_HASHED_LENGTH} bytes), not {max_key_length!r}"
        )
    return max_key_length


def check_batch_size(batch_size: int) -> int:
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be a whole number of at least 1, not {batch_size!r}")
    return batch_size


def server_key(key: str, max_length: int = DEFAULT_MAX_KEY_LENGTH) -> str:
    """``key`` itself when it fits in ``max_length`` bytes of UTF-8; else its
    first bytes (whole characters), ``#`` and the SHA-256 of all of it, in
    exactly as many bytes as fit."""
    encoded = key.encode("utf-8")
    if len(encoded) <= max_length:
        return key
    digest = HASH_MARK + hashlib.sha256(encoded).hexdigest()
    return encoded[: max_length - len(digest)].decode("utf-8", "ignore") + digest


def to_server(value: Any, dumps: Callable[[Any], bytes | None]) -> Any:
    """What is stored for ``value``: a counter as itself (JSON), anything else
    as the bytes of ``dumps(value)`` (a binary value)."""
    if type(value) is int and INT64_MIN <= value <= INT64_MAX:
        return value
    serialized = dumps(value)
    if not isinstance(serialized, (bytes, bytearray)):
        raise TypeError(f"the serializer gave {type(serialized).__name__} for a {type(value).__name__}, not bytes")
    return bytes(serialized)


def from_server(stored: Any, loads: Callable[[bytes], Any]) -> Any:
    """The value of what ``to_server`` stored (a JSON value as it is)."""
    if isinstance(stored, (bytes, bytearray)):
        return loads(bytes(stored))
    return stored


def server_ttl(seconds: float) -> int | float:
    """A positive TTL as the server takes it: at most MAX_TTL, whole seconds as an int."""
    seconds = min(float(seconds), float(MAX_TTL))
    return int(seconds) if seconds.is_integer() else seconds


def prefix_pattern(prefix: str) -> str:
    """The server's key pattern for the keys that start with ``prefix``: the
    prefix itself, or a glob with its glob characters bracketed."""
    if not any(char in prefix for char in "*?["):
        return prefix
    return "".join(f"[{char}]" if char in "*?[" else char for char in prefix) + "*"


def chunks(items: list[T], size: int) -> Iterator[list[T]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def get_batched(client: SyncCacheGridClient, keys: list[str], size: int) -> dict[str, Any]:
    """``client.get_multi`` of ``keys``, one request per ``size`` of them."""
    found: dict[str, Any] = {}
    for batch in chunks(list(dict.fromkeys(keys)), size):
        found.update(client.get_multi(batch))
    return found


def set_batched(
    client: SyncCacheGridClient, items: Mapping[str, Any], ttl: float | None, size: int, log: logging.Logger
) -> list[str]:
    """``client.set_multi`` of ``items``, one request per ``size`` of them;
    returns the keys of the batches the server refused (each refusal
    logged). A refused token is raised: no batch would be stored."""
    refused: list[str] = []
    for batch in chunks(list(items), size):
        try:
            client.set_multi({key: items[key] for key in batch}, ttl)
        except Unauthorized:
            raise
        except RequestError as error:
            log.warning("CacheGrid refused a batch of %d key(s): %s", len(batch), error)
            refused.extend(batch)
    return refused


def delete_batched(client: SyncCacheGridClient, keys: list[str], size: int) -> None:
    """``client.delete_multi`` of ``keys``, one request per ``size`` of them."""
    for batch in chunks(keys, size):
        client.delete_multi(batch)


def count(client: SyncCacheGridClient, key: str, delta: int) -> int:
    """``client.incr(key, delta)``, the server's refusals as Python's errors:
    TypeError when the value is not an integer, OverflowError past 64 bits."""
    try:
        return client.incr(key, delta)
    except RequestError as error:
        if error.code == "not_an_integer":
            raise TypeError(f"the value under {key!r} is not an integer: {error.message}") from None
        if error.code == "integer_overflow":
            raise OverflowError(error.message) from None
        raise
