"""dogpile.cache on CacheGrid: the backend registered as ``"cachegrid"``
(entry point group ``dogpile.cache``)::

    from dogpile.cache import make_region

    region = make_region().configure(
        "cachegrid",
        expiration_time=300,
        arguments={"hosts": ["127.0.0.1:8080"], "token": None, "timeout": 5.0, "replicas": 1},
    )

Arguments: ``hosts`` (``host:port`` or URLs, a list or one string; several
are a cluster), the client's options (``token``/``auth_token``, ``timeout``,
``max_retries``, ``cooldown``, ``replicas``, ``sharding``, ``ring``,
``fail_open``), and this backend's own: ``ttl`` (seconds the server keeps an
entry; None, the default, keeps it until it is evicted: dogpile's
``expiration_time`` decides when a value is stale, and should be shorter),
``max_key_length`` and ``batch_size`` (common.py). Other arguments are
ignored, as dogpile's own backends ignore what is not theirs (a region may
hand the same dictionary to several).

dogpile serializes values itself (pickle, or the region's serializer), so
this is a ``BytesBackend``: every entry is a binary value. ``get_multi``,
``set_multi`` and ``delete_multi`` are one request (per node of a cluster,
per ``batch_size`` keys). An entry that is not binary (another client wrote
JSON under the key) reads as no value, so the region makes a new one.

``get_mutex`` is a distributed mutex (one creator of a value in the whole
cluster, not one per process) built on the server's locks: the client's
``acquire_lock``/``release_lock``/``lock_held`` (docs/stampedes.md), on the
value's own key (a lock is not the value: it does not hide or end it).
``lock_timeout`` (60 s) is how long a lock lasts at most, so a creator that
dies blocks the key no longer than that (at most the server's
``max_lease_time``); a waiting caller asks again every ``lock_sleep``
seconds (0.05). ``distributed_lock=False`` returns None instead: dogpile's
own lock, one creator per process.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from dogpile.cache.api import NO_VALUE, BytesBackend, CacheMutex

from cachegrid.client import SyncCacheGridClient

from .common import (
    CLIENT_OPTIONS,
    DEFAULT_BATCH_SIZE,
    DEFAULT_MAX_KEY_LENGTH,
    check_batch_size,
    check_key_length,
    chunks,
    delete_batched,
    get_batched,
    make_client,
    server_key,
    server_ttl,
)

_MISSING = object()
DEFAULT_LOCK_TIMEOUT = 60.0
DEFAULT_LOCK_SLEEP = 0.05


class CacheGridMutex(CacheMutex):
    """The server's lock on one key, as dogpile's mutex."""

    def __init__(self, client: SyncCacheGridClient, key: str, timeout: float, sleep: float) -> None:
        self.client = client
        self.key = key
        self.timeout = timeout
        self.sleep = sleep
        self._token: str | None = None

    def acquire(self, wait: bool = True) -> bool:
        while True:
            token = self.client.acquire_lock(self.key, self.timeout)
            if token is not None:
                self._token = token
                return True
            if not wait:
                return False
            time.sleep(self.sleep)

    def release(self) -> None:
        token, self._token = self._token, None
        if token is None:
            raise RuntimeError(f"the lock on {self.key!r} is not held by this mutex")
        self.client.release_lock(self.key, token)  # False: it had run out, which is as good

    def locked(self) -> bool:
        return bool(self.client.lock_held(self.key))


class CacheGridBackend(BytesBackend):
    """A dogpile.cache backend on a CacheGrid server or cluster."""

    def __init__(self, arguments: Mapping[str, Any]) -> None:
        arguments = dict(arguments)  # never changed: the caller's dictionary stays as it was
        ttl = arguments.get("ttl")
        if ttl is not None and not ttl > 0:
            raise ValueError(f"ttl must be a number of seconds greater than 0, or None, not {ttl!r}")
        self.ttl = None if ttl is None else server_ttl(ttl)
        self._max_key_length = check_key_length(arguments.get("max_key_length", DEFAULT_MAX_KEY_LENGTH))
        self._batch_size = check_batch_size(arguments.get("batch_size", DEFAULT_BATCH_SIZE))
        self.distributed_lock = bool(arguments.get("distributed_lock", True))
        self.lock_timeout = float(arguments.get("lock_timeout", DEFAULT_LOCK_TIMEOUT))
        self.lock_sleep = float(arguments.get("lock_sleep", DEFAULT_LOCK_SLEEP))
        if not (self.lock_timeout > 0 and self.lock_sleep > 0):
            raise ValueError(
                f"lock_timeout and lock_sleep must be seconds greater than 0, "
                f"not {self.lock_timeout!r} and {self.lock_sleep!r}"
            )
        options = {name: value for name, value in arguments.items() if name in CLIENT_OPTIONS}
        self.client = make_client(arguments.get("hosts", "localhost:8080"), options)

    def _key(self, key: str) -> str:
        return server_key(key, self._max_key_length)

    @staticmethod
    def _serialized(stored: Any) -> Any:
        return bytes(stored) if isinstance(stored, (bytes, bytearray)) else NO_VALUE

    def has_lock_timeout(self) -> bool:
        return self.distributed_lock

    def get_mutex(self, key: str) -> CacheMutex | None:
        if not self.distributed_lock:
            return None
        return CacheGridMutex(self.client, self._key(key), self.lock_timeout, self.lock_sleep)

    def get_serialized(self, key: str) -> Any:
        return self._serialized(self.client.get(self._key(key), _MISSING))

    def get_serialized_multi(self, keys: Iterable[str]) -> Sequence[Any]:
        made = [self._key(key) for key in keys]
        found = get_batched(self.client, made, self._batch_size)
        return [self._serialized(found.get(key, _MISSING)) for key in made]

    def set_serialized(self, key: str, value: bytes) -> None:
        self.client.set(self._key(key), value, self.ttl)

    def set_serialized_multi(self, mapping: Mapping[str, bytes]) -> None:
        items = {self._key(key): value for key, value in mapping.items()}
        for batch in chunks(list(items), self._batch_size):
            self.client.set_multi({key: items[key] for key in batch}, self.ttl)

    def delete(self, key: str) -> None:
        self.client.delete(self._key(key))

    def delete_multi(self, keys: Iterable[str]) -> None:
        delete_batched(self.client, [self._key(key) for key in keys], self._batch_size)
