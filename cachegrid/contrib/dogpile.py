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

``get_mutex`` gives no distributed mutex yet: it returns None, so dogpile
uses its in-process lock (one creator per process, not per cluster).
"""

from __future__ import annotations

from typing import Any, Iterable, Mapping, Sequence

from dogpile.cache.api import NO_VALUE, BytesBackend, CacheMutex

from .common import (
    CLIENT_OPTIONS,
    DEFAULT_BATCH_SIZE,
    DEFAULT_MAX_KEY_LENGTH,
    check_key_length,
    chunks,
    delete_batched,
    get_batched,
    make_client,
    server_key,
    server_ttl,
)

_MISSING = object()


class CacheGridBackend(BytesBackend):
    """A dogpile.cache backend on a CacheGrid server or cluster."""

    def __init__(self, arguments: Mapping[str, Any]) -> None:
        arguments = dict(arguments)  # never changed: the caller's dictionary stays as it was
        ttl = arguments.get("ttl")
        if ttl is not None and not ttl > 0:
            raise ValueError(f"ttl must be a number of seconds greater than 0, or None, not {ttl!r}")
        self.ttl = None if ttl is None else server_ttl(ttl)
        self._max_key_length = check_key_length(arguments.get("max_key_length", DEFAULT_MAX_KEY_LENGTH))
        self._batch_size = int(arguments.get("batch_size", DEFAULT_BATCH_SIZE))
        if self._batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, not {self._batch_size}")
        options = {name: value for name, value in arguments.items() if name in CLIENT_OPTIONS}
        self.client = make_client(arguments.get("hosts", "localhost:8080"), options)

    def _key(self, key: str) -> str:
        return server_key(key, self._max_key_length)

    @staticmethod
    def _serialized(stored: Any) -> Any:
        return bytes(stored) if isinstance(stored, (bytes, bytearray)) else NO_VALUE

    def get_mutex(self, key: str) -> CacheMutex | None:
        return None

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
