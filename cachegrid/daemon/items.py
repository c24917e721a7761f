"""``/cache`` and ``/cache/{key}``: the items, one resource for the family.

``Items`` serves the value (``/cache/{key}``: GET, HEAD, PUT, DELETE), its
TTL (``/cache/{key}/ttl``), its counters (``/cache/{key}/incr`` and
``/decr``) and the whole collection (``DELETE /cache?confirm=true``), as
falcon ``suffix=`` responders of one class. The key is extracted by
routing.py, which derives its routes from the ones app.py adds.

A stored value is the compact JSON encoding of what was PUT, and a GET sends
those bytes back as they are, without decoding them (body.py); or, PUT as
``application/octet-stream``, raw bytes kept as sent (binary.py).

A conditional PUT (``If-Match`` / ``If-None-Match``) is one engine call: the
ETags are turned into version numbers here, and the engine checks them under
its lock in the same hold as the write, so nothing can slip between the check
and the write, and a failed condition counts no hit or miss and changes no
recency.

``GET /cache/{key}?peek=true`` is a read that is only a look (the
dashboard's key browser): it counts no hit or miss and leaves the key where
it was in the eviction order.
"""

from __future__ import annotations

import secrets
from typing import Any

import falcon

from ..config import Settings
from ..engine import ANY, INT64_MAX, INT64_MIN, UNCONDITIONAL, Cache, Condition, Preconditions, WriteOptions
from .binary import BINARY_TYPE, JSON_TYPE, OCTET_STREAM, TYPE_HEADER, check_acceptable, is_binary_body
from .body import bool_param, encode, int_param, json_body, parse_json, read_body, ttl_param
from .compression import ETAG_SUFFIX, GZIP, Compressor, accepts_gzip, inflated_values, read_coded_body
from .errors import ApiError
from .leases import lease_token, leased_read, mark_if_stale, stale_param
from .resources import Resource, send_json
from .tags import TAGS_HEADER, tags_param

TTL_HEADER = "X-Cache-TTL"
INT64_RANGE = (INT64_MIN, INT64_MAX)  # what incr/decr take as ``by``: the engine's counter range


class ETags:
    """ETags are ``"<epoch>-<version>"``: the epoch is drawn at start-up, so
    an ETag from before a restart never matches an entry written after it."""

    def __init__(self) -> None:
        self.epoch = secrets.token_hex(4)

    def of(self, version: int, gzip: bool = False) -> str:
        """The strong ETag of a version, of its gzip representation with ``gzip``
        (a value held compressed has two: RFC 9110 asks that they differ)."""
        return f'"{self.epoch}-{version}{ETAG_SUFFIX}"' if gzip else f'"{self.epoch}-{version}"'

    def versions(self, etags: list[Any], gzip: bool | None = None) -> list[int]:
        """The versions named by strong ETags of this epoch: of the identity
        representation (``gzip`` False), of the gzip one (True), or of either
        (None: a write's preconditions are about the value, whichever way it was read)."""
        prefix = f"{self.epoch}-"
        found = []
        for etag in etags:
            text = str(etag)
            if getattr(etag, "is_weak", False) or not text.startswith(prefix):
                continue
            number = text[len(prefix) :]
            coded = number.endswith(ETAG_SUFFIX)
            if coded:
                number = number[: -len(ETAG_SUFFIX)]
            if number.isdigit() and (gzip is None or gzip == coded):
                found.append(int(number))
        return found


def not_found(key: str) -> ApiError:
    return ApiError(404, "not_found", f"no such key: {key!r}", key=key)


def ttl_left(expires_at: float, now: float) -> str:
    """The ``X-Cache-TTL`` value: the seconds left, in milliseconds."""
    return f"{max(expires_at - now, 0.0):.3f}"


class Items(Resource):
    """``/cache``, ``/cache/{key}``, ``/cache/{key}/ttl``, ``/cache/{key}/incr``
    and ``/cache/{key}/decr``."""

    def __init__(self, cache: Cache, settings: Settings, etags: ETags) -> None:
        super().__init__(cache, settings)
        self.etags = etags
        self.compressor = Compressor(settings)
        self.compress_from = self.compressor.compress_from
        self.inflated = inflated_values(settings.inflated_cache_size)  # identity reads (compression.py)

    # -- /cache/{key} -------------------------------------------------------------

    def on_get(self, req: falcon.Request, resp: falcon.Response, key: str) -> None:
        # fastpath.py answers the plain GET and PUT before falcon, alike: a change
        # to these answers is one there too (tests/daemon/test_fastpath.py compares).
        self.check_key(key)
        if req.query_string and bool_param(req, "peek"):
            entry = self.cache.peek_entry(key)  # a look: no hit or miss, no change to the eviction order
        elif req.query_string and req.get_param("lease") is not None:
            entry = leased_read(self.cache, req, resp, key)  # leases.py: a miss says who computes
        else:
            entry = self.cache.get_entry(key)
        if entry is None:
            raise not_found(key)
        if entry.binary:
            check_acceptable(req, key, entry)
        gzip = None  # held as sent: one representation
        if entry.original_size is not None:  # held compressed: gzip or identity, by Accept-Encoding
            gzip = accepts_gzip(req.get_header("Accept-Encoding"))
            resp.set_header("ETag", self.etags.of(entry.version, gzip))
            resp.set_header("Vary", "Accept-Encoding")
        else:
            resp.set_header("ETag", self.etags.of(entry.version))
        if entry.tag_refs:
            resp.set_header(TAGS_HEADER, ",".join(self.cache.tags_of(entry)))
        if entry.expires_at is not None:  # without a TTL, no clock to read: no TTL header, never stale
            now = self.cache.clock()
            if entry.fresh_until is not None:  # a stale window needs a TTL
                mark_if_stale(resp, entry, now)  # leases.py: in its stale window
            resp.set_header(TTL_HEADER, ttl_left(entry.expires_at, now))
        if "HTTP_IF_NONE_MATCH" in req.env:  # only then parse it
            if_none_match = req.if_none_match
            if if_none_match and (
                "*" in if_none_match or entry.version in self.etags.versions(if_none_match, bool(gzip))
            ):
                resp.status = falcon.HTTP_304
                return
        value: bytes | None = entry.value
        if gzip:
            resp.set_header("Content-Encoding", GZIP)
        elif gzip is None:
            pass
        elif req.method == "HEAD":  # the identity's length is known: nothing to inflate for a HEAD
            value = None
        else:
            value = self.inflated.value(key, entry.value, entry.original_size)  # type: ignore[arg-type]
        if entry.binary:
            resp.set_header(TYPE_HEADER, BINARY_TYPE)
            resp.content_type = OCTET_STREAM
        else:
            resp.set_header(TYPE_HEADER, JSON_TYPE)
            resp.content_type = falcon.MEDIA_JSON
        if value is None:  # a HEAD of an identity held compressed: the length without the inflation
            resp.content_length = entry.original_size
        resp.data = value

    on_head = on_get

    def on_put(self, req: falcon.Request, resp: falcon.Response, key: str) -> None:
        # The key, the TTL's range and the value's size are the engine's to
        # check (it counts what it refuses); HTTP's own limits are checked here.
        ttl = ttl_param(req)
        binary = is_binary_body(req)
        held = None  # the value compressed, when it is held so (compression.py)
        if "HTTP_CONTENT_ENCODING" in req.env:
            value, held = self._coded_value(req, binary)
        elif binary:
            value = read_body(req, self.settings.max_body_size, allow_empty=True)
        else:
            value = encode(json_body(req, self.settings.max_body_size))
        if len(value) >= self.compress_from and held is None:
            held = self.compressor.pack(value)
        conditions = self._conditions(req)
        stale, tags = stale_param(req, self.settings, ttl), tags_param(req)
        token = lease_token(req)  # a lease holder's write ends its lease (leases.py)
        if token is None and conditions is None and not binary and stale is None and tags is None and held is None:
            result = self.cache.set(key, value, ttl)  # the plain PUT: no option values to build
        elif held is None:
            options = WriteOptions(binary, stale, tags)
            result = self.cache.write(key, value, ttl, options, conditions or UNCONDITIONAL, token)
        else:
            options = WriteOptions(binary, stale, tags, original_size=len(value))
            result = self.cache.write(key, held, ttl, options, conditions or UNCONDITIONAL, token)
        resp.set_header("ETag", self.etags.of(result.version))
        resp.set_header("Accept-Encoding", GZIP)  # compressed uploads are read (compression.ACCEPTS_CODINGS)
        send_json(resp, {"key": key, "ttl": ttl, "created": result.created}, 201 if result.created else 200)

    def _coded_value(self, req: falcon.Request, binary: bool) -> tuple[bytes, bytes | None]:
        """The value of a PUT whose body has a Content-Encoding (compression.py),
        and what to hold for it compressed (None: the value as it is)."""
        body, sent = read_coded_body(req, self.settings, self.cache.max_value_size)
        if binary:
            return body, self.compressor.held(body, sent)
        if not body:
            raise ApiError(400, "empty_body", "the request needs a JSON body")
        value = encode(parse_json(body))
        return value, self.compressor.held(value, sent if value == body else None)

    def _conditions(self, req: falcon.Request) -> Preconditions | None:
        """The engine's conditions for If-None-Match: * (only if absent),
        If-Match: * (only if present), If-Match: "<etag>", ... (only at one of
        those versions) and If-None-Match: "<etag>", ... (at none of them);
        None when the request has none."""
        env = req.env
        if "HTTP_IF_MATCH" not in env and "HTTP_IF_NONE_MATCH" not in env:
            return None  # the common case: no condition to parse
        if_none_match: Condition = None
        if req.if_none_match:
            if_none_match = ANY if "*" in req.if_none_match else self.etags.versions(req.if_none_match)
        if_match: Condition = None
        if req.if_match:  # ETags of another epoch name no version: an empty list never matches
            if_match = ANY if "*" in req.if_match else self.etags.versions(req.if_match)
        return Preconditions(if_match, if_none_match)

    def on_delete(self, req: falcon.Request, resp: falcon.Response, key: str) -> None:
        self.check_key(key)
        deleted = self.cache.delete(key)
        self.inflated.drop(key)  # its inflation's memory, at once (it could not be served anyway)
        send_json(resp, {"key": key, "deleted": deleted})

    # -- /cache/{key}/ttl: GET reads it, PUT ?ttl=N sets it (touch), DELETE
    # removes it (persist); ttl is null for a key without expiry ------------------

    def on_get_ttl(self, req: falcon.Request, resp: falcon.Response, key: str) -> None:
        self.check_key(key)
        ttl = self.cache.ttl(key)
        # Milliseconds, as X-Cache-TTL gives them: the engine's float carries
        # clock noise (357.3565179579999) that no caller can use.
        send_json(resp, {"key": key, "ttl": None if ttl is None else round(max(ttl, 0.0), 3)})

    def on_put_ttl(self, req: falcon.Request, resp: falcon.Response, key: str) -> None:
        self.check_key(key)
        ttl = ttl_param(req, required=True)
        if not self.cache.touch(key, ttl):  # type: ignore[arg-type]
            raise not_found(key)
        send_json(resp, {"key": key, "ttl": ttl})

    def on_delete_ttl(self, req: falcon.Request, resp: falcon.Response, key: str) -> None:
        self.check_key(key)
        if not self.cache.persist(key):
            raise not_found(key)
        send_json(resp, {"key": key, "ttl": None})

    # -- /cache/{key}/incr?by=N and /decr: atomic counters --------------------------

    def on_post_incr(self, req: falcon.Request, resp: falcon.Response, key: str) -> None:
        by = int_param(req, "by", 1, *INT64_RANGE)
        send_json(resp, {"key": key, "value": self.cache.incr(key, by)})

    def on_post_decr(self, req: falcon.Request, resp: falcon.Response, key: str) -> None:
        by = int_param(req, "by", 1, *INT64_RANGE)
        send_json(resp, {"key": key, "value": self.cache.decr(key, by)})

    # -- /cache: DELETE /cache?confirm=true clears the cache --------------------------

    def on_delete_collection(self, req: falcon.Request, resp: falcon.Response) -> None:
        if req.get_param("confirm") != "true":
            raise ApiError(400, "confirmation_required", "clearing the whole cache needs ?confirm=true")
        cleared = self.cache.clear()
        self.inflated.clear()
        send_json(resp, {"cleared": cleared})
