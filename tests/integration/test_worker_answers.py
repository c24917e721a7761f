"""The answers a worker writes itself, under both workers: a body over the
limit gets CacheGrid's JSON 413 and the client can read it (the connection
lingers until the client has sent its body), and a body that stops arriving
gets a JSON 408 after ``body_timeout`` seconds (by default
``header_timeout``'s). Each case talks to 127.0.0.1 only and every wait is
bounded."""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Callable

import pytest

from cachegrid.testing import ServerProcess as Server
from tests.fixtures import worker_kinds

from .test_serving import MiB, read_response


@pytest.mark.parametrize("kind", worker_kinds())
def test_a_20_mb_body_gets_a_json_413_that_the_client_reads(kind: str, start_server: Callable[..., Server]) -> None:
    server = start_server("--worker", kind)  # the default limit: 16 MiB
    body = b'"' + b"y" * (20 * MiB) + b'"'
    for _ in range(3):  # a reset that destroys the answer is a race: try it more than once
        status, _, answer = server.request("PUT", "/cache/toobig", raw=body, timeout=30)
        assert status == 413 and json.loads(answer)["error"] == "body_too_large", answer[:200]
    assert server.request("GET", "/cache/toobig")[0] == 404
    assert server.request("GET", "/health")[0] == 200


@pytest.mark.parametrize("kind", worker_kinds())
@pytest.mark.parametrize(
    "setting", [{"CACHEGRID_BODY_TIMEOUT": "1"}, {"CACHEGRID_HEADER_TIMEOUT": "1"}], ids=["body", "default"]
)
def test_a_body_that_stops_arriving_gets_a_json_408(
    kind: str, setting: dict[str, str], start_server: Callable[..., Server]
) -> None:
    server = start_server("--worker", kind, env=setting)
    with socket.create_connection((server.host, server.port), timeout=15) as sock:
        sock.sendall(
            b"PUT /cache/slow HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 10\r\n\r\n"
        )
        sock.sendall(b'"ab')  # and then nothing
        started = time.monotonic()
        status, headers, answer = read_response(sock, bytearray())
        waited = time.monotonic() - started
    assert status == 408 and json.loads(answer)["error"] == "request_timeout", answer
    assert headers.get("connection") == "close"
    assert 0.5 < waited < 10, waited  # the setting's second, not meinheld's or gunicorn's own timeouts
    assert server.request("GET", "/cache/slow")[0] == 404
    assert server.request("GET", "/health")[0] == 200
