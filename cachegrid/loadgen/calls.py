"""The plain HTTP calls of a load test, outside the timed loop: the check
that the server is up and accepts the token, the untimed fill of the keyspace,
and the server's own engine load test (``POST /test/load``).

Each is one request over a fresh ``http.client`` connection; speed does not
matter here, a clear error does: ``LoadError`` with the HTTP status the server
refused or failed with, None when no server answered.
"""

from __future__ import annotations

import http.client
import json
from typing import Any

from .client import CONNECT_TIMEOUT
from .errors import LoadError
from .plan import Plan, Target
from .wire import value_json

FILL_CHUNK = 1000  # items per batch set while filling (the server's default max_batch_size)
FILL_BYTES = 4 << 20  # and about this many bytes per batch (the server's body limit is larger)
# The kinds of the server-side load test, as POST /test/load takes them.
OPERATION_TYPES = ("get", "set", "mixed")


def request(target: Target, method: str, path: str, body: Any = None, timeout: float = 30.0) -> tuple[int, Any]:
    """One request over a fresh connection: (status, decoded JSON body).
    LoadError when no server answers or it refuses or fails."""
    connection = http.client.HTTPConnection(target.host, target.port, timeout=timeout)
    headers = target.headers()
    payload = None
    if body is not None:
        payload = json.dumps(body, separators=(",", ":")).encode()
        headers["Content-Type"] = "application/json"
    try:
        connection.request(method, path, body=payload, headers=headers)
        response = connection.getresponse()
        status, data = response.status, response.read()
    except OSError as error:
        reason = error.strerror or str(error) or type(error).__name__
        raise LoadError(f"no CacheGrid server answered at {target.url}: {reason}") from None
    except http.client.HTTPException as error:
        raise LoadError(f"{target.url} did not answer in HTTP ({type(error).__name__})") from None
    finally:
        connection.close()
    try:
        document = json.loads(data) if data else None
    except ValueError:
        document = None
    if status >= 400:
        detail = document.get("message") or document.get("error") if isinstance(document, dict) else None
        if status == 401:
            detail = (
                "the server needs a bearer token (--token or CACHEGRID_AUTH_TOKEN)"
                if not target.token
                else "the server did not accept the token"
            )
        text = f"{method} {path}: HTTP {status}" + (f": {detail}" if detail else "")
        raise LoadError(text, status, document)
    return status, document


def check(target: Target) -> None:
    """LoadError unless the server answers and accepts the token. A 403 is
    an answer that knows the token: one without the metrics permission
    (docs/acl.md), which may still write its own prefix."""
    try:
        request(target, "GET", "/stats", timeout=CONNECT_TIMEOUT * 2)
    except LoadError as error:
        if error.status != 403:
            raise


def stats(target: Target) -> dict[str, Any] | None:
    """The server's ``/stats``, or None when the token may not read it (403:
    no metrics permission); any other failure is a LoadError."""
    try:
        return request(target, "GET", "/stats")[1] or {}
    except LoadError as error:
        if error.status == 403:
            return None
        raise


def fill(target: Target, plan: Plan) -> None:
    """Store every key of the keyspace (untimed), so that GETs hit."""
    value = json.loads(value_json(plan.value_size))
    chunk = max(1, min(FILL_CHUNK, FILL_BYTES // (plan.value_size + 32)))
    first = 0
    while first < plan.keyspace:
        last = min(plan.keyspace, first + chunk)
        items = {f"{plan.prefix}{key}": value for key in range(first, last)}
        try:
            request(target, "POST", "/cache/batch/set", {"items": items})
        except LoadError as error:
            # A server with a smaller max_batch_size: use smaller batches.
            if error.status == 413 and chunk > 1:
                chunk = max(1, chunk // 4)
                continue
            raise
        first = last


def server_side(target: Target, operations: int, kind: str) -> dict[str, Any]:
    """The server's own engine load test (``POST /test/load``): its answer."""
    path = f"/test/load?num_operations={operations}&operation_type={kind}"
    # It runs on the server in the request: allow it time for a large count.
    return request(target, "POST", path, timeout=600.0)[1]
