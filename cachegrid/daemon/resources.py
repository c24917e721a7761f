"""The resources of the HTTP API: thin adapters between HTTP and the engine.

Each resource holds what it needs (the cache, the settings) and does three
things: read and check the request, call the engine once, write the answer.
Engine errors are not caught here: the app maps them to HTTP in one place
(errors.py).

A stored value is the compact JSON encoding of what was PUT, and a GET sends
those bytes back as they are, without decoding them (body.py).
"""

from __future__ import annotations

import secrets
import time
from typing import Any

import falcon

from ..config import MiB, Settings
from ..engine import ANY, Cache, Condition, Entry, InvalidKey, KeyTooLong
from ..engine.store import key_length
from .body import encode, int_param, json_body, stored, ttl_param, ttl_value
from .errors import ApiError
from .loadtest import OPERATION_TYPES, run_load_test

TTL_HEADER = "X-Cache-TTL"


def check_key(key: str, settings: Settings) -> None:
    """400 unless ``key`` is a usable key within the length limit."""
    if key.isascii() and 0 < len(key) <= settings.max_key_length:
        return  # the common case, without encoding the key
    try:
        length = key_length(key)
    except InvalidKey as error:
        raise ApiError(400, "invalid_key", str(error)) from None
    if length > settings.max_key_length:
        error = KeyTooLong(length, settings.max_key_length)
        raise ApiError(400, "key_too_long", str(error), limit=settings.max_key_length, key=key[:64])


def check_value_size(value: bytes, key: str, settings: Settings) -> bytes:
    """``value``, or 413 naming the key when it is over the size limit."""
    if len(value) > settings.max_value_size:
        raise ApiError(413, "value_too_large", f"the value of {key!r} is {len(value)} bytes; the limit is "
                       f"{settings.max_value_size}", limit=settings.max_value_size, key=key)
    return value


class ETags:
    """ETags are ``"<epoch>-<version>"``: the epoch is drawn at start-up, so
    an ETag from before a restart never matches an entry written after it."""

    def __init__(self) -> None:
        self.epoch = secrets.token_hex(4)

    def of(self, version: int) -> str:
        return f'"{self.epoch}-{version}"'

    def versions(self, tags: list[Any]) -> list[int]:
        """The versions named by strong ETags of this epoch."""
        prefix = f"{self.epoch}-"
        found = []
        for tag in tags:
            text = str(tag)
            if not getattr(tag, "is_weak", False) and text.startswith(prefix) and text[len(prefix):].isdigit():
                found.append(int(text[len(prefix):]))
        return found


def _json(resp: falcon.Response, body: Any, status: int = 200) -> None:
    resp.status = status
    resp.content_type = falcon.MEDIA_JSON
    resp.data = encode(body)


def _not_found(key: str) -> ApiError:
    return ApiError(404, "not_found", f"no such key: {key!r}", key=key)


def _ttl_header(entry: Entry, now: float) -> str | None:
    left = entry.ttl(now)
    return None if left is None else f"{max(left, 0.0):.3f}"


class Resource:
    """A resource of the cache under the settings (most of them are one)."""

    def __init__(self, cache: Cache, settings: Settings) -> None:
        self.cache = cache
        self.settings = settings


class Item(Resource):
    """``/cache/{key}``: one value."""

    def __init__(self, cache: Cache, settings: Settings, etags: ETags) -> None:
        super().__init__(cache, settings)
        self.etags = etags

    def on_get(self, req: falcon.Request, resp: falcon.Response, key: str) -> None:
        check_key(key, self.settings)
        entry = self.cache.get_entry(key)
        if entry is None:
            raise _not_found(key)
        etag = self.etags.of(entry.version)
        resp.set_header("ETag", etag)
        left = _ttl_header(entry, self.cache.clock())
        if left is not None:
            resp.set_header(TTL_HEADER, left)
        if "HTTP_IF_NONE_MATCH" in req.env:  # only then parse it
            if_none_match = req.if_none_match
            if if_none_match and ("*" in if_none_match or entry.version in self.etags.versions(if_none_match)):
                resp.status = falcon.HTTP_304
                return
        resp.content_type = falcon.MEDIA_JSON
        resp.data = entry.value

    on_head = on_get

    def on_put(self, req: falcon.Request, resp: falcon.Response, key: str) -> None:
        check_key(key, self.settings)
        ttl = ttl_param(req)
        value = check_value_size(stored(json_body(req, self.settings.max_body_size)), key, self.settings)
        # Preconditions come after the request's own checks (RFC 9110 13.2.1).
        if_match, if_none_match = self._conditions(req)
        result = self.cache.set(key, value, ttl, if_match=if_match, if_none_match=if_none_match)
        resp.set_header("ETag", self.etags.of(result.version))
        _json(resp, {"key": key, "ttl": ttl, "created": result.created}, 201 if result.created else 200)

    def _conditions(self, req: falcon.Request) -> tuple[Condition, Condition]:
        """If-Match and If-None-Match as the engine's conditions: ANY for
        ``*``, else the versions their strong ETags of this epoch name (none
        may: then If-Match fails and If-None-Match holds). The engine checks
        them in the same lock hold as the write."""
        if "HTTP_IF_MATCH" not in req.env and "HTTP_IF_NONE_MATCH" not in req.env:
            return None, None  # the common case: no condition to parse
        return self._condition(req.if_match), self._condition(req.if_none_match)

    def _condition(self, tags: list[Any] | None) -> Condition:
        if not tags:
            return None
        return ANY if "*" in tags else self.etags.versions(tags)

    def on_delete(self, req: falcon.Request, resp: falcon.Response, key: str) -> None:
        check_key(key, self.settings)
        _json(resp, {"key": key, "deleted": self.cache.delete(key)})


class Everything:
    """``/cache``: ``DELETE /cache?confirm=true`` clears the cache."""

    def __init__(self, cache: Cache) -> None:
        self.cache = cache

    def on_delete(self, req: falcon.Request, resp: falcon.Response) -> None:
        if req.get_param("confirm") != "true":
            raise ApiError(400, "confirmation_required", "clearing the whole cache needs ?confirm=true")
        _json(resp, {"cleared": self.cache.clear()})


class BatchSet(Resource):
    """``POST /cache/batch/set`` ``{"items": {key: value, ...}, "ttl": N}``:
    all or nothing."""

    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        body = json_body(req, self.settings.max_body_size)
        if not isinstance(body, dict) or not isinstance(body.get("items"), dict):
            raise ApiError(400, "invalid_batch", 'the body must be {"items": {"key": value, ...}, "ttl": seconds}')
        unknown = sorted(set(body) - {"items", "ttl"})
        if unknown:
            raise ApiError(400, "invalid_batch", f"unknown field {unknown[0]!r}; expected items and ttl")
        items = body["items"]
        if len(items) > self.settings.max_batch_size:
            raise ApiError(413, "batch_too_large",
                           f"{len(items)} items; the limit is {self.settings.max_batch_size}",
                           limit=self.settings.max_batch_size)
        ttl = None if body.get("ttl") is None else ttl_value(body["ttl"])
        values = {}
        for key, value in items.items():
            check_key(key, self.settings)
            values[key] = check_value_size(stored(value), key, self.settings)
        count = self.cache.set_many(values, ttl)
        _json(resp, {"stored": count, "ttl": ttl})


def batch_keys(req: falcon.Request, settings: Settings) -> list[str]:
    """The keys of a ``{"keys": [...]}`` body, checked, duplicates dropped."""
    body = json_body(req, settings.max_body_size)
    keys = body.get("keys") if isinstance(body, dict) else None
    if not isinstance(keys, list) or not all(isinstance(key, str) for key in keys) or set(body) != {"keys"}:
        raise ApiError(400, "invalid_batch", 'the body must be {"keys": ["key", ...]}')
    if len(keys) > settings.max_batch_size:
        raise ApiError(413, "batch_too_large", f"{len(keys)} keys; the limit is {settings.max_batch_size}",
                       limit=settings.max_batch_size)
    for key in keys:
        check_key(key, settings)
    return list(dict.fromkeys(keys))


class BatchGet(Resource):
    """``POST /cache/batch/get`` ``{"keys": [...]}`` ->
    ``{"items": {key: value, ...}, "missing": [...]}``."""

    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        unique = batch_keys(req, self.settings)
        found = self.cache.get_many(unique)
        # The stored values are JSON already: splice them in without decoding.
        items = b",".join(encode(key) + b":" + value for key, value in found.items())
        missing = encode([key for key in unique if key not in found])
        resp.content_type = falcon.MEDIA_JSON
        resp.data = b'{"items":{' + items + b'},"missing":' + missing + b"}"


class BatchDelete(Resource):
    """``POST /cache/batch/delete`` ``{"keys": [...]}`` -> ``{"deleted": n}``."""

    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        keys = batch_keys(req, self.settings)
        _json(resp, {"deleted": self.cache.delete_many(keys)})


class Counter(Resource):
    """``POST /cache/{key}/incr?by=N`` and ``/decr``: atomic counters."""

    def __init__(self, cache: Cache, settings: Settings, sign: int) -> None:
        super().__init__(cache, settings)
        self.sign = sign

    def on_post(self, req: falcon.Request, resp: falcon.Response, key: str) -> None:
        check_key(key, self.settings)
        by = int_param(req, "by", 1, -(2**63), 2**63 - 1)
        value = self.cache.incr(key, self.sign * by)
        _json(resp, {"key": key, "value": value})


class TTL(Resource):
    """``/cache/{key}/ttl``: GET reads it, PUT ``?ttl=N`` sets it (touch),
    DELETE removes it (persist). ``ttl`` is null for a key without expiry."""

    def on_get(self, req: falcon.Request, resp: falcon.Response, key: str) -> None:
        check_key(key, self.settings)
        _json(resp, {"key": key, "ttl": self.cache.ttl(key)})

    def on_put(self, req: falcon.Request, resp: falcon.Response, key: str) -> None:
        check_key(key, self.settings)
        ttl = ttl_param(req, required=True)
        if not self.cache.touch(key, ttl):  # type: ignore[arg-type]
            raise _not_found(key)
        _json(resp, {"key": key, "ttl": ttl})

    def on_delete(self, req: falcon.Request, resp: falcon.Response, key: str) -> None:
        check_key(key, self.settings)
        if not self.cache.persist(key):
            raise _not_found(key)
        _json(resp, {"key": key, "ttl": None})


def stats_document(cache: Cache, settings: Settings) -> dict[str, Any]:
    """The engine's counters, plus the seed's memory_usage_mb and the node."""
    stats = cache.stats()
    stats["memory_usage_mb"] = round(stats["memory_usage_bytes"] / MiB, 3)
    stats["max_memory_mb"] = round(stats["max_memory_bytes"] / MiB, 3)
    stats["hit_ratio"] = round(stats["hit_ratio"], 4)
    stats["uptime_seconds"] = round(stats["uptime_seconds"], 3)
    stats["node_id"] = settings.node_id
    return stats


class Stats(Resource):
    """``GET /stats``."""

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        _json(resp, stats_document(self.cache, self.settings))


class Health(Resource):
    """``GET /health``: 200 healthy, or 503 when the sweeper thread died or the
    engine's lock cannot be taken within a second."""

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        problems = []
        if not self.cache.sweeper_alive:
            problems.append("the expiry sweeper is not running")
        if not self.cache.responsive(timeout=1.0):
            problems.append("the engine did not answer within 1 s")
        document: dict[str, Any] = {"status": "unhealthy" if problems else "healthy"}
        if problems:
            document["problems"] = problems
        else:
            stats = stats_document(self.cache, self.settings)
            document.update(
                uptime_seconds=stats["uptime_seconds"],
                cache_size=stats["current_size"],
                hit_ratio=stats["hit_ratio"],
                memory_usage_mb=stats["memory_usage_mb"],
            )
        document.update(last_check=round(time.time(), 3), node_id=self.settings.node_id)
        _json(resp, document, 503 if problems else 200)


class Keys(Resource):
    """``GET /admin/keys?pattern=&limit=&cursor=``."""

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        pattern = req.get_param("pattern") or None
        limit = int_param(req, "limit", min(100, self.settings.max_keys_limit), 1, self.settings.max_keys_limit)
        page = self.cache.keys(pattern, limit, req.get_param("cursor") or None)
        _json(resp, {"keys": page.keys, "count": len(page.keys), "cursor": page.cursor, "pattern": pattern})


class LoadTest:
    """``POST /test/load?num_operations=&operation_type=get|set|mixed``: runs
    against a scratch engine with the same policy and limits, never the data."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        if not self.settings.loadtest_enabled:
            raise ApiError(403, "load_test_disabled", "the load test is switched off (loadtest_enabled = false)")
        limit = self.settings.loadtest_max_operations
        count = int_param(req, "num_operations", min(1000, limit), 1, limit)
        kind = req.get_param("operation_type") or "mixed"
        if kind not in OPERATION_TYPES:
            raise ApiError(400, "invalid_parameter",
                           f"operation_type must be one of {', '.join(OPERATION_TYPES)}, not {kind!r}")
        _json(resp, run_load_test(self.settings, count, kind))
