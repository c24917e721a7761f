"""The fast path: the plainest reads of a key, answered before falcon.

A GET of a small value spends more time in falcon (its request and response
objects, the middleware loop, routing, the error-handler machinery) than in
the engine: about 16 µs of 44 under meinheld, where a bare WSGI callable
answering the same bytes costs 28. ``FastPath`` is the WSGI callable
``create_app`` returns: it answers the commonest requests itself and hands
every other one, untouched, to the falcon app (``FastPath.app``).

Which requests it answers
-------------------------
``GET`` and ``HEAD`` of ``/cache/<key>`` with

- no query string (``?peek``, ``?lease`` and any other parameter: falcon),
- no ``If-None-Match`` (a conditional read: falcon),
- no ``Accept`` header, or ``*/*`` or ``application/octet-stream`` (any
  other may refuse a binary value with 406: falcon),
- when a token is configured, the right ``Authorization: Bearer`` header
  (compared in constant time, as ``BearerAuth``; a wrong or missing one:
  falcon, which answers 401),
- a path that the router (routing.py, ``KeyRouter.key_of``, the very rule
  falcon's routing applies) reads as the item itself: not a reserved path
  such as ``/cache/batch/get``, not ``/cache/<key>/<action>``, its
  percent-encoding valid; a server that does not keep the raw path
  (meinheld) must give an ASCII path,
- a key the engine accepts (an invalid or too long one: falcon, which
  answers 400).

All of that is decided before the engine is asked anything. Then it makes
the engine calls ``Items.on_get`` makes (``get_entry``, ``tags_of`` for a
tagged entry, the clock for one with a TTL), so hits, misses and stale hits
count alike, and answers what falcon would answer, byte for byte: the same
status line, the same headers (falcon's lower-case names, in falcon's
order: ``etag``, ``x-cache-tags``, ``x-cache-stale``, ``x-cache-ttl``,
``x-cache-type``, ``content-type``, ``content-length``) and the same body;
a miss gets the 404 JSON body of errors.py, a HEAD no body and the GET's
length. tests/daemon/test_fastpath.py holds the two paths to that, request
by request, in process and through both workers.
"""

from __future__ import annotations

import hmac
import io
import json
import re
from collections.abc import Callable, Iterable
from typing import Any

import falcon

from ..config import Settings
from ..engine import CacheError, check_key
from .binary import BINARY_TYPE, JSON_TYPE, OCTET_STREAM, TYPE_HEADER
from .body import encode, parse_json
from .errors import ApiError, from_engine
from .items import TTL_HEADER, Items
from .leases import LEASE_ENV, STALE_HEADER
from .routing import PREFIX, KeyRouter, raw_target_path
from .tags import TAGS_HEADER

Environ = dict[str, Any]
StartResponse = Callable[..., Any]
Answer = tuple[str, list[tuple[str, str]], bytes]  # status line, headers, body

# falcon sends header names in lower case.
_ETAG, _TAGS, _STALE, _TTL = "etag", TAGS_HEADER.lower(), STALE_HEADER.lower(), TTL_HEADER.lower()
_CONTENT_TYPE, _LENGTH = "content-type", "content-length"
_JSON_KIND = ((TYPE_HEADER.lower(), JSON_TYPE), (_CONTENT_TYPE, falcon.MEDIA_JSON))
_BINARY_KIND = ((TYPE_HEADER.lower(), BINARY_TYPE), (_CONTENT_TYPE, OCTET_STREAM))
# Accept headers under which falcon's client_accepts(octet-stream) is true
# without parsing: a binary value is sent, as a JSON one always is.
_ACCEPTS_BYTES = frozenset({"*/*", OCTET_STREAM})
_JSON_TYPE = (_CONTENT_TYPE, falcon.MEDIA_JSON)
_OK, _CREATED, _NOT_FOUND = "200 OK", "201 Created", "404 Not Found"
# The one query a plain PUT may have: a whole number of seconds (more than 9
# digits, a fraction, anything else: falcon's).
_TTL_QUERY = re.compile(r"ttl=([1-9][0-9]{0,8})")
_PREFIX_LENGTH = len(PREFIX)
# json.dumps(body, ensure_ascii=False), as errors.serialize writes it, without
# building an encoder per call.
_to_json = json.JSONEncoder(ensure_ascii=False).encode


class FastPath:
    """The WSGI app: plain reads of a key here, everything else by ``app``."""

    def __init__(self, app: falcon.App, router: KeyRouter, items: Items, settings: Settings) -> None:
        self.app = app
        self.router = router
        self.reserved = router.reserved
        self.cache = items.cache
        self.etag_of = items.etags.of
        self.max_key_length = items.max_key_length
        self.max_body_size = settings.max_body_size
        token = settings.auth_token
        # What BearerAuth expects (app.py).
        self.expected = f"Bearer {token.get_secret_value()}".encode() if token else None
        # Under this falcon option the path seen by the router differs: not mirrored here.
        self.enabled = not app.req_options.strip_url_path_trailing_slash

    def __call__(self, environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        method = environ["REQUEST_METHOD"]
        if (
            (method == "GET" or method == "HEAD")
            and not environ.get("QUERY_STRING")
            and "HTTP_IF_NONE_MATCH" not in environ
            and self.enabled
        ):
            key = self.plain_key(environ)
            if key is not None:
                status, headers, body = self.read(key)
                start_response(status, headers)
                return [] if method == "HEAD" else [body]
        elif (
            method == "PUT"
            and "HTTP_IF_MATCH" not in environ
            and "HTTP_IF_NONE_MATCH" not in environ
            and LEASE_ENV not in environ
            and self.enabled
        ):
            answer = self.write(environ)
            if answer is not None:
                start_response(answer[0], answer[1])
                return [answer[2]]
        return self.app(environ, start_response)

    def plain_key(self, environ: Environ) -> str | None:
        """The key of a request this module answers, None for one falcon answers."""
        accept = environ.get("HTTP_ACCEPT")
        if accept and accept not in _ACCEPTS_BYTES:
            return None
        if self.expected is not None:
            given = (environ.get("HTTP_AUTHORIZATION") or "").encode()
            if not hmac.compare_digest(given, self.expected):
                return None
        raw = environ.get("RAW_URI")
        if raw and raw.startswith(PREFIX):
            # PERF: the common target, /cache/<key> with nothing to decode or
            # split, read without a call: what key_of answers for it.
            key = raw[_PREFIX_LENGTH:]
            if (
                "/" not in key
                and "%" not in key
                and "?" not in key
                and "#" not in key
                and key not in self.reserved
                and key.isascii()
                and 0 < len(key) <= self.max_key_length
            ):
                return key
        return self.any_key(environ)

    def any_key(self, environ: Environ) -> str | None:
        """plain_key for any target: the router's rule, the engine's check."""
        path = raw_target_path(environ)
        raw = path is not None
        if path is None:
            path = environ["PATH_INFO"]
            if not path.isascii():  # falcon's own decoding of it: left to falcon
                return None
        try:
            found = self.router.key_of(path, raw)
        except ApiError:
            return None
        if found is None or found[1] is not None:
            return None
        key = found[0]
        if not (key.isascii() and 0 < len(key) <= self.max_key_length):  # Resource.check_key's common case
            try:
                check_key(key, self.max_key_length)
            except CacheError:
                return None
        return key

    def write(self, environ: Environ) -> Answer | None:
        """Items.on_put's answer to a plain PUT, None for one falcon answers
        (with the body, when this has read it, put back for falcon to read)."""
        query, ttl = environ.get("QUERY_STRING"), None
        if query:
            match = _TTL_QUERY.fullmatch(query)
            if match is None:
                return None
            ttl = int(match[1])  # ttl_param's number; below 10**9 s, within the engine's range
        kind = environ.get("CONTENT_TYPE")
        if kind and not kind.startswith(falcon.MEDIA_JSON):  # is_binary_body's JSON without parsing
            return None
        length = environ.get("CONTENT_LENGTH")
        if not length or not (length.isascii() and length.isdigit()):  # chunked, or odd: falcon's
            return None
        size = int(length)
        if not 0 < size <= self.max_body_size:
            return None
        key = self.plain_key(environ)
        if key is None:
            return None
        try:
            body = environ["wsgi.input"].read(size)
        except Exception as error:  # falcon reads it again and gets the same failure (body.py's _read)
            environ["wsgi.input"] = _Failing(error)
            return None
        try:
            value = encode(parse_json(body))
        except ApiError:  # empty, not JSON: falcon says which, from the same bytes
            environ["wsgi.input"] = io.BytesIO(body)
            return None
        try:
            result = self.cache.set(key, value, ttl)
        except CacheError as error:  # refused by the engine (and counted there): errors.py's answer
            return error_answer(from_engine(error, key))
        answer = encode({"key": key, "ttl": ttl, "created": result.created})
        headers = [(_ETAG, self.etag_of(result.version)), _JSON_TYPE, (_LENGTH, str(len(answer)))]
        return (_CREATED if result.created else _OK), headers, answer

    def read(self, key: str) -> Answer:
        """Items.on_get's answer for ``key``: status, headers, body."""
        cache = self.cache
        entry = cache.get_entry(key)
        if entry is None:
            # errors.py's serialization of items.py's _not_found(key).
            error = {"error": "not_found", "message": f"no such key: {key!r}", "key": key}
            body = _to_json(error).encode()
            return _NOT_FOUND, [_JSON_TYPE, (_LENGTH, str(len(body)))], body
        headers = [(_ETAG, self.etag_of(entry.version))]
        if entry.tag_refs:
            headers.append((_TAGS, ",".join(cache.tags_of(entry))))
        if entry.expires_at is not None:
            now = cache.clock()
            if entry.fresh_until is not None and entry.is_stale(now):
                headers.append((_STALE, "true"))
            headers.append((_TTL, f"{max(entry.expires_at - now, 0.0):.3f}"))
        value = entry.value
        headers.extend(_BINARY_KIND if entry.binary else _JSON_KIND)
        headers.append((_LENGTH, str(len(value))))
        return _OK, headers, value


def error_answer(error: ApiError) -> Answer:
    """falcon's answer to ``error`` under errors.serialize."""
    body = _to_json(error.to_dict()).encode()
    headers = [(name.lower(), value) for name, value in (error.headers or {}).items()]
    headers += [_JSON_TYPE, (_LENGTH, str(len(body)))]
    return falcon.code_to_http_status(error.status), headers, body


class _Failing:
    """A request body whose read fails as it failed here."""

    def __init__(self, error: Exception) -> None:
        self.error = error

    def read(self, size: int = -1) -> bytes:
        raise self.error
