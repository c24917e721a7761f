"""One load-generator connection (``Client``) and its handlers, against a
listening socket of the test that plays the server byte by byte: pipelined
and split responses, errors by kind, a server that closes, a request larger
than the socket takes at once. Every wait is bounded."""

from __future__ import annotations

import random
import select
import socket
import time
from collections.abc import Callable, Iterator

import pytest

from cachegrid.loadgen.client import READ, READ_WRITE, Client, Load
from cachegrid.loadgen.plan import Plan, Target
from cachegrid.loadgen.wire import Requests, request_mix

WAIT = 5.0
OK = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}"
MISS = b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n"


@pytest.fixture
def listener() -> Iterator[socket.socket]:
    server = socket.create_server(("127.0.0.1", 0))
    server.settimeout(WAIT)
    try:
        yield server
    finally:
        server.close()


def new_load(listener: socket.socket, budget: int | None = None, **plan: object) -> Load:
    target = Target("127.0.0.1", listener.getsockname()[1])
    settings = Plan(**{"keyspace": 10, "get_share": 1.0, "pipeline": 1, **plan})  # type: ignore[arg-type]
    return Load(target, settings, budget, request_mix(Requests(target, settings), settings, random.Random(3)))


def accept(listener: socket.socket) -> socket.socket:
    peer, _ = listener.accept()
    peer.settimeout(WAIT)
    return peer


def read_requests(peer: socket.socket, count: int) -> list[bytes]:
    """``count`` bodiless requests (GETs), as the server would read them."""
    data = b""
    while data.count(b"\r\n\r\n") < count:
        data += peer.recv(65536)
    return [part + b"\r\n\r\n" for part in data.split(b"\r\n\r\n")[:count]]


def in_flight(
    listener: socket.socket, requests: int, budget: int | None = None, **plan: object
) -> tuple[Load, Client, socket.socket]:
    """A load with one connection that has sent ``requests`` GETs, which the
    server side (the third item) has read."""
    load = new_load(listener, budget, **plan)
    client = load.open()
    peer = accept(listener)
    assert client.issue(requests, time.perf_counter()) == requests
    assert all(request.startswith(b"GET /cache/key:") for request in read_requests(peer, requests))
    return load, client, peer


def drive(client: Client, until: Callable[[], bool]) -> None:
    """Call the read handler whenever the client's socket is readable, until ``until()``."""
    deadline = time.monotonic() + WAIT
    while not until():
        assert time.monotonic() < deadline, "no progress"
        if not client.dead and select.select([client.sock], [], [], 0.05)[0]:
            client.read_handler(time.perf_counter())


def test_each_answer_is_recorded_and_replaced_by_a_new_request(listener: socket.socket) -> None:
    load, client, peer = in_flight(listener, 3, budget=5, pipeline=3)
    assert (load.in_flight, load.remaining) == (3, 2)

    peer.sendall(OK + MISS[:20])  # one whole response and the start of the next
    drive(client, lambda: load.done == 1)
    assert (load.gets, load.in_flight, load.remaining) == (1, 3, 1)  # one answered, one more sent
    peer.sendall(MISS[20:] + OK)
    drive(client, lambda: load.done == 3)
    # Two answered, but the budget had one request left.
    assert (load.gets, load.in_flight, load.remaining) == (2, 2, 0)
    assert load.errors == {"HTTP 404": 1}
    assert sum(load.histogram.values()) == 3 and load.max_us >= max(load.histogram)
    assert len(read_requests(peer, 2)) == 2
    peer.close()


def test_a_broken_connection_counts_its_requests_and_is_replaced(listener: socket.socket) -> None:
    load, client, first = in_flight(listener, 2, pipeline=2)
    first.close()  # the server goes away with two requests unanswered
    drive(client, lambda: client.dead)
    assert load.errors == {"connection closed": 2} and load.done == 2
    assert len(load.clients) == 2 and load.alive == 1
    second = accept(listener)
    assert len(read_requests(second, 2)) == 2  # the new connection has the pipeline in flight
    assert load.in_flight == 2
    second.close()


def test_connection_close_is_honoured_once_everything_is_answered(listener: socket.socket) -> None:
    load, client, first = in_flight(listener, 1)
    first.sendall(b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\n{}")
    drive(client, lambda: client.dead)
    assert load.done == 1 and load.gets == 1 and not load.errors
    second = accept(listener)
    assert len(read_requests(second, 1)) == 1
    first.close()
    second.close()


def test_a_response_that_is_not_http_gives_up_the_connection(listener: socket.socket) -> None:
    load, client, peer = in_flight(listener, 1, budget=1)
    peer.sendall(b"SSH-2.0-something\r\n\r\n")
    drive(client, lambda: client.dead)
    assert load.errors == {"bad response": 1} and load.done == 1
    assert len(load.clients) == 1  # the budget is spent: nothing to reconnect for
    peer.close()


def test_what_the_socket_does_not_take_is_sent_when_it_is_writable(listener: socket.socket) -> None:
    # One SET of 8 MB: more than a socket buffer takes at once.
    load = new_load(listener, budget=1, get_share=0.0, keyspace=1, value_size=8_000_000)
    client = load.open()
    peer = accept(listener)
    client.issue(1, time.perf_counter())
    assert client.pending
    assert load.selector.get_key(client.sock).events == READ_WRITE
    received = b""
    deadline = time.monotonic() + WAIT
    while client.pending:
        assert time.monotonic() < deadline, "no progress"
        received += peer.recv(1 << 20)
        if select.select([], [client.sock], [], 0)[1]:
            client.write_handler()
    assert load.selector.get_key(client.sock).events == READ
    head, _, body = received.partition(b"\r\n\r\n")
    length = int(head.split(b"Content-Length: ")[1].split(b"\r\n")[0])
    while len(body) < length:
        body += peer.recv(1 << 20)
    assert head.startswith(b"PUT /cache/key:0 ") and length == 8_000_002
    assert body == b'"' + b"x" * 8_000_000 + b'"'
    peer.close()
