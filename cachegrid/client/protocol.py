"""The HTTP contract, written once for both clients, and the plans that run it.

Every request is a ``Call`` (method, path, query, body, how to read the
answer). The operations (api.py) do not send Calls themselves: they hand a
*plan* to the client's ``_run``. A plan is a sans-IO generator: it yields a
``Step`` (seconds to wait, then the ``(host, Call)`` pairs to send at once),
is sent the outcome of each (an ``Answer`` or the ``NotSent``/``MaybeSent``
the transport raised), and returns the operation's result. The synchronous
client runs a step's requests on a small thread pool, the asynchronous one
as asyncio tasks; everything else (failover, replicas, fan-out, merging) is
in the plans, once. A transport reports a failure as ``NotSent`` (the request
surely did not reach a server) or ``MaybeSent``.

Failover, replicas, fan-out and their retries are the plans of retry.py
(``HostPool.run``: one logical cache) and cluster.py (a sharded cluster).
Which outcome counts as a host failing is said here (``failure``): a
connection error, a timeout or a 5xx answer (but 507, "full", which is the
server's considered answer, and the statuses a Call lists as answers). A 4xx
is the answer, never retried.

Values: ``bytes`` (also ``bytearray`` and ``memoryview``) are stored as a
binary value (``application/octet-stream``; in batches base64 under
``items_base64``) and come back as ``bytes``; anything else is JSON, as before.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Callable, Generator, Iterable, Mapping
from dataclasses import dataclass
from functools import partial
from types import MappingProxyType
from typing import Any, NamedTuple
from urllib.parse import quote

import orjson

from .errors import ConnectionUnavailable, NotFound, RequestError, TimeoutUnavailable, Unauthorized, Unavailable

DEFAULT_PORT = 8080
JSON_TYPE = "application/json"
OCTET_STREAM = "application/octet-stream"
# The headers of a plain PUT of a value, shared and read-only: the lean
# transports know them by identity and send a header block prepared once
# per node instead of formatting them on every call (wire.Origin.request).
JSON_BODY: Mapping[str, str] = MappingProxyType({"Content-Type": JSON_TYPE})
BINARY_BODY: Mapping[str, str] = MappingProxyType({"Content-Type": OCTET_STREAM})
BYTES = (bytes, bytearray, memoryview)

Parse = Callable[[int, bytes], Any]
# The characters quote(key, safe=":@") leaves as they are.
# Made once: json.dumps with options other than its defaults builds an encoder per call.
_encoder = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), allow_nan=False)
_ORJSON_OPTIONS = orjson.OPT_PASSTHROUGH_SUBCLASS | orjson.OPT_PASSTHROUGH_DATACLASS | orjson.OPT_PASSTHROUGH_DATETIME
_LONG_NUMBER = re.compile(rb"[0-9]{19}").search
_PLAIN_SEGMENT = re.compile(r"[A-Za-z0-9_.~:@-]+").fullmatch


class Answer(NamedTuple):
    status: int
    body: bytes
    headers: Mapping[str, str]  # case-insensitive (requests' and httpx's own)


Outcome = Answer | Exception
# An Answer from a (status, body, headers) tuple without the Python-level
# __new__ a NamedTuple has: the lean transports make one per call.
new_answer: Callable[[tuple[int, bytes, Mapping[str, str]]], Answer] = partial(tuple.__new__, Answer)


class NotSent(Exception):
    """The request did not reach the server (connection refused, connect timeout)."""


class MaybeSent(Exception):
    """The request may have reached the server (read timeout, reset mid-answer)."""


class ConnectTimedOut(NotSent):
    """Connecting took longer than the timeout."""


class TimedOut(MaybeSent):
    """The answer took longer than the timeout."""


_TIMEOUTS = (ConnectTimedOut.__name__ + ":", TimedOut.__name__ + ":")


def unavailable(message: str, errors: dict[str, str]) -> Unavailable:
    """The ``Unavailable`` for these per-host errors (``failure()``'s reasons):
    a ``TimeoutUnavailable`` when every host timed out, a
    ``ConnectionUnavailable`` when none answered at all, else a plain one
    (some answered with a 5xx: they were reached)."""
    reasons = list(errors.values())
    if reasons and all(reason.startswith(_TIMEOUTS) for reason in reasons):
        return TimeoutUnavailable(message, errors)
    if reasons and not any(reason.startswith("HTTP ") for reason in reasons):
        return ConnectionUnavailable(message, errors)
    return Unavailable(message, errors)


def base_url(host: str) -> str:
    """``host:port``, a bare host (port 8080) or a full URL, as a base URL."""
    host = host.strip().rstrip("/")
    if "://" in host:
        scheme = host.partition("://")[0].lower()
        if scheme not in ("http", "https"):
            raise ValueError(f"{host!r}: CacheGrid is reached by http:// or https://, not {scheme}://")
        return host
    if (host.startswith("[") and "]:" not in host) or (":" not in host):
        return f"http://{host}:{DEFAULT_PORT}"
    return f"http://{host}"


def key_segment(key: str) -> str:
    """The key as it appears in the path (percent-encoded): what nginx hashes."""
    if not isinstance(key, str) or not key:
        raise ValueError("a key is a non-empty string")
    if _PLAIN_SEGMENT(key):  # PERF: most keys need no escape; quote() costs a microsecond
        return key
    return quote(key, safe=":@")


def item_path(key: str, suffix: str = "") -> str:
    if not suffix:
        try:
            return _ITEM_PATHS[key]
        except (KeyError, TypeError):
            pass
    path = f"/cache/{key_segment(key)}{suffix}"
    if not suffix:
        if len(_ITEM_PATHS) >= MAX_ITEM_PATHS:
            _ITEM_PATHS.clear()
        _ITEM_PATHS[key] = path
    return path


# PERF: a value's path by its key (get, set, delete of one key): a dict
# lookup instead of a check of the key's characters and a format. Emptied
# when full (a workload's hot keys come back at once).
_ITEM_PATHS: dict[str, str] = {}
MAX_ITEM_PATHS = 1024


def encode(value: Any) -> bytes:
    """A value as JSON; TypeError for what JSON cannot hold (ValueError for
    NaN and the infinities). orjson encodes (several times faster); the
    standard library's encoder takes over wherever orjson would answer
    otherwise: subclasses of str, int, float, dict and list, dict keys that
    are not strings, integers past 64 bits, dataclasses and dates (which
    the standard library refuses), and any ``null`` in orjson's output, which
    may be a NaN or an infinity orjson wrote as null. (A ``uuid.UUID`` or an
    ``enum.Enum`` member is stored as orjson writes it: its text or value.)"""
    try:
        data = orjson.dumps(value, option=_ORJSON_OPTIONS)
    except TypeError:  # orjson.JSONEncodeError is one
        return _encoder.encode(value).encode()
    return _encoder.encode(value).encode() if b"null" in data else data


def value_body(value: Any) -> tuple[bytes, str]:
    """The body and Content-Type that store ``value``: bytes as they are
    (a binary value), anything else as JSON (TypeError for what JSON cannot hold)."""
    if isinstance(value, BYTES):
        return bytes(value), OCTET_STREAM
    return encode(value), JSON_TYPE


def decode(body: bytes) -> Any:
    """A JSON document: by orjson (a few times faster than the standard
    library), but by the standard library where orjson would differ: a
    number of 19 digits or more (orjson reads big integers as floats), and
    any document orjson refuses (so the error is json's)."""
    if _LONG_NUMBER(body) is None:
        try:
            return orjson.loads(body)
        except orjson.JSONDecodeError:
            pass
    return json.loads(body)


def read_value(answer: Answer) -> Any:
    """The value a GET's 200 carries: ``bytes`` for a binary one, else the JSON decoded."""
    if answer.headers.get("Content-Type", "").startswith(OCTET_STREAM):
        return answer.body
    return decode(answer.body)


def error_for(status: int, body: bytes) -> RequestError:
    try:
        document = json.loads(body)
        code, message = document["error"], document["message"]
    except (ValueError, KeyError, TypeError):
        document, code, message = {}, "http_error", body[:200].decode("utf-8", "replace") or f"HTTP {status}"
    kind = NotFound if status == 404 else Unauthorized if status == 401 else RequestError
    return kind(status, code, message, document)


def _json(status: int, body: bytes) -> Any:
    if status >= 300:
        raise not_a_key(status, body) if status == 404 and no_route(body) else error_for(status, body)
    return decode(body)


def no_route(body: bytes) -> bool:
    """Whether a 404 says that nothing is served at the path: CacheGrid's own
    "not found" without a key (no route there), or a body that is not
    CacheGrid's error at all (another server, a proxy)."""
    try:
        document = json.loads(body)
    except ValueError:
        return True
    if not isinstance(document, dict) or "error" not in document or "message" not in document:
        return True
    return document["error"] == "not_found" and "key" not in document


def _field(name: str) -> Parse:
    return lambda status, body: _json(status, body)[name]


# Not frozen: a frozen dataclass's __init__ sets each field through
# object.__setattr__, which costs microseconds on every call of the hot path.
# Nothing changes a Call after it is made.
@dataclass(slots=True)
class Call:
    method: str
    path: str
    parse: Parse = _json
    params: Mapping[str, str] | None = None
    body: bytes | None = None
    headers: Mapping[str, str] | None = None
    idempotent: bool = True
    answers: frozenset[int] = frozenset()  # 5xx statuses that are answers, not failures
    # Instead of ``parse``, where the answer's headers matter too (a value's type).
    parse_answer: Callable[[Answer], Any] | None = None

    def read(self, answer: Answer) -> Any:
        """The operation's result from ``answer``."""
        if self.parse_answer is not None:
            return self.parse_answer(answer)
        return self.parse(answer.status, answer.body)


Step = tuple[float, list[tuple[str, Call]]]  # seconds to wait first, the requests to send at once
Plan = Generator[Step, list[Outcome], Any]
First = tuple[str, Call, Outcome]  # a plan's first request, already sent: its host, call and outcome


def retryable(status: int, call: Call) -> bool:
    return status >= 500 and status != 507 and status not in call.answers


def is_miss(body: bytes) -> bool:
    """Whether a 404's body is CacheGrid's "no such key", which always names
    the key (``{"error": "not_found", ..., "key": ...}``). Any other 404 (a
    wrong path in the server's URL, a proxy's page, another server) is no
    miss: reading it as one would make every read silently miss."""
    if b'"key"' not in body:
        return False
    try:
        document = json.loads(body)
    except ValueError:
        return False
    return isinstance(document, dict) and document.get("error") == "not_found" and "key" in document


def not_a_key(status: int, body: bytes) -> RequestError:
    """The error for a 404 that is no key's miss (see ``is_miss``)."""
    found = error_for(status, body)  # the body's code and message, whatever it was
    hint = (
        "the server answered 404 without naming a key, so this URL does not lead to CacheGrid's "
        "/cache/{key}: check the path of the server's URL (CacheGrid serves at its root)"
    )
    return RequestError(status, found.code, f"{found.message}: {hint}", found.body)  # not NotFound: no key is missing


def _exists_parse(status: int, body: bytes) -> bool:
    if status == 404:
        if is_miss(body):
            return False
        raise not_a_key(status, body)
    _json(status, body)
    return True


def failure(outcome: Outcome, call: Call) -> str | None:
    """Why ``outcome`` counts as the host failing (None: it is an answer)."""
    if isinstance(outcome, Exception):
        return f"{type(outcome).__name__}: {outcome}"
    if retryable(outcome.status, call):
        return f"HTTP {outcome.status}"
    return None


# -- the HTTP contract of each operation: one builder per endpoint -----------------


def get_call(key: str, default: Any = None) -> Call:
    if default is None:  # PERF: the common read, its Call made once per key (see _GET_CALLS)
        try:
            return _GET_CALLS[key]
        except (KeyError, TypeError):
            pass
        call = Call("GET", item_path(key), parse_answer=read_or)
        if len(_GET_CALLS) >= MAX_ITEM_PATHS:
            _GET_CALLS.clear()
        _GET_CALLS[key] = call
        return call
    return Call("GET", item_path(key), parse_answer=lambda answer: read_or(answer, default))


def read_or(answer: Answer, default: Any = None) -> Any:
    """A GET's result: the value its 200 carries, ``default`` for a miss."""
    status, body, headers = answer
    if status == 200:  # PERF: read_value inline, the hot path of a read
        # No "octet-stream" anywhere in a head still in text (wire.HeadText):
        # no Content-Type to look up, the value is JSON.
        low = getattr(headers, "low", None)
        if (low is None or _OCTET in low) and headers.get("Content-Type", "").startswith(OCTET_STREAM):
            return body
        return decode(body)
    if status == 404:
        if is_miss(body):
            return default
        raise not_a_key(404, body)
    if status >= 300:
        raise error_for(status, body)
    return read_value(answer)


# PERF: a plain read's Call by its key, as _ITEM_PATHS (a Call never changes:
# the same one serves every read of the key, in any thread).
_GET_CALLS: dict[str, Call] = {}
_OCTET = "octet-stream"


def batch_get_call(keys: list[str]) -> Call:
    def parse(status: int, body: bytes) -> dict[str, Any]:
        """The values found: JSON ones, and binary ones decoded from base64, in the order asked."""
        document = _json(status, body)
        binary = document.get("items_base64")
        if not binary:
            return document["items"]
        found = document["items"] | {key: base64.b64decode(text) for key, text in binary.items()}
        return {key: found[key] for key in keys if key in found}

    return Call("POST", "/cache/batch/get", parse, body=encode({"keys": keys}))


def batch_set_call(
    items: Mapping[str, Any], ttl: float | None, tags: list[str] | None = None, stale: float | None = None
) -> Call:
    binary = {key: base64.b64encode(value).decode("ascii") for key, value in items.items() if isinstance(value, BYTES)}
    document: dict[str, Any] = {"items": {key: value for key, value in items.items() if key not in binary}}
    if binary:
        document["items_base64"] = binary
    if ttl is not None:
        document["ttl"] = ttl
    if tags is not None:
        document["tags"] = tags
    if stale is not None:
        document["stale"] = stale
    return Call("POST", "/cache/batch/set", _field("stored"), body=encode(document))


def batch_delete_call(keys: list[str]) -> Call:
    return Call("POST", "/cache/batch/delete", _field("deleted"), body=encode({"keys": keys}))


def keys_call(pattern: str | None, limit: int, cursor: str | None) -> Call:
    params = {"limit": str(limit)}
    if pattern:
        params["pattern"] = pattern
    if cursor:
        params["cursor"] = cursor
    return Call("GET", "/admin/keys", params=params)


def tags_param(tags: Iterable[str]) -> str:
    """Tags as the comma-separated ``tags`` query parameter of a PUT."""
    tags = tag_list(tags)
    return ",".join(tags)


def tag_list(tags: Iterable[str]) -> list[str]:
    """``tags`` as a list of names (one string is one tag, not its letters)."""
    return [tags] if isinstance(tags, str) else list(tags)


def invalidate_call(tags: Iterable[str]) -> Call:
    return Call("POST", "/tags/invalidate", _field("in_use"), body=encode({"tags": tag_list(tags)}))


def delete_pattern_call(pattern: str) -> Call:
    return Call("POST", "/admin/delete-pattern", body=encode({"pattern": pattern}), idempotent=False)


def delete_job_call(job_id: str) -> Call:
    return Call("GET", f"/admin/delete-pattern/{quote(job_id, safe='')}")


def clear_call() -> Call:
    return Call("DELETE", "/cache", _field("cleared"), {"confirm": "true"})


def stats_call() -> Call:
    return Call("GET", "/stats")


# -- copying an entry from one node to another (read repair, counters) -------------

# What a GET answer carries of the entry besides its value, and where a PUT
# takes it: (response header, "query" or "header", the PUT's name for it).
# A field the entries gain later (tags, a stale window) is one more line here.
ENTRY_FIELDS: tuple[tuple[str, str, str], ...] = (
    ("X-Cache-TTL", "query", "ttl"),
    ("Content-Type", "header", "Content-Type"),
    ("X-Cache-Tags", "query", "tags"),
)


def copy_call(key: str, answer: Answer, overwrite: bool) -> Call | None:
    """A PUT that writes the entry of ``answer`` (a GET's 200) under ``key``;
    unless ``overwrite``, only where the key is absent (If-None-Match: *), so
    that it never replaces a value written meanwhile. None when the entry has
    no time left to copy."""
    params: dict[str, str] = {}
    headers: dict[str, str] = {"Content-Type": "application/json"}
    for header, where, name in ENTRY_FIELDS:
        value = answer.headers.get(header)
        if value is None:
            continue
        if header == "X-Cache-TTL" and float(value) <= 0:
            return None
        (params if where == "query" else headers)[name] = value
    if not overwrite:
        headers["If-None-Match"] = "*"
    return Call("PUT", item_path(key), _any_answer, params or None, answer.body, headers)


def _any_answer(status: int, body: bytes) -> int:
    return status
