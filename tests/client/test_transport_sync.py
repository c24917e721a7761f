"""The sync client's keep-alive transport (transport_sync.py) against a small scripted
server on 127.0.0.1: framing on a real socket, reuse, a server that closes, timeouts."""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager

import pytest

from cachegrid.client import SyncCacheGridClient
from cachegrid.client.protocol import Call, ConnectTimedOut, MaybeSent, NotSent, TimedOut
from cachegrid.client.transport_sync import Lane, Transport
from cachegrid.testing import free_port

# (connection number, request number on it, the request's bytes) -> bytes to send back;
# None closes the connection without an answer; "hang" sends nothing and keeps it open;
# (bytes, "close") sends the bytes and closes the connection at once.
Script = Callable[[int, int, bytes], "bytes | str | tuple[bytes, str] | None"]
OK = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}"


class Scripted:
    """A bounded threaded server answering by ``script``; it counts connections."""

    def __init__(self, script: Script) -> None:
        self.script = script
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.listener.settimeout(0.2)
        self.url = f"http://127.0.0.1:{self.listener.getsockname()[1]}"
        self.connections = 0
        self.requests: list[bytes] = []
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def _accept(self) -> None:
        while not self.stopping.is_set():
            try:
                conn, _ = self.listener.accept()
            except TimeoutError:
                continue
            self.connections += 1
            threading.Thread(target=self._serve, args=(conn, self.connections), daemon=True).start()

    def _serve(self, conn: socket.socket, number: int) -> None:
        conn.settimeout(5)
        buffered = b""
        with conn:
            for index in range(1, 1000):
                try:
                    while b"\r\n\r\n" not in buffered:
                        data = conn.recv(65536)
                        if not data:
                            return
                        buffered += data
                    head, _, buffered = buffered.partition(b"\r\n\r\n")
                    length = next(
                        (
                            int(line.split(b":")[1])
                            for line in head.split(b"\r\n")
                            if line.lower().startswith(b"content-length:")
                        ),
                        0,
                    )
                    while len(buffered) < length:
                        buffered += conn.recv(65536)
                    request, buffered = head + b"\r\n\r\n" + buffered[:length], buffered[length:]
                    self.requests.append(request)
                    answer = self.script(number, index, request)
                    if answer is None:
                        return
                    if answer == "hang":
                        self.stopping.wait(5)
                        return
                    if isinstance(answer, tuple):
                        conn.sendall(answer[0])
                        return
                    assert isinstance(answer, bytes)
                    conn.sendall(answer)
                    if b"connection: close" in answer.lower():
                        return
                except OSError:
                    return

    def close(self) -> None:
        self.stopping.set()
        self.thread.join(5)
        self.listener.close()


@contextmanager
def scripted_servers() -> Iterator[Callable[[Script], Scripted]]:
    """A function that starts a scripted server, each closed at the end of the block."""
    servers: list[Scripted] = []

    def start(script: Script) -> Scripted:
        servers.append(Scripted(script))
        return servers[-1]

    try:
        yield start
    finally:
        for server in servers:
            server.close()


@pytest.fixture
def serve() -> Iterator[Callable[[Script], Scripted]]:
    with scripted_servers() as start:
        yield start


def lane(server: Scripted, timeout: float = 5.0) -> Lane:
    return Lane(server.url, {"User-Agent": "t"}, timeout)


GET = Call("GET", "/cache/k")
POST = Call("POST", "/admin/delete-pattern", body=b"{}", idempotent=False)


def test_one_connection_carries_every_request(serve: Callable[[Script], Scripted]) -> None:
    server = serve(lambda c, i, r: OK)
    transport = lane(server)
    for _ in range(20):
        answer = transport.send(GET)
        assert (answer.status, answer.body, answer.headers.get("content-type")) == (200, b"{}", "application/json")
    assert server.connections == 1
    assert server.requests[0].startswith(b"GET /cache/k HTTP/1.1\r\nHost: 127.0.0.1:")


@pytest.mark.parametrize(
    "answer, body",
    [
        (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n", b"{}"),
        (b"HTTP/1.1 204 No Content\r\n\r\n", b""),
        (b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", b""),
        (b"HTTP/1.1 200 OK\r\nContent-Length: 200000\r\n\r\n" + b"x" * 200_000, b"x" * 200_000),
    ],
)
def test_framings_on_a_real_socket_keep_the_connection(
    serve: Callable[[Script], Scripted], answer: bytes, body: bytes
) -> None:
    server = serve(lambda c, i, r: answer)
    transport = lane(server)
    assert transport.send(GET).body == body
    assert transport.send(GET).body == body
    assert server.connections == 1


def test_a_head_answer_has_no_body(serve: Callable[[Script], Scripted]) -> None:
    server = serve(lambda c, i, r: b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n")
    transport = lane(server)
    for _ in range(3):
        assert transport.send(Call("HEAD", "/cache/k")).body == b""
    assert server.connections == 1


def test_connection_close_and_a_body_to_the_end_open_a_new_connection(serve: Callable[[Script], Scripted]) -> None:
    server = serve(lambda c, i, r: b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nall of it")
    transport = lane(server)
    assert transport.send(GET).body == b"all of it"
    assert transport.send(GET).body == b"all of it"
    assert server.connections == 2


def test_a_server_that_closed_an_idle_connection_is_not_a_failure(serve: Callable[[Script], Scripted]) -> None:
    # Each connection answers once and then closes (as a keep-alive timeout does): the
    # next request, even one that is not idempotent, goes on a new connection.
    server = serve(lambda c, i, r: (OK, "close"))
    transport = lane(server)
    for call in (GET, POST, GET):
        assert transport.send(call).status == 200
        time.sleep(0.05)  # the close reaches the client before the next request
    assert server.connections == 3


def test_a_close_racing_the_request_resends_only_what_is_idempotent(serve: Callable[[Script], Scripted]) -> None:
    # The server reads the second request of a connection and closes without an answer.
    server = serve(lambda c, i, r: OK if i == 1 else None)
    transport = lane(server)
    assert transport.send(GET).status == 200
    sock = transport._idle[-1]
    transport._take = lambda check: sock  # type: ignore[method-assign]  # skip the poll: the race
    assert transport.send(GET).status == 200  # sent again on a new connection
    assert server.connections == 2
    assert transport.send(GET).status == 200
    sock = transport._idle[-1]
    transport._take = lambda check: sock  # type: ignore[method-assign]
    with pytest.raises(MaybeSent):
        transport.send(POST)  # the server may have applied it: not sent twice
    assert sum(request.startswith(b"POST") for request in server.requests) == 1


def test_an_answer_cut_short_is_maybe_sent(serve: Callable[[Script], Scripted]) -> None:
    server = serve(lambda c, i, r: b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\nConnection: close\r\n\r\nabc")
    with pytest.raises(MaybeSent):
        lane(server).send(GET)


def test_no_answer_on_a_new_connection_is_maybe_sent(serve: Callable[[Script], Scripted]) -> None:
    server = serve(lambda c, i, r: None)
    with pytest.raises(MaybeSent):
        lane(server).send(GET)
    assert server.connections == 1  # a fresh connection is not tried twice


def test_a_silent_server_times_out_within_the_timeout(serve: Callable[[Script], Scripted]) -> None:
    server = serve(lambda c, i, r: "hang")
    started = time.monotonic()
    with pytest.raises(TimedOut):
        lane(server, timeout=0.3).send(GET)
    assert 0.25 < time.monotonic() - started < 3


def test_a_half_answer_then_silence_times_out(serve: Callable[[Script], Scripted]) -> None:
    def script(c: int, i: int, r: bytes) -> bytes:
        return b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc"

    server = serve(script)
    transport = lane(server, timeout=0.3)
    with pytest.raises(TimedOut):
        transport.send(GET)
    assert transport._idle == []  # the half-read connection is dropped
    with pytest.raises(TimedOut):
        transport.send(GET)
    assert server.connections == 2


def test_nothing_listening_is_not_sent() -> None:
    with pytest.raises(NotSent) as caught:
        Lane(f"http://127.0.0.1:{free_port()}", {}, 2.0).send(GET)
    assert not isinstance(caught.value, ConnectTimedOut)


def test_threads_each_use_their_own_connection(serve: Callable[[Script], Scripted]) -> None:
    def script(c: int, i: int, r: bytes) -> bytes:
        path = r.split(b" ")[1]
        return b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(path), path)

    server = serve(script)
    transport = lane(server)

    def run(n: int) -> None:
        for i in range(50):
            assert transport.send(Call("GET", f"/t{n}/{i}")).body == f"/t{n}/{i}".encode()

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(run, range(8)))
    assert server.connections <= 8


def test_https_hosts_go_through_requests() -> None:
    transport = Transport({}, 1.0)
    with pytest.raises(NotSent):
        transport.send(f"https://127.0.0.1:{free_port()}", GET)
    assert list(transport.lanes.values()) == [None]  # no lane: the requests session
    transport.close()


def test_the_client_sends_its_token_and_reconnects_after_close(serve: Callable[[Script], Scripted]) -> None:
    server = serve(lambda c, i, r: OK)
    client = SyncCacheGridClient([server.url], auth_token="sekrit", max_retries=0)
    assert client.get("k") == {}
    client.close()
    assert client.get("k") == {}
    assert server.connections == 2
    assert all(b"Authorization: Bearer sekrit\r\n" in request for request in server.requests)


def test_a_forked_child_opens_its_own_connection(serve: Callable[[Script], Scripted]) -> None:
    server = serve(lambda c, i, r: OK)
    transport = lane(server)
    assert transport.send(GET).status == 200
    pid = os.fork()
    if pid == 0:  # the child: its answer must come on a connection of its own
        try:
            ok = transport.send(GET).status == 200
        finally:
            os._exit(0 if ok else 1)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert server.connections == 2  # the child did not write on the parent's socket
    assert transport.send(GET).status == 200  # and the parent keeps using its own
    assert server.connections == 2
