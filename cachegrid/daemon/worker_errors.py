"""The answers a worker writes itself, before or instead of the application.

A malformed request (its framing, its header syntax, its HTTP version), a
head or body that does not arrive in time, a body over the limit: the worker
answers these without the application, and a client of CacheGrid reads every
error the same way, as ``{"error": <name>, "message": <what went wrong>}``.
So both workers write the answers of this table, on an ``HTTP/1.1`` status
line, with their length, closing the connection, and without a version
banner: the meinheld build in C (patch 0014 of ``cachegrid/meinheld_build``
holds the same table, and a test holds the two together), the gthread worker
from here, for its own refusals and for those of gunicorn's parser.
"""

from __future__ import annotations

import json

# status -> (reason phrase, error name, message)
ANSWERS: dict[int, tuple[str, str, str]] = {
    400: (
        "Bad Request",
        "bad_request",
        "the request is malformed (its request line, a header or the body's framing)",
    ),
    408: ("Request Timeout", "request_timeout", "the request did not arrive in time"),
    411: ("Length Required", "length_required", "the request body needs a Content-Length or chunked framing"),
    413: ("Content Too Large", "body_too_large", "the request body is over the server's limit"),
    414: ("URI Too Long", "uri_too_long", "the request target is too long"),
    417: ("Expectation Failed", "expectation_failed", "only Expect: 100-continue is supported"),
    431: (
        "Request Header Fields Too Large",
        "header_fields_too_large",
        "the request's header fields are too large or too many",
    ),
    501: ("Not Implemented", "unsupported_transfer_coding", "only Transfer-Encoding: chunked is served"),
    503: ("Service Unavailable", "service_unavailable", "the server cannot take the request now"),
    505: ("HTTP Version Not Supported", "http_version_not_supported", "only HTTP/1.0 and HTTP/1.1 are served"),
    500: ("Internal Server Error", "internal_error", "the server failed to read the request"),
}


def parts(status: int) -> tuple[str, list[tuple[str, str]], bytes]:
    """The answer for ``status`` (500's for a status not in the table) as a
    WSGI application gives it: status line, headers, body."""
    if status not in ANSWERS:
        status = 500
    reason, error, message = ANSWERS[status]
    body = json.dumps({"error": error, "message": message}).encode()
    headers = [("Content-Type", "application/json"), ("Connection", "close"), ("Content-Length", str(len(body)))]
    return f"{status} {reason}", headers, body


def answer(status: int) -> bytes:
    """The complete answer for ``status``, as the worker writes it on the socket."""
    line, headers, body = parts(status)
    head = "".join(f"{name}: {value}\r\n" for name, value in headers)
    return f"HTTP/1.1 {line}\r\n{head}\r\n".encode() + body
