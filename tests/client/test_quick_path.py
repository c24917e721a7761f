"""The sync client's quick path (sync.py: ``_quick_get``, ``_quick_put``)
against the scripted server of test_transport_sync.py: every outcome it
meets gives the same result, and the same requests on the wire, as the
usual path (``_one``, ``_direct``) it shortens; the tests run each scenario
both ways and compare."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from cachegrid.client import RequestError, SyncCacheGridClient, Unavailable
from cachegrid.client.api import NOT_SENT
from tests.client.test_transport_sync import Script, Scripted, scripted_servers


def answer(status: str, body: bytes, *extra: str) -> bytes:
    head = "".join(f"{line}\r\n" for line in extra)
    return (
        f"HTTP/1.1 {status}\r\n{head}Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n".encode()
        + body
    )


STORED = answer("201 Created", b'{"key":"k","ttl":null,"created":true}', "accept-encoding: gzip")
VALUE = answer("200 OK", b'{"name":"Alice"}')
MISS = answer("404 Not Found", b'{"error":"not_found","message":"no key k","key":"k"}')
ELSEWHERE = answer("404 Not Found", b'{"error":"route","message":"no such path"}')
FULL = answer("507 Insufficient Storage", b'{"error":"insufficient_storage","message":"the cache is full"}')
FAILED = answer("500 Internal Server Error", b'{"error":"internal","message":"boom"}')


@pytest.fixture(params=["quick", "usual"])
def way(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def run(way: str) -> Iterator[Callable[..., tuple[SyncCacheGridClient, Scripted]]]:
    """A client of a scripted server, its quick path on or (``usual``) off."""
    clients: list[SyncCacheGridClient] = []
    with scripted_servers() as serve:

        def start(script: Script, retries: int = 1) -> tuple[SyncCacheGridClient, Scripted]:
            server = serve(script)
            client = SyncCacheGridClient([server.url], timeout=2, max_retries=retries)
            if way == "usual":
                client._quick_get = lambda key, default: NOT_SENT  # type: ignore[method-assign]
                client._quick_put = lambda key, body, headers, params: None  # type: ignore[method-assign]
            clients.append(client)
            return client, server

        yield start
        for client in clients:
            client.close()


def outcome(call: Callable[[], Any]) -> Any:
    try:
        return ("result", call())
    except Exception as error:  # compared across the two ways: the type and the words
        return ("raised", type(error).__name__, str(error))


def methods(server: Scripted) -> list[tuple[str, str]]:
    return [(request.split(b" ")[0].decode(), request.split(b" ")[1].decode()) for request in server.requests]


def test_common_answers(run: Callable[..., tuple[SyncCacheGridClient, Scripted]]) -> None:
    client, server = run(lambda c, i, r: STORED if r.startswith(b"PUT") else VALUE if i == 2 else MISS)
    assert client.get("k", "gone") == "gone"  # a miss: the default; opens the session (the usual way)
    assert client.get("k", "gone") == {"name": "Alice"}  # the quick path from here on
    assert client.set("k", {"name": "Alice"}) is True
    assert client.set("k", b"\x00binary") is True
    assert client.set("k", 1, ttl=30, stale=5, tags=["a", "b c"]) is True
    assert server.connections == 1
    assert methods(server) == [("GET", "/cache/k"), ("GET", "/cache/k")] + [("PUT", "/cache/k")] * 2 + [
        ("PUT", "/cache/k?ttl=30&stale=5&tags=a%2Cb+c")
    ]
    assert b"application/octet-stream" in server.requests[-2]
    assert server.requests[-2].endswith(b"\r\n\r\n\x00binary")
    # What a write's answer says of the node (it takes gzip) was heard, either way.
    assert client.uploads.accepts(server.url)


@pytest.mark.parametrize(
    ("reply", "expected"),
    [(FULL, ("raised", "RequestError")), (ELSEWHERE, ("raised", "NotFound")), (MISS, ("raised", "NotFound"))],
)
def test_a_refused_write_raises_as_the_usual_path(
    run: Callable[..., tuple[SyncCacheGridClient, Scripted]], reply: bytes, expected: tuple[str, str]
) -> None:
    client, server = run(lambda c, i, r: STORED if i == 1 else reply)
    assert client.set("k", 1) is True
    got = outcome(lambda: client.set("k", 2))
    assert got[:2] == expected
    assert len(server.requests) == 2  # sent once


def test_errors_of_a_read(run: Callable[..., tuple[SyncCacheGridClient, Scripted]]) -> None:
    replies = {2: ELSEWHERE, 3: FAILED}
    client, server = run(lambda c, i, r: replies.get(i, VALUE))
    assert client.get("k") == {"name": "Alice"}
    with pytest.raises(RequestError, match="path"):  # a 404 that names no key is no miss
        client.get("k")
    assert client.get("k") == {"name": "Alice"}  # a 500, retried once (max_retries=1): the value
    assert len(server.requests) == 4


def test_a_connection_the_server_closed_is_sent_once_more_on_a_new_one(
    run: Callable[..., tuple[SyncCacheGridClient, Scripted]],
) -> None:
    # Each connection answers its first request and closes without answering the second.
    # No retry: the request is sent again because the connection was found closed, not retried.
    client, server = run(lambda c, i, r: (STORED if r.startswith(b"PUT") else VALUE) if i == 1 else None, 0)
    assert client.set("k", 1) is True
    for _ in range(2):
        assert client.get("k") == {"name": "Alice"}
        assert client.set("k", 2) is True
    assert server.connections == 5
    assert len(server.requests) == 9  # each reused connection's request went twice: it is idempotent


def test_an_answer_cut_short_is_an_outage_after_the_retries(
    run: Callable[..., tuple[SyncCacheGridClient, Scripted]],
) -> None:
    cut = STORED[: len(STORED) - 5]
    client, server = run(lambda c, i, r: STORED if c == 1 and i == 1 else (cut, "close"))
    assert client.set("k", 1) is True
    with pytest.raises(Unavailable):
        client.set("k", 2)
    with pytest.raises(Unavailable):
        client.get("k")
    assert len(server.requests) == 5  # 1 + (1 + 1 retry) + (1 + 1 retry)
