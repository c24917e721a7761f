"""The fast path: the plainest reads and writes of a key, answered before falcon.

A GET of a small value spent more time in falcon (its request and response
objects, the middleware loop, routing, the error-handler machinery) than in
the engine: under meinheld, 44 µs per request where a bare WSGI callable
answering the same bytes took 28. ``FastPath`` is the WSGI callable
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
  falcon, which answers 401); with an ACL file, a token whose grant
  (acl.py's ``identify``) has ``read`` (GET, HEAD) or ``write`` (PUT) and
  the key within its prefixes (any other: falcon, which answers 401 or 403,
  and logs and counts the refusal),
- a path that the router (routing.py, ``KeyRouter.key_of``, the very rule
  falcon's routing applies) reads as the item itself: not a reserved path
  such as ``/cache/batch/get``, not ``/cache/<key>/<action>``, its
  percent-encoding valid; a server that does not keep the raw path must
  give an ASCII path (both of CacheGrid's workers keep it),
- a key the engine accepts (an invalid or too long one: falcon, which
  answers 400).

``PUT /cache/<key>`` with the same path, key, token and Accept rules, and

- no query string, or only ``ttl=<whole seconds>`` (up to 9 digits),
- ``Content-Type`` absent or ``application/json...`` (binary values, and
  the other types read as JSON: falcon),
- a ``Content-Length`` from 1 to ``max_body_size`` (a chunked body: falcon),
- no ``If-Match``, ``If-None-Match`` or ``X-Cache-Lease``,
- no ``Content-Encoding`` (a compressed body: falcon, compression.py).

A value held compressed is answered here too, as ``Items`` answers it
(compression.py): gzip as held, or decompressed, by ``Accept-Encoding``,
with ``vary`` after the ``etag`` and ``content-encoding`` before
``x-cache-type``; a PUT of a value at or over ``compress_threshold`` is
compressed here as there.

All of that is decided before the engine is asked anything. A PUT whose
body turns out not to be JSON (or cannot be read) goes to falcon with the
same bytes (or the same failure) to read, so falcon's 400 says why. Then it
makes the engine calls ``Items`` makes (``get_entry``, ``tags_of`` for a
tagged entry, the clock for one with a TTL; ``set``), so hits, misses,
stale hits and refusals count alike, and answers what falcon would answer,
byte for byte: the same status line, the same headers (falcon's lower-case
names, in falcon's order: ``etag`` (on a PUT's answer then ``accept-encoding``), ``x-cache-tags``, ``x-cache-stale`` or
``x-cache-fresh``, ``x-cache-ttl``, ``x-cache-type``, ``content-type``,
``content-length``) and the same body; a miss, an engine's refusal (413, 507) and a failure of
the server's own (500) get errors.py's JSON answer, a HEAD no body and the
GET's length. tests/daemon/test_fastpath.py holds the two paths to that,
request by request, in process, and tests/integration/test_fastpath_serving.py
through both workers.
"""

from __future__ import annotations

import hmac
import io
import json
import re
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import falcon
import orjson

from ..config import Settings
from ..engine import CacheError, WriteOptions, check_key
from .acl import READ, WRITE, Acl
from .binary import BINARY_TYPE, JSON_TYPE, OCTET_STREAM, TYPE_HEADER
from .body import encode, parse_json
from .compression import ACCEPTS_CODINGS, CONTENT_ENCODING, VARY, accepts_gzip
from .errors import ApiError, from_engine, unexpected
from .items import TTL_HEADER, Items, not_found, ttl_left
from .leases import LEASE_ENV, stale_mark
from .routing import PREFIX, KeyRouter, raw_target_path
from .tags import TAGS_HEADER

Environ = dict[str, Any]
StartResponse = Callable[..., Any]
Answer = tuple[str, list[tuple[str, str]], bytes]  # status line, headers, body

# falcon sends header names in lower case.
_ETAG, _TAGS, _TTL = "etag", TAGS_HEADER.lower(), TTL_HEADER.lower()
_CONTENT_TYPE, _LENGTH = "content-type", "content-length"
_JSON_CONTENT = (_CONTENT_TYPE, falcon.MEDIA_JSON)
_JSON_KIND = ((TYPE_HEADER.lower(), JSON_TYPE), _JSON_CONTENT)
_BINARY_KIND = ((TYPE_HEADER.lower(), BINARY_TYPE), (_CONTENT_TYPE, OCTET_STREAM))
# Accept headers under which falcon's client_accepts(octet-stream) is true
# without parsing: a binary value is sent, as a JSON one always is.
_ACCEPTS_BYTES = frozenset({"*/*", OCTET_STREAM})
_OK, _CREATED = "200 OK", "201 Created"
# The one query a plain PUT may have: a whole number of seconds (more than 9
# digits, a fraction, anything else: falcon's).
_TTL_QUERY = re.compile(r"ttl=([1-9][0-9]{0,8})")
_PREFIX_LENGTH = len(PREFIX)
# The end of a plain PUT's answer without a TTL (put_answer).
_NO_TTL_CREATED, _NO_TTL_REPLACED = b',"ttl":null,"created":true}', b',"ttl":null,"created":false}'
# json.dumps(body, ensure_ascii=False), as errors.serialize writes it, without
# building an encoder per call.
_to_json = json.JSONEncoder(ensure_ascii=False).encode


class FastPath:
    """The WSGI app: plain reads and writes of a key here, everything else by ``app``."""

    def __init__(
        self, app: falcon.App, router: KeyRouter, items: Items, settings: Settings, acl: Acl | None = None
    ) -> None:
        self.app = app
        self.router = router
        self.reserved = router.reserved
        self.cache = items.cache
        self.etag_of = items.etags.of
        self.max_key_length = items.max_key_length
        self.max_body_size = settings.max_body_size
        self.compressor = items.compressor
        self.compress_from = items.compress_from
        self.inflated = items.inflated.value  # identity reads of values held compressed
        token = settings.auth_token
        # What BearerAuth expects (app.py).
        self.expected = f"Bearer {token.get_secret_value()}".encode() if token and acl is None else None
        self.acl = acl  # with an ACL file: its decision (acl.py), auth_token included
        self.open = self.expected is None and acl is None  # no token to check (plain_key)
        # Under this falcon option the path seen by the router differs: not mirrored here.
        self.enabled = not app.req_options.strip_url_path_trailing_slash

    def __call__(self, environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        method = environ["REQUEST_METHOD"]
        answer = None
        try:
            if (
                (method == "GET" or method == "HEAD")
                and not environ.get("QUERY_STRING")
                and "HTTP_IF_NONE_MATCH" not in environ
                and self.enabled
            ):
                # PERF: with no token, no ACL and no Accept, plain_key is quick_key.
                key = (
                    self.quick_key(environ)
                    if self.open and "HTTP_ACCEPT" not in environ
                    else self.plain_key(environ, READ)
                )
                if key is not None:
                    answer = self.read(key, environ)
            elif (
                method == "PUT"
                and "HTTP_IF_MATCH" not in environ
                and "HTTP_IF_NONE_MATCH" not in environ
                and LEASE_ENV not in environ
                and self.enabled
            ):
                answer = self.write(environ)
        except Exception:  # as errors.handle_unexpected answers it
            answer = error_answer(unexpected(method, environ.get("PATH_INFO", "")))
        if answer is None:
            return self.app(environ, start_response)
        start_response(answer[0], answer[1])
        return [] if method == "HEAD" else [answer[2]]

    def plain_key(self, environ: Environ, permission: str) -> str | None:
        """The key of a request this module answers, None for one falcon answers
        (``permission``: what the ACL's token needs for it, read or write)."""
        accept = environ.get("HTTP_ACCEPT")
        if accept and accept not in _ACCEPTS_BYTES:
            return None
        if self.expected is not None:
            given = (environ.get("HTTP_AUTHORIZATION") or "").encode()
            if not hmac.compare_digest(given, self.expected):
                return None
        if self.acl is not None:
            # acl.py's decision; a refusal (401, 403) is falcon's to answer, log and count.
            grant = self.acl.identify(environ.get("HTTP_AUTHORIZATION"))
            if grant is None or permission not in grant.permissions:
                return None
            key = self.quick_key(environ)
            if key is None or (grant.prefixes is not None and not key.startswith(grant.prefixes)):  # Grant.allows
                return None
            grant.counters[0] += 1
            return key
        return self.quick_key(environ)

    def quick_key(self, environ: Environ) -> str | None:
        """plain_key's key, its common target read without a call."""
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
        if "HTTP_CONTENT_ENCODING" in environ:  # a compressed body (compression.py): falcon's
            return None
        size = int(length)
        if not 0 < size <= self.max_body_size:
            return None
        key = self.plain_key(environ, WRITE)
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
            if len(value) < self.compress_from:
                result = self.cache.set(key, value, ttl)
            else:  # compression.py: held compressed when that saves enough, as Items.on_put
                held = self.compressor.pack(value)
                if held is None:
                    result = self.cache.set(key, value, ttl)
                else:
                    result = self.cache.write(key, held, ttl, WriteOptions(original_size=len(value)))
        except CacheError as error:  # refused by the engine (and counted there): errors.py's answer
            return error_answer(from_engine(error, key))
        answer = put_answer(key, ttl, result.created)
        headers = [(_ETAG, self.etag_of(result.version)), ACCEPTS_CODINGS, _JSON_CONTENT, (_LENGTH, str(len(answer)))]
        return (_CREATED if result.created else _OK), headers, answer

    def read(self, key: str, environ: Environ) -> Answer:
        """Items.on_get's answer for ``key``: status, headers, body."""
        cache = self.cache
        entry = cache.get_entry(key)
        if entry is None:
            return error_answer(not_found(key))
        gzip = None  # held as sent: one representation
        if entry.original_size is None:
            headers = [(_ETAG, self.etag_of(entry.version))]
        else:  # held compressed: gzip or identity, by Accept-Encoding (compression.py)
            gzip = accepts_gzip(environ.get("HTTP_ACCEPT_ENCODING"))
            headers = [(_ETAG, self.etag_of(entry.version, gzip)), VARY]
        if entry.tag_refs:
            headers.append((_TAGS, ",".join(cache.tags_of(entry))))
        if entry.expires_at is not None:
            now = cache.clock()
            if entry.fresh_until is not None:
                mark = stale_mark(entry, now)
                if mark is not None:
                    headers.append((mark[0].lower(), mark[1]))
            headers.append((_TTL, ttl_left(entry.expires_at, now)))
        value = entry.value
        length = len(value)
        if gzip:
            headers.append(CONTENT_ENCODING)
        elif gzip is None:
            pass
        elif environ["REQUEST_METHOD"] == "HEAD":  # the identity's length is known: nothing to inflate
            length = entry.original_size  # type: ignore[assignment]
        else:
            value = self.inflated(key, value, entry.original_size)  # type: ignore[arg-type]
            length = len(value)
        headers.extend(_BINARY_KIND if entry.binary else _JSON_KIND)
        headers.append((_LENGTH, str(length)))
        return _OK, headers, value


def put_answer(key: str, ttl: int | None, created: bool) -> bytes:
    """``encode({"key": key, "ttl": ttl, "created": created})``, the body of
    Items.on_put's answer, from prepared bytes: only the key (and a TTL) is
    written per request."""
    try:
        quoted = orjson.dumps(key)
    except orjson.JSONEncodeError:  # not for a key the engine took: as encode would fail, or not
        return encode({"key": key, "ttl": ttl, "created": created})
    if ttl is None:
        return b"".join((b'{"key":', quoted, _NO_TTL_CREATED if created else _NO_TTL_REPLACED))
    return b'{"key":%b,"ttl":%d,"created":%b}' % (quoted, ttl, b"true" if created else b"false")


def error_answer(error: ApiError) -> Answer:
    """falcon's answer to ``error`` under errors.serialize."""
    body = _to_json(error.to_dict()).encode()
    given = error.headers or ()
    headers = [(name.lower(), value) for name, value in (given.items() if isinstance(given, Mapping) else given)]
    headers += [_JSON_CONTENT, (_LENGTH, str(len(body)))]
    return falcon.code_to_http_status(error.status), headers, body


class _Failing:
    """A request body whose read fails as it failed here."""

    def __init__(self, error: Exception) -> None:
        self.error = error

    def read(self, size: int = -1) -> bytes:
        raise self.error
