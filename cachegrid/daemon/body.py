"""Reading request bodies and query parameters, and the JSON the cache stores.

Bodies: a request with a Content-Length over ``max_body_size`` is refused
before anything is read. A chunked body (no Content-Length) is read from
``req.stream`` up to the limit plus one byte: falcon's ``bounded_stream``
would read nothing there under meinheld, which de-chunks the body and marks
it ``wsgi.input_terminated`` without a length. A body the server cannot
deliver (a malformed chunk, a body cut short) is a 400, whatever the server.

Values: any JSON document is accepted and stored as its compact encoding
(no insignificant whitespace, UTF-8, object keys in the order sent), so that
a GET returns exactly the stored bytes without decoding them again. orjson
does the parsing and encoding (several times faster than the standard
library on this hot path). The standard library takes over where orjson
would be wrong or terse: a number of 19 digits or more (orjson reads big
integers as floats, silently), a byte order mark, and any document orjson
refuses, so that the error message says precisely what is wrong. Either way
NaN, Infinity (also as an overflowing 1e400) and lone surrogates are refused.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

import falcon
import orjson

from .errors import ApiError

_INTEGER = re.compile(r"[+-]?[0-9]{1,20}")
_LONG_NUMBER = re.compile(rb"[0-9]{19}")
_encoder = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), allow_nan=False)


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def _finite_float(text: str) -> float:
    number = float(text)
    if not math.isfinite(number):
        raise ValueError(f"the number {text} is too large for a double")
    return number


_decoder = json.JSONDecoder(parse_constant=_refuse_constant, parse_float=_finite_float)


def read_body(req: falcon.Request, limit: int, allow_empty: bool = False) -> bytes:
    """The whole request body; 413 past ``limit`` bytes, 400 if empty
    (unless ``allow_empty``: an empty binary value is a value)."""
    length = req.content_length
    if length is not None:
        if length > limit:
            raise ApiError(
                413, "body_too_large", f"the request body is {length} bytes; the limit is {limit}", limit=limit
            )
        body = _read(req, length)  # exactly the announced length: no wrapper needed
    else:
        body = _read(req, limit + 1)
        if len(body) > limit:
            raise ApiError(413, "body_too_large", f"the request body is over the limit of {limit} bytes", limit=limit)
    if not body and not allow_empty:
        raise ApiError(400, "empty_body", "the request needs a JSON body")
    return body


def _read(req: falcon.Request, size: int) -> bytes:
    """Up to ``size`` bytes of the body; 400 when the server cannot deliver
    them: a malformed chunk, or a body cut short. Each WSGI server raises
    its own exception type for that (gunicorn's InvalidChunkSize,
    ChunkMissingTerminator, NoMoreData), so any failure of the read itself
    is the request's framing, never a server error."""
    try:
        return req.stream.read(size)
    except MemoryError:
        raise
    except TimeoutError:  # the gthread worker's body_timeout (meinheld answers 408 itself)
        raise ApiError(
            408, "request_timeout", "the request body did not arrive in time", headers={"Connection": "close"}
        ) from None
    except Exception as error:
        # The framing is broken: where the next request would start is unknown.
        raise ApiError(
            400,
            "invalid_body",
            f"the request body is not validly framed ({error})",
            headers={"Connection": "close"},
        ) from None


def parse_json(body: bytes) -> Any:
    """The JSON document in ``body``; 400 with the reason otherwise."""
    if not _LONG_NUMBER.search(body):
        try:
            return orjson.loads(body)
        except orjson.JSONDecodeError:
            pass  # the standard library's parse below says what is wrong
    return _parse_exactly(body)


def _parse_exactly(body: bytes) -> Any:
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as error:
        raise ApiError(
            400, "invalid_encoding", f"the body is not UTF-8: {error.reason} at byte {error.start}"
        ) from None
    try:
        value = _decoder.decode(text.removeprefix("\ufeff"))
        _encoder.encode(value).encode("utf-8")  # refuses lone surrogates now, not when storing
        return value
    except (ValueError, UnicodeEncodeError) as error:  # JSONDecodeError is a ValueError
        raise ApiError(400, "invalid_json", f"the body is not valid JSON: {error}") from None
    except RecursionError:
        raise ApiError(400, "invalid_json", "the body is nested too deeply") from None


def encode(value: Any) -> bytes:
    """The compact JSON encoding of a parsed document or of an answer of ours.

    What the cache stores too: orjson's bytes keep a 4 KiB buffer behind
    them, but the engine stores each value inside a blob of its own (value
    and trailer joined), so nothing of that buffer outlives the request."""
    try:
        return orjson.dumps(value)
    except orjson.JSONEncodeError:  # an integer beyond 64 bits
        return _encoder.encode(value).encode("utf-8")


def encode_exact(value: Any) -> bytes:
    """``encode`` in a bytes object of its own length, for values held many
    at a time (a batch set's): orjson's result keeps the 4 KiB buffer it was
    written into, which a batch of 1,000 values turns into 4 MiB held at once
    (and then kept by the allocator: about 40 bytes of RSS per entry for
    100,000 entries stored that way). The copy frees each buffer at once."""
    return bytes(memoryview(encode(value)))


def json_body(req: falcon.Request, limit: int) -> Any:
    return parse_json(read_body(req, limit))


def ttl_param(req: falcon.Request, name: str = "ttl", required: bool = False) -> float | None:
    """A TTL in seconds from the query string (see ``ttl_number``)."""
    text = req.get_param(name) if req.query_string else None
    if text is None:
        if required:
            raise ApiError(400, "missing_parameter", f"the query parameter {name} is required")
        return None
    return ttl_number(text, name, text=True)


def ttl_number(raw: Any, name: str = "ttl", text: bool = False) -> float:
    """``raw`` as a number of seconds; 400 if it is not a number. Query text
    (``text=True``) is parsed; in a JSON body only a JSON number is one (the
    OpenAPI document says so, and "6" is a string). Whether the number is a
    usable TTL (finite, > 0, at most MAX_TTL) is the engine's to say: it
    raises InvalidTTL."""
    if isinstance(raw, str) and text:
        try:
            number = float(raw)
        except ValueError:
            raise ApiError(400, "invalid_ttl", f"{name} must be a number of seconds, not {raw!r}") from None
    elif isinstance(raw, (int, float)) and not isinstance(raw, bool):
        try:
            number = float(raw)
        except OverflowError:  # an integer beyond any double: as far out of range as infinity
            number = math.inf
    else:
        raise ApiError(400, "invalid_ttl", f"{name} must be a number of seconds, not {raw!r}")
    return int(number) if number.is_integer() else number  # echoed back as 3600, not 3600.0


def int_param(
    req: falcon.Request, name: str, default: int, minimum: int | None = None, maximum: int | None = None
) -> int:
    """An integer query parameter within bounds; 400 otherwise."""
    text = req.get_param(name)
    if text is None:
        return default
    if not _INTEGER.fullmatch(text):
        raise ApiError(400, "invalid_parameter", f"{name} must be an integer, not {text!r}")
    value = int(text)
    if minimum is not None and value < minimum:
        raise ApiError(400, "invalid_parameter", f"{name} must be at least {minimum}, not {value}")
    if maximum is not None and value > maximum:
        raise ApiError(400, "invalid_parameter", f"{name} must be at most {maximum}, not {value}", limit=maximum)
    return value


def bool_param(req: falcon.Request, name: str) -> bool:
    """A ``true``/``false`` query parameter (also ``1``/``0``), false when
    absent; 400 otherwise."""
    text = req.get_param(name)
    if text is None:
        return False
    if text in ("true", "1"):
        return True
    if text in ("false", "0"):
        return False
    raise ApiError(400, "invalid_parameter", f"{name} must be true or false, not {text!r}")
