"""The async client's keep-alive transport (transport_aio.py) against the scripted server
of test_transport_sync.py: reuse, a server that closes, the resend rule, timeouts."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator

import pytest

from cachegrid.client import CacheGridClient
from cachegrid.client.protocol import MaybeSent, NotSent, TimedOut
from cachegrid.client.transport_aio import AioLane, AioTransport
from cachegrid.testing import free_port
from tests.client.test_transport_sync import GET, OK, POST, Script, Scripted, scripted_servers


@pytest.fixture
def serve() -> Iterator[Callable[[Script], Scripted]]:
    with scripted_servers() as start:
        yield start


def lane(server: Scripted, timeout: float = 5.0) -> AioLane:
    return AioLane(server.url, {"User-Agent": "t"}, timeout)


def test_one_connection_carries_every_request(serve: Callable[[Script], Scripted]) -> None:
    server = serve(lambda c, i, r: OK)

    async def run() -> None:
        transport = lane(server)
        for _ in range(10):
            answer = await transport.send(GET)
            assert (answer.status, answer.body, answer.headers["Content-Type"]) == (200, b"{}", "application/json")
        transport.close()

    asyncio.run(run())
    assert server.connections == 1


def test_a_closed_idle_connection_is_replaced_and_a_racing_close_resends_only_the_idempotent(
    serve: Callable[[Script], Scripted],
) -> None:
    server = serve(lambda c, i, r: OK if i == 1 else None)  # reads the 2nd request, closes without answer

    async def run() -> None:
        transport = lane(server)
        assert (await transport.send(GET)).status == 200
        assert (await transport.send(GET)).status == 200  # resent on a new connection
        assert server.connections == 2
        stream = transport._idle[-1]
        transport._take = lambda check: stream  # type: ignore[method-assign]  # skip the check: the race
        with pytest.raises(MaybeSent):
            await transport.send(POST)
        transport.close()

    asyncio.run(run())
    assert sum(request.startswith(b"POST") for request in server.requests) == 1


def test_a_silent_server_times_out(serve: Callable[[Script], Scripted]) -> None:
    server = serve(lambda c, i, r: "hang")
    started = time.monotonic()
    with pytest.raises(TimedOut):
        asyncio.run(lane(server, timeout=0.3).send(GET))
    assert 0.25 < time.monotonic() - started < 3


def test_an_answer_cut_short_is_maybe_sent_and_nothing_listening_not_sent(serve: Callable[[Script], Scripted]) -> None:
    server = serve(lambda c, i, r: b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\nConnection: close\r\n\r\nabc")
    with pytest.raises(MaybeSent):
        asyncio.run(lane(server).send(GET))
    with pytest.raises(NotSent):
        asyncio.run(AioLane(f"http://127.0.0.1:{free_port()}", {}, 2.0).send(GET))


def test_https_hosts_go_through_httpx() -> None:
    async def run() -> None:
        transport = AioTransport({}, 1.0)
        with pytest.raises(NotSent):
            await transport.send(f"https://127.0.0.1:{free_port()}", GET)
        assert list(transport._lanes.values()) == [None]
        await transport.aclose()

    asyncio.run(run())


def test_the_async_client_sends_its_token_on_one_connection(serve: Callable[[Script], Scripted]) -> None:
    server = serve(lambda c, i, r: OK)

    async def run() -> None:
        client = CacheGridClient([server.url], auth_token="sekrit", max_retries=0)
        assert await client.get("a") == {} and await client.get("b") == {}
        await client.close()

    asyncio.run(run())
    assert server.connections == 1
    assert all(b"Authorization: Bearer sekrit\r\n" in request for request in server.requests)
