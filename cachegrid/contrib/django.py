"""Django's cache framework on CacheGrid: ``CacheGridCache``::

    CACHES = {
        "default": {
            "BACKEND": "cachegrid.contrib.django.CacheGridCache",
            "LOCATION": "http://127.0.0.1:8080",  # or a list of nodes: a cluster
            "OPTIONS": {"token": "...", "timeout": 2.0},
        }
    }

``LOCATION`` is a URL or ``host:port``, several of them separated by ``,``
or ``;``, or a list: several nodes are a cluster (the client's consistent
hashing). ``OPTIONS`` are the client's keyword arguments (``token`` or
``auth_token``, ``timeout``, ``max_retries``, ``cooldown``, ``replicas``,
``sharding``, ``ring``, ``fail_open``, ``near_cache``: True or a
``NearCache``'s settings, ``ca_file`` and ``verify`` for https nodes:
docs/tls.md) and this backend's ``max_key_length``
(the server's, 250 by default) and ``batch_size`` (1,000); an unknown one is
an ``ImproperlyConfigured`` that names it.

The semantics are Django's, and Django's own ``BaseCacheTests`` run against
this backend (tests/contrib):

- ``TIMEOUT``/``timeout``: None never expires; 0 or less expires at once
  (``set`` deletes the key, ``add`` stores nothing and says whether it would
  have, ``touch`` deletes); else seconds, fractions too (capped at the
  server's longest TTL, about 317 years).
- Keys are made by Django (``KEY_PREFIX``, ``VERSION``, ``KEY_FUNCTION``) and
  checked as Django's own backends do (a ``CacheKeyWarning`` for what
  memcached would refuse); one longer than the server takes is hashed
  (common.py).
- Values: integers are JSON numbers, so ``incr``/``decr`` are one atomic
  operation on the server; anything else is pickled into a binary value.
  ``incr``/``decr`` raise ``ValueError`` when the key does not exist (looked
  up first, as Django's Redis backend does: a key deleted in between is
  created by the increment) and ``TypeError`` when its value is no integer.
- ``get_many``/``set_many``/``delete_many`` are one request (per node of a
  cluster, per ``batch_size`` keys). A batch write stores all of its items
  or none: ``set_many`` returns the keys of the batches the server refused
  (too large, out of memory). A ``set`` the server refuses deletes the key
  (no stale value stays behind) and raises.
- ``clear()`` empties the whole server (every node of a cluster), as
  Django's Redis and memcached backends flush theirs: ``KEY_PREFIX`` does not
  limit it.
- ``close()`` keeps the connection pool: Django calls it after every
  request, and the pool is what saves a new connection per request.
- An outage raises the client's ``Unavailable`` (``fail_open=True``: a miss).
"""

from __future__ import annotations

import logging
import pickle
import warnings
from collections.abc import Iterable, Mapping
from typing import Any

from django.core.cache.backends.base import DEFAULT_TIMEOUT, BaseCache, CacheKeyWarning, memcache_key_warnings
from django.core.exceptions import ImproperlyConfigured

from cachegrid.client import RequestError, SyncCacheGridClient, Unauthorized

from .common import (
    DEFAULT_BATCH_SIZE,
    DEFAULT_MAX_KEY_LENGTH,
    check_batch_size,
    check_key_length,
    count,
    delete_batched,
    from_server,
    get_batched,
    make_client,
    server_key,
    server_ttl,
    set_batched,
    to_server,
)

log = logging.getLogger("cachegrid.contrib.django")
_MISSING = object()

# PERF: keys Django's check found nothing to warn about, so that a hot key is
# checked once (see validate_key). Emptied when full, as the client's caches.
MAX_CHECKED_KEYS = 4096


def _dumps(value: Any) -> bytes:
    return pickle.dumps(value, pickle.HIGHEST_PROTOCOL)


class CacheGridCache(BaseCache):
    """A Django cache on a CacheGrid server or cluster."""

    def __init__(self, server: str | Iterable[str], params: Mapping[str, Any]) -> None:
        super().__init__(params)
        self._checked: dict[str, None] = {}  # keys validate_key passed
        options = {str(name).lower(): value for name, value in (params.get("OPTIONS") or {}).items()}
        try:
            self._max_key_length = check_key_length(options.pop("max_key_length", DEFAULT_MAX_KEY_LENGTH))
            self._batch_size = check_batch_size(options.pop("batch_size", DEFAULT_BATCH_SIZE))
            self._client = make_client(server, options, ("max_key_length", "batch_size"))
        except (TypeError, ValueError) as error:
            raise ImproperlyConfigured(f"CacheGridCache: {error}") from None

    @property
    def client(self) -> SyncCacheGridClient:
        """The ``SyncCacheGridClient`` this cache uses, for what Django's API lacks."""
        return self._client

    def validate_key(self, key: str) -> None:
        """Django's check (``memcache_key_warnings``: a ``CacheKeyWarning``
        for a key memcached would refuse), the same warnings every time a bad
        key is used; a key that passed is remembered and not checked again.
        PERF: the check (a generator, a regular expression, the length) costs
        ~1.6 µs in a loop but ~11 µs between a read's socket waits, its code
        cold in the CPU's caches then: a sixth of a whole read."""
        checked = self._checked
        if key in checked:
            return
        found = list(memcache_key_warnings(key))
        for warning in found:
            warnings.warn(warning, CacheKeyWarning)  # noqa: B028 (where Django warns)
        if not found:
            if len(checked) >= MAX_CHECKED_KEYS:
                checked.clear()
            checked[key] = None

    def _key(self, key: Any, version: int | None) -> str:
        return server_key(self.make_and_validate_key(key, version=version), self._max_key_length)

    def get_backend_timeout(self, timeout: Any = DEFAULT_TIMEOUT) -> int | float | None:
        """None (no expiry), 0 (expire at once) or the TTL in seconds."""
        if timeout is DEFAULT_TIMEOUT:
            timeout = self.default_timeout
        if timeout is None:
            return None
        return 0 if timeout <= 0 else server_ttl(timeout)

    def add(self, key: Any, value: Any, timeout: Any = DEFAULT_TIMEOUT, version: int | None = None) -> bool:
        key = self._key(key, version)
        stored = to_server(value, _dumps)
        ttl = self.get_backend_timeout(timeout)
        if ttl == 0:  # it would have been added, and expired at once
            return not self._client.exists(key)
        return bool(self._client.set(key, stored, ttl, only_if_absent=True))

    def get(self, key: Any, default: Any = None, version: int | None = None) -> Any:
        stored = self._client.get(self._key(key, version), _MISSING)
        return default if stored is _MISSING else from_server(stored, pickle.loads)

    def set(self, key: Any, value: Any, timeout: Any = DEFAULT_TIMEOUT, version: int | None = None) -> None:
        key = self._key(key, version)
        stored = to_server(value, _dumps)
        ttl = self.get_backend_timeout(timeout)
        if ttl == 0:
            self._client.delete(key)
            return
        try:
            self._client.set(key, stored, ttl)
        except Unauthorized:
            raise
        except RequestError:
            self._client.delete(key)  # as Django's memcached backends: no stale value stays
            raise

    def touch(self, key: Any, timeout: Any = DEFAULT_TIMEOUT, version: int | None = None) -> bool:
        key = self._key(key, version)
        ttl = self.get_backend_timeout(timeout)
        if ttl is None:
            return bool(self._client.persist(key))
        if ttl == 0:
            return bool(self._client.delete(key))
        return bool(self._client.touch(key, ttl))

    def delete(self, key: Any, version: int | None = None) -> bool:
        return bool(self._client.delete(self._key(key, version)))

    def has_key(self, key: Any, version: int | None = None) -> bool:
        return bool(self._client.exists(self._key(key, version)))

    def incr(self, key: Any, delta: int = 1, version: int | None = None) -> int:
        key = self._key(key, version)
        if not self._client.exists(key):
            raise ValueError(f"Key '{key}' not found.")
        return count(self._client, key, delta)

    def get_many(self, keys: Iterable[Any], version: int | None = None) -> dict[Any, Any]:
        originals = {self._key(key, version): key for key in keys}
        found = get_batched(self._client, list(originals), self._batch_size)
        return {originals[key]: from_server(stored, pickle.loads) for key, stored in found.items()}

    def set_many(
        self, data: Mapping[Any, Any], timeout: Any = DEFAULT_TIMEOUT, version: int | None = None
    ) -> list[Any]:
        if not data:
            return []
        originals = {}
        items = {}
        for key, value in data.items():
            made = self._key(key, version)
            originals[made] = key
            items[made] = to_server(value, _dumps)
        ttl = self.get_backend_timeout(timeout)
        if ttl == 0:
            delete_batched(self._client, list(items), self._batch_size)
            return []
        return [originals[key] for key in set_batched(self._client, items, ttl, self._batch_size, log)]

    def delete_many(self, keys: Iterable[Any], version: int | None = None) -> None:
        delete_batched(self._client, [self._key(key, version) for key in keys], self._batch_size)

    def clear(self) -> None:
        self._client.clear()

    def close(self, **kwargs: Any) -> None:
        """Nothing: the connection pool is kept for the next request."""
