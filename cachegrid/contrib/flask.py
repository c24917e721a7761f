"""Flask-Caching on CacheGrid: ``CacheGridCache``, a cachelib cache::

    app.config.update(
        CACHE_TYPE="cachegrid.contrib.flask.CacheGridCache",
        CACHE_CACHEGRID_HOSTS="http://127.0.0.1:8080",  # or a list of nodes: a cluster
        CACHE_CACHEGRID_TOKEN=None,
        CACHE_CACHEGRID_TIMEOUT=5.0,                   # seconds a request may take
        CACHE_CACHEGRID_NEAR_CACHE=False,              # True, or {"max_entries": ...}: a near cache
        CACHE_CACHEGRID_CA_FILE=None,                  # a CA bundle for https:// nodes (docs/tls.md)
        CACHE_KEY_PREFIX="myapp:",
        CACHE_DEFAULT_TIMEOUT=300,
        CACHE_OPTIONS={"replicas": 2},                 # the client's other options
    )
    cache = flask_caching.Cache(app)

Without Flask, ``CacheGridCache("127.0.0.1:8080", default_timeout=300,
key_prefix=None, **client_options)`` is a cachelib ``BaseCache``. Its
semantics are cachelib's (cachelib's and Flask-Caching's own backend tests
run against it, tests/contrib):

- ``timeout``: None is the default timeout, 0 never expires, a negative
  one expires at once (``set`` deletes the key); else seconds (or a
  ``timedelta``).
- Values: integers are JSON numbers, so ``inc``/``dec`` are one atomic
  operation on the server (a missing key counts as 0, as cachelib says);
  anything else goes through ``serializer`` (pickle; Flask-Caching's
  ``CACHE_SERIALIZER`` replaces it) into a binary value. ``inc``/``dec`` of a
  value that is no integer raise ``TypeError``.
- ``set``/``add``/``set_many`` answer False (or leave the key out) when the
  server refuses a value (too large, out of memory), and ``set`` then deletes
  the key, so no stale value stays behind; an outage raises the client's
  ``Unavailable`` (``fail_open=True``: a miss).
- ``get_many``/``set_many``/``delete_many`` are one request (per node of a
  cluster, per ``batch_size`` keys).
- ``clear()`` deletes the keys under ``key_prefix`` when there is one (a scan
  of them), and empties the whole server (every node) when there is none,
  as cachelib's Redis cache does.
- Keys longer than the server takes (250 bytes of UTF-8 with the prefix) are
  hashed (common.py).
"""

from __future__ import annotations

import datetime as dt
import logging
import pickle
from collections.abc import Callable
from typing import Any

from cachelib.serializers import BaseSerializer
from flask_caching.backends.base import BaseCache

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
    prefix_pattern,
    server_key,
    server_ttl,
    set_batched,
    to_server,
)

log = logging.getLogger("cachegrid.contrib.flask")
_MISSING = object()
Timeout = int | dt.timedelta | None


class PickleSerializer(BaseSerializer):
    """pickle, letting a value that cannot be pickled raise (cachelib's
    contract for ``set``) instead of logging it and storing nothing."""

    def dumps(self, value: Any, protocol: int = pickle.HIGHEST_PROTOCOL) -> bytes:
        return pickle.dumps(value, protocol)

    def loads(self, bvalue: bytes) -> Any:
        return pickle.loads(bvalue)


class CacheGridCache(BaseCache):
    """A cachelib / Flask-Caching cache on a CacheGrid server or cluster."""

    serializer = PickleSerializer()

    def __init__(
        self,
        hosts: Any = "localhost:8080",
        default_timeout: int | dt.timedelta = 300,
        key_prefix: str | Callable[[], str] | None = None,
        ignore_delete_many_errors: bool = True,
        max_key_length: int = DEFAULT_MAX_KEY_LENGTH,
        batch_size: int = DEFAULT_BATCH_SIZE,
        **client_options: Any,
    ) -> None:
        # Flask-Caching declares an int; cachelib beneath it takes a
        # timedelta as well and turns it into seconds.
        super().__init__(
            default_timeout=default_timeout,  # type: ignore[arg-type]
            ignore_delete_many_errors=ignore_delete_many_errors,
        )
        self.key_prefix = key_prefix or ""
        self._max_key_length = check_key_length(max_key_length)
        self._batch_size = check_batch_size(batch_size)
        self._client = make_client(
            hosts,
            client_options,
            ("default_timeout", "key_prefix", "ignore_delete_many_errors", "max_key_length", "batch_size"),
        )

    @classmethod
    def factory(cls, app: Any, config: dict[str, Any], args: list[Any], kwargs: dict[str, Any]) -> CacheGridCache:
        """Flask-Caching's constructor: the ``CACHE_CACHEGRID_*`` settings and
        ``CACHE_KEY_PREFIX``; ``CACHE_OPTIONS`` are already in ``kwargs``."""
        kwargs = dict(kwargs)
        kwargs.setdefault("hosts", config.get("CACHE_CACHEGRID_HOSTS", "localhost:8080"))
        for setting, option in (
            ("CACHE_CACHEGRID_TOKEN", "token"),
            ("CACHE_CACHEGRID_TIMEOUT", "timeout"),
            ("CACHE_CACHEGRID_NEAR_CACHE", "near_cache"),
            ("CACHE_CACHEGRID_CA_FILE", "ca_file"),
            ("CACHE_KEY_PREFIX", "key_prefix"),
        ):
            if config.get(setting) is not None:
                kwargs.setdefault(option, config[setting])
        return cls(*args, **kwargs)

    @property
    def client(self) -> SyncCacheGridClient:
        """The ``SyncCacheGridClient`` this cache uses."""
        return self._client

    def _prefix(self) -> str:
        return self.key_prefix() if callable(self.key_prefix) else self.key_prefix

    def _key(self, key: str) -> str:
        return server_key(self._prefix() + key, self._max_key_length)

    def _ttl(self, timeout: Timeout) -> int | float | None:
        """None (no expiry), 0 (expire at once) or the TTL in seconds."""
        seconds = self._normalize_timeout(timeout)
        if seconds == 0:
            return None
        return 0 if seconds < 0 else server_ttl(seconds)

    def _dumps(self, value: Any) -> Any:
        return to_server(value, self.serializer.dumps)

    def _loads(self, stored: Any) -> Any:
        return None if stored is _MISSING else from_server(stored, self.serializer.loads)

    def get(self, key: str) -> Any:
        return self._loads(self._client.get(self._key(key), _MISSING))

    def get_many(self, *keys: str) -> list[Any]:
        made = [self._key(key) for key in keys]
        found = get_batched(self._client, made, self._batch_size)
        return [self._loads(found.get(key, _MISSING)) for key in made]

    def set(self, key: str, value: Any, timeout: Timeout = None) -> bool:
        key = self._key(key)
        stored = self._dumps(value)
        ttl = self._ttl(timeout)
        if ttl == 0:
            self._client.delete(key)
            return True
        try:
            return bool(self._client.set(key, stored, ttl))
        except Unauthorized:
            raise
        except RequestError as error:
            log.warning("CacheGrid refused the value of %r: %s", key, error)
            self._client.delete(key)
            return False

    def add(self, key: str, value: Any, timeout: Timeout = None) -> bool:
        key = self._key(key)
        stored = self._dumps(value)
        ttl = self._ttl(timeout)
        if ttl == 0:  # it would have been added, and expired at once
            return not self._client.exists(key)
        try:
            return bool(self._client.set(key, stored, ttl, only_if_absent=True))
        except Unauthorized:
            raise
        except RequestError as error:
            log.warning("CacheGrid refused the value of %r: %s", key, error)
            return False

    def set_many(self, mapping: dict[str, Any], timeout: Timeout = None) -> list[Any]:
        originals = {self._key(key): key for key in mapping}
        items = {made: self._dumps(mapping[key]) for made, key in originals.items()}
        ttl = self._ttl(timeout)
        if ttl == 0:
            delete_batched(self._client, list(items), self._batch_size)
            return list(mapping)
        refused = set(set_batched(self._client, items, ttl, self._batch_size, log))
        return [key for made, key in originals.items() if made not in refused]

    def delete(self, key: str) -> bool:
        return bool(self._client.delete(self._key(key)))

    def delete_many(self, *keys: str) -> list[Any]:
        """Every key is deleted (one that did not exist counts as deleted), or
        the request raises."""
        delete_batched(self._client, [self._key(key) for key in keys], self._batch_size)
        return list(keys)

    def has(self, key: str) -> bool:
        return bool(self._client.exists(self._key(key)))

    def clear(self) -> bool:
        prefix = self._prefix()
        if not prefix:
            self._client.clear()
            return True
        delete_batched(self._client, self._client.keys(prefix_pattern(prefix), limit=None), self._batch_size)
        return True

    def inc(self, key: str, delta: int = 1) -> int:
        return count(self._client, self._key(key), delta)

    def dec(self, key: str, delta: int = 1) -> int:
        return count(self._client, self._key(key), -delta)
