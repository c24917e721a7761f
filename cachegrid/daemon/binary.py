"""Binary values over HTTP: which request bodies are bytes, and who may read them.

A value is JSON (the default, as it always was) or binary: raw bytes, kept
as sent, with the entry's binary flag set (the engine keeps the flag with
the entry, in snapshots too, and charges the bytes to memory as any value).

- ``PUT /cache/{key}`` with ``Content-Type: application/octet-stream``
  stores the body as it is: any bytes, the empty value included.
- A body without a Content-Type, or with ``application/json`` (and the
  ``+json`` types), ``text/plain`` or ``application/x-www-form-urlencoded``
  (what ``curl -d`` sends without ``-H``) is JSON, parsed as before.
- Any other type is 415 ``unsupported_media_type``, naming the two kinds a
  value may be: the body is neither parsed nor stored.
- A GET or HEAD answers a binary value with ``Content-Type:
  application/octet-stream``, and every value's kind in ``X-Cache-Type``
  (``json`` or ``binary``). A request whose Accept header allows neither
  octet-stream nor a wildcard gets 406 ``not_acceptable`` for a binary value
  (a JSON value is sent as before, whatever the Accept header says).
"""

from __future__ import annotations

import falcon

from ..engine import Entry
from .errors import ApiError

OCTET_STREAM = "application/octet-stream"
TYPE_HEADER = "X-Cache-Type"
JSON_TYPE, BINARY_TYPE = "json", "binary"
# Read as JSON, as every body was before binary values: curl -d sends the form
# type, a browser's fetch() of a string text/plain.
JSON_MEDIA_TYPES = frozenset({"application/json", "text/json", "text/plain", "application/x-www-form-urlencoded"})


def media_type(header: str | None) -> str:
    """The media type of a Content-Type header, lower-case, without parameters."""
    return (header or "").split(";", 1)[0].strip().lower()


def is_binary_body(req: falcon.Request) -> bool:
    """Whether the body of this PUT is a binary value; 415 when its
    Content-Type is neither binary nor one read as JSON."""
    header = req.env.get("CONTENT_TYPE")
    if not header or header.startswith("application/json"):
        return False  # the common case, without parsing the header
    kind = media_type(header)
    if kind == OCTET_STREAM:
        return True
    if not kind or kind in JSON_MEDIA_TYPES or kind.endswith("+json"):
        return False
    raise ApiError(
        415,
        "unsupported_media_type",
        f"a value is JSON ({falcon.MEDIA_JSON}) or raw bytes ({OCTET_STREAM}), not {kind}",
        accepted=[falcon.MEDIA_JSON, OCTET_STREAM],
    )


def check_acceptable(req: falcon.Request, key: str, entry: Entry) -> None:
    """406 when the request does not accept the bytes of the binary ``entry``."""
    if "HTTP_ACCEPT" in req.env and not req.client_accepts(OCTET_STREAM):
        size = len(entry.value) if entry.original_size is None else entry.original_size
        raise ApiError(
            406,
            "not_acceptable",
            f"the value of {key!r} is binary ({size} bytes, {OCTET_STREAM}) and the "
            f"request accepts only {req.accept}; send Accept: {OCTET_STREAM} (or */*) to read it",
            key=key,
            type=BINARY_TYPE,
            size=size,
        )
