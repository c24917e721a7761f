"""What the fast-by-default work promises of both workers, on real servers:
no leak, pipelining, the raw path for keys, one answer for each kind of
malformed request, and slow clients that stall nobody (the keep-alive
connection after a large response is in test_serving.py).

Every case talks to 127.0.0.1 only and is bounded in count and time."""

from __future__ import annotations

import select
import socket
import threading
import time
from collections.abc import Iterator

import pytest

from cachegrid.daemon.workers import meinheld_problem
from cachegrid.testing import ServerProcess as Server
from cachegrid.testing import running
from tests.fixtures import worker_kinds

from .test_serving import LARGE_LIMITS, MiB, read_response


@pytest.fixture(scope="module", params=worker_kinds())
def server(request: pytest.FixtureRequest) -> Iterator[Server]:
    with running("--worker", request.param, env=LARGE_LIMITS, graceful=False) as instance:
        instance.kind = request.param  # type: ignore[attr-defined]
        yield instance


def rss(pid: int) -> int:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


def get_on(sock: socket.socket, buffer: bytearray, path: str) -> tuple[int, dict[str, str], bytes]:
    sock.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
    return read_response(sock, buffer)


def test_keys_ending_in_an_action_name_are_plain_items(server: Server) -> None:
    # Under meinheld these were reachable only as the /ttl subresource, until
    # meinheld handed the application the raw request target.
    assert server.request("PUT", "/cache/job%2Fttl?ttl=60", {"n": 1})[0] == 201
    status, _, body = server.request("GET", "/cache/job%2Fttl")
    assert (status, body) == (200, b'{"n":1}')
    status, _, body = server.request("GET", "/cache/job%2Fttl/ttl")
    assert status == 200 and b'"ttl"' in body


def test_pipelined_requests_with_bodies_are_all_answered_in_order(server: Server) -> None:
    def put(key: str, value: bytes) -> bytes:
        return (
            b"PUT /cache/%s HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Content-Length: %d\r\n\r\n%s" % (key.encode(), len(value), value)
        )

    stream = put("pipe1", b'"one"') + put("pipe2", b'"two"') + b"GET /cache/pipe1 HTTP/1.1\r\nHost: x\r\n\r\n"
    for cut in (len(stream), 30, 80, len(stream) - 5):  # in one write, and split across reads
        with socket.create_connection((server.host, server.port), timeout=10) as sock:
            sock.sendall(stream[:cut])
            time.sleep(0.01)
            sock.sendall(stream[cut:])
            buffer = bytearray()
            answers = [read_response(sock, buffer) for _ in range(3)]
        assert [status for status, _, _ in answers][:2] in ([201, 201], [200, 200], [201, 200], [200, 201])
        assert answers[2][0] == 200 and answers[2][2] == b'"one"'


def test_the_worker_does_not_grow_over_40000_requests(server: Server) -> None:
    server.request("PUT", "/cache/leak", {"n": 1})
    [worker] = server.workers()

    def keep_alive(count: int) -> None:
        with socket.create_connection((server.host, server.port), timeout=10) as sock:
            buffer = bytearray()
            for _ in range(count):
                assert get_on(sock, buffer, "/cache/leak")[0] == 200

    def new_connections(count: int) -> None:
        request = b"GET /cache/leak HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
        for _ in range(count):
            with socket.create_connection((server.host, server.port), timeout=10) as sock:
                sock.sendall(request)
                while sock.recv(65536):
                    pass

    keep_alive(2_000)  # warm-up: caches, allocator arenas, the chunk cache
    new_connections(2_000)
    before = rss(worker)
    keep_alive(20_000)
    new_connections(20_000)
    grown = rss(worker) - before
    # The leak this guards against was 4 KiB per request: 160 MiB here.
    assert grown < 1 * MiB, f"{server.kind} worker grew {grown} bytes over 40,000 requests"  # type: ignore[attr-defined]


# One answer for each kind of malformed request, whatever the worker
# (RFC 9112): framing errors 400, an unknown transfer coding 501, header
# limits 431, a request target over the limit 414. None of them may store
# anything, and the server keeps serving.
MALFORMED = {
    "unknown transfer coding with a length": (
        b'PUT /cache/smuggled HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: xchunked\r\nContent-Length: 3\r\n\r\n"a"',
        501,
    ),
    "a transfer coding before chunked": (
        b'PUT /cache/smuggled HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\n\r\n3\r\n"a"\r\n0\r\n\r\n',
        501,
    ),
    "chunked and a length": (
        b"PUT /cache/smuggled HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n"
        b'3\r\n"a"\r\n0\r\n\r\n',
        400,
    ),
    "two lengths": (
        b'PUT /cache/smuggled HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\n"ab"',
        400,
    ),
    "a bad chunk size": (
        b'PUT /cache/smuggled HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n"a"\r\n0\r\n\r\n',
        400,
    ),
    "bare LF line ends": (b'PUT /cache/smuggled HTTP/1.1\nHost: x\nContent-Length: 3\n\n"a"', 400),
    "a bare LF inside the headers": (b'PUT /cache/smuggled HTTP/1.1\r\nHost: x\nContent-Length: 3\r\n\r\n"a"', 400),
    "a 100 KB header": (b"GET /cache/smuggled HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 100_000 + b"\r\n\r\n", 431),
    "10,000 headers": (
        b"GET /cache/smuggled HTTP/1.1\r\nHost: x\r\n" + b"".join(b"X-%d: y\r\n" % i for i in range(10_000)) + b"\r\n",
        431,
    ),
    "a 20 KB request target": (b"GET /cache/" + b"k" * 20_000 + b" HTTP/1.1\r\nHost: x\r\n\r\n", 414),
}


def send_raw(server: Server, raw: bytes) -> bytes:
    """Send ``raw`` in pieces, stopping as soon as the server answers: a
    server that refuses a request early closes the connection with the rest
    unread, and the reset that follows would otherwise destroy its answer."""
    with socket.create_connection((server.host, server.port), timeout=10) as sock:
        received = b""
        try:
            for start in range(0, len(raw), 4096):
                if select.select([sock], [], [], 0)[0]:
                    break
                sock.sendall(raw[start : start + 4096])
            else:
                sock.shutdown(socket.SHUT_WR)
            while chunk := sock.recv(65536):
                received += chunk
        except (ConnectionResetError, BrokenPipeError):
            if not received:
                received = sock.recv(65536) if select.select([sock], [], [], 1)[0] else b""
        return received


@pytest.mark.parametrize("case", list(MALFORMED))
def test_malformed_requests_get_the_same_answer_from_both_workers(server: Server, case: str) -> None:
    raw, expected = MALFORMED[case]
    server.request("DELETE", "/cache/smuggled")
    answer = send_raw(server, raw)
    assert answer.split(b"\r\n", 1)[0].split(b" ")[1:2] == [str(expected).encode()], answer[:200]
    assert "Traceback" not in server.output()
    assert server.request("GET", "/cache/smuggled")[0] == 404
    assert server.request("GET", "/health")[0] == 200


def drip_headers(server: Server, connections: int, seconds: float, stop: threading.Event) -> list[socket.socket]:
    """Open ``connections`` connections that each send a request head one
    byte at a time (one byte per connection per 0.5 s), for ``seconds``."""
    socks = []
    for _ in range(connections):
        sock = socket.create_connection((server.host, server.port), timeout=5)
        sock.sendall(b"G")
        socks.append(sock)

    def drip() -> None:
        head = b"ET /cache/slow HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"s" * 1000
        deadline = time.monotonic() + seconds
        for byte in head:
            if stop.is_set() or time.monotonic() > deadline:
                break
            for sock in socks:
                try:
                    sock.send(bytes([byte]))
                except OSError:
                    pass
            stop.wait(0.5)

    threading.Thread(target=drip, daemon=True).start()
    return socks


@pytest.mark.parametrize(("kind", "connections"), [("meinheld", 200), ("gthread", 50)])
def test_clients_dripping_their_headers_stall_nobody(kind: str, connections: int) -> None:
    if kind == "meinheld" and (problem := meinheld_problem()):
        pytest.skip(problem)
    with running("--worker", kind) as server:
        server.request("PUT", "/cache/fast", 1)
        stop = threading.Event()
        socks = drip_headers(server, connections, seconds=8, stop=stop)
        try:
            time.sleep(1.0)  # every slow connection has been accepted and has sent something
            worst = 0.0
            for _ in range(5):
                started = time.monotonic()
                status, _, _ = server.request("GET", "/cache/fast", timeout=5)
                worst = max(worst, time.monotonic() - started)
                assert status == 200
            # The failure this guards against is no answer at all (a 5 s
            # timeout); the goal, < 100 ms, is measured in the benchmarks.
            assert worst < 2.0, f"a GET took {worst:.3f} s beside {connections} slow clients"
        finally:
            stop.set()
            for sock in socks:
                sock.close()
