"""What the fast-by-default work promises of both workers, on real servers:
no leak, pipelining, the raw path for keys, one answer for each kind of
malformed request, and slow clients that stall nobody (the keep-alive
connection after a large response is in test_serving.py).

Every case talks to 127.0.0.1 only and is bounded in count and time."""

from __future__ import annotations

import json
import select
import socket
import threading
import time
from collections.abc import Iterator

import pytest

from cachegrid.daemon.worker_errors import ANSWERS
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
# (RFC 9112): framing and header syntax errors 400, an unknown transfer
# coding 501, an HTTP version other than 1.0 and 1.1 505, header limits 431,
# a request target over the limit 414. None of them may store anything (each
# would-be write names the key "smuggled"), the connection is closed after
# the answer (a pipelined request behind a refused one is never served), and
# the server keeps serving. The rows follow the classes of HTTP Garden's list
# of server bugs that apply to a server (docs/http-parsing.md has the table
# of what each reference parser says).
PUT_SMUGGLED = (
    b'PUT /cache/smuggled HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 3\r\n\r\n"a"'
)
CHUNKED_HEAD = b"PUT /cache/smuggled HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"


def _get(head_lines: bytes, version: bytes = b"HTTP/1.1") -> bytes:
    return b"GET /health " + version + b"\r\nHost: x\r\n" + head_lines + b"\r\n"


def _put(head_lines: bytes, body: bytes = b'"a"') -> bytes:
    return b"PUT /cache/smuggled HTTP/1.1\r\nHost: x\r\n" + head_lines + b"\r\n" + body


MALFORMED = {
    # -- transfer codings and lengths (framing) ------------------------------
    "unknown transfer coding with a length": (
        b'PUT /cache/smuggled HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: xchunked\r\nContent-Length: 3\r\n\r\n"a"',
        501,
    ),
    "a transfer coding before chunked": (
        b'PUT /cache/smuggled HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\n\r\n3\r\n"a"\r\n0\r\n\r\n',
        501,
    ),
    "chunked twice": (
        _put(b"Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n", b'3\r\n"a"\r\n0\r\n\r\n'),
        501,
    ),
    "chunked and a length": (
        b"PUT /cache/smuggled HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n"
        b'3\r\n"a"\r\n0\r\n\r\n',
        400,
    ),
    "a length and chunked": (
        _put(b"Content-Length: 3\r\nTransfer-Encoding: chunked\r\n", b'3\r\n"a"\r\n0\r\n\r\n'),
        400,
    ),
    "two lengths": (
        b'PUT /cache/smuggled HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\n"ab"',
        400,
    ),
    "two equal lengths": (_put(b"Content-Length: 3\r\nContent-Length: 3\r\n"), 400),
    "a list of lengths": (_put(b"Content-Length: 3, 3\r\n"), 400),
    "an empty length": (_get(b"Content-Length:\r\n"), 400),
    "a signed length": (_put(b"Content-Length: +3\r\n"), 400),
    "a negative length": (_put(b"Content-Length: -3\r\n"), 400),
    "a hexadecimal length": (_put(b"Content-Length: 0x3\r\n"), 400),
    "a length with a space inside": (_put(b"Content-Length: 1 3\r\n", b'"a"' + b" " * 10), 400),
    "a length past 64 bits": (_put(b"Content-Length: 99999999999999999999999\r\n"), 400),
    "whitespace before the colon": (_put(b"Content-Length : 3\r\n"), 400),
    "whitespace before the colon of a coding": (
        _put(b"Transfer-Encoding : chunked\r\n", b'3\r\n"a"\r\n0\r\n\r\n'),
        400,
    ),
    "HTTP/1.0 with chunked": (
        b"PUT /cache/smuggled HTTP/1.0\r\nHost: x\r\nConnection: keep-alive\r\nContent-Type: application/json\r\n"
        b'Transfer-Encoding: chunked\r\n\r\n3\r\n"a"\r\n0\r\n\r\n' + PUT_SMUGGLED,
        400,
    ),
    # -- header names and lines -----------------------------------------------
    "a header line without a colon": (_get(b"Foo\r\nX-B: 2\r\n"), 400),
    "a length split by a line without a colon": (
        _put(b"Content-\r\nLength: 40\r\n", b"") + PUT_SMUGGLED,
        400,
    ),
    "an empty header name": (_get(b": x\r\n"), 400),
    "a space inside a header name": (_get(b"X Y: 1\r\n"), 400),
    "a separator in a header name": (_get(b"X@Y: 1\r\n"), 400),
    "a non-ASCII header name": (_get(b"X-\xc3\xa9: 1\r\n"), 400),
    "an obs-fold continuation line": (_get(b"X-A: 1\r\n  2\r\n"), 400),
    "whitespace before the first header": (b"GET /health HTTP/1.1\r\n Host: x\r\n\r\n", 400),
    "two Host headers": (_get(b"Host: y\r\n"), 400),
    "two Content-Type headers": (
        _put(b"Content-Type: application/json\r\nContent-Type: application/octet-stream\r\nContent-Length: 3\r\n"),
        400,
    ),
    "no Host header": (b"GET /health HTTP/1.1\r\n\r\n", 400),
    "a write pipelined behind a request without Host": (b"GET /health HTTP/1.1\r\n\r\n" + PUT_SMUGGLED, 400),
    # -- header values ----------------------------------------------------------
    "a NUL inside a header value": (_get(b"X-A: 1\x002\r\n"), 400),
    "a control character inside a header value": (_get(b"X-A: 1\x012\r\n"), 400),
    "a DEL inside a header value": (_get(b"X-A: 1\x7f2\r\n"), 400),
    "a bare CR inside a header value": (_get(b"X-A: 1\r2\r\n"), 400),
    "bare LF line ends": (b'PUT /cache/smuggled HTTP/1.1\nHost: x\nContent-Length: 3\n\n"a"', 400),
    "a bare LF inside the headers": (b'PUT /cache/smuggled HTTP/1.1\r\nHost: x\nContent-Length: 3\r\n\r\n"a"', 400),
    # -- the request line -------------------------------------------------------
    "a method with a wrong third letter": (
        b'PUX /cache/smuggled HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 3\r\n\r\n"a"',
        400,
    ),
    "an unknown method": (b"FOO /health HTTP/1.1\r\nHost: x\r\n\r\n", 400),
    "a method meinheld read as GET": (b"PURGE /health HTTP/1.1\r\nHost: x\r\n\r\n", 400),
    "two spaces after the method": (b"GET  /health HTTP/1.1\r\nHost: x\r\n\r\n", 400),
    "two spaces before the version": (b"GET /health  HTTP/1.1\r\nHost: x\r\n\r\n", 400),
    "a tab for a space": (b"GET\t/health HTTP/1.1\r\nHost: x\r\n\r\n", 400),
    "a space after the version": (b"GET /health HTTP/1.1 \r\nHost: x\r\n\r\n", 400),
    "a space inside the target": (b"GET /hea lth HTTP/1.1\r\nHost: x\r\n\r\n", 400),
    "a NUL inside the target": (b"GET /hea\x00lth HTTP/1.1\r\nHost: x\r\n\r\n", 400),
    "no version": (b"GET /health\r\nHost: x\r\n\r\n", 400),
    "a lower-case protocol name": (_get(b"", b"http/1.1"), 400),
    "HTTP/1.10": (_get(b"", b"HTTP/1.10"), 400),
    "HTTP/01.1": (_get(b"", b"HTTP/01.1"), 400),
    "HTTP/1": (_get(b"", b"HTTP/1"), 400),
    "HTTP/2.0": (_get(b"", b"HTTP/2.0"), 505),
    "HTTP/1.2": (_get(b"", b"HTTP/1.2"), 505),
    "HTTP/0.9": (_get(b"", b"HTTP/0.9"), 505),
    # -- chunks -----------------------------------------------------------------
    "a bad chunk size": (
        b'PUT /cache/smuggled HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n"a"\r\n0\r\n\r\n',
        400,
    ),
    "a chunk size that overflows": (CHUNKED_HEAD + b"1" + b"0" * 20 + b'\r\n"a"\r\n0\r\n\r\n', 400),
    "a signed chunk size": (CHUNKED_HEAD + b'+3\r\n"a"\r\n0\r\n\r\n', 400),
    "a non-ASCII byte inside a chunk size": (CHUNKED_HEAD + b'0\x803\r\n"a"\r\n0\r\n\r\n', 400),
    "a 0x chunk size": (CHUNKED_HEAD + b'0x3\r\n"a"\r\n0\r\n\r\n', 400),
    "an empty chunk size": (CHUNKED_HEAD + b'\r\n"a"\r\n0\r\n\r\n', 400),
    "a chunk longer than its size": (CHUNKED_HEAD + b'2\r\n"a"\r\n0\r\n\r\n', 400),
    "a bare LF after a chunk size": (CHUNKED_HEAD + b'3\n"a"\r\n0\r\n\r\n', 400),
    "a bare LF inside a chunk extension": (CHUNKED_HEAD + b'3;a\nb\r\n"a"\r\n0\r\n\r\n', 400),
    "a NUL inside a chunk extension": (CHUNKED_HEAD + b'3;a=\x00\r\n"a"\r\n0\r\n\r\n', 400),
    "a colon inside a chunk extension": (CHUNKED_HEAD + b'3;nam:e=v\r\n"a"\r\n0\r\n\r\n', 400),
    "a space inside a chunk extension's value": (CHUNKED_HEAD + b'3;a=b c\r\n"a"\r\n0\r\n\r\n', 400),
    "whitespace at the end of a chunk extension": (CHUNKED_HEAD + b'3;a=b \r\n"a"\r\n0\r\n\r\n', 400),
    "a trailer without a colon": (CHUNKED_HEAD + b'3\r\n"a"\r\n0\r\nFoo\r\n\r\n', 400),
    "a bare LF inside the trailers": (CHUNKED_HEAD + b'3\r\n"a"\r\n0\r\nX-T: 1\n\r\n', 400),
    "no last chunk": (CHUNKED_HEAD + b'3\r\n"a"\r\n', 400),
    "a body shorter than its length": (_put(b"Content-Length: 10\r\nContent-Type: application/json\r\n"), 400),
    "a head cut short": (b"GET /health HTTP/1.1\r\nHost: x\r\nX-A: 1\r\n", 400),
    # -- limits -----------------------------------------------------------------
    "a 100 KB header": (b"GET /cache/smuggled HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 100_000 + b"\r\n\r\n", 431),
    "10,000 headers": (
        b"GET /cache/smuggled HTTP/1.1\r\nHost: x\r\n" + b"".join(b"X-%d: y\r\n" % i for i in range(10_000)) + b"\r\n",
        431,
    ),
    "a 20 KB request target": (b"GET /cache/" + b"k" * 20_000 + b" HTTP/1.1\r\nHost: x\r\n\r\n", 414),
    # -- pipelining after an error ----------------------------------------------
    "a write pipelined behind a refused request": (_get(b"Foo\r\n") + PUT_SMUGGLED, 400),
    "a write pipelined behind a bad chunk": (CHUNKED_HEAD + b"zz\r\n\r\n" + PUT_SMUGGLED, 400),
    # The body of a GET, which the application never reads, is framed all the same.
    "a write pipelined behind a bad chunk of a GET": (
        _get(b"Transfer-Encoding: chunked\r\n") + b"zz\r\n\r\n" + PUT_SMUGGLED,
        400,
    ),
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
    # CacheGrid's JSON error on an HTTP/1.1 status line, no version banner,
    # and one answer only: the connection closes after it (send_raw reads
    # to the end), so nothing pipelined behind is served. The error's name
    # is the worker's own for the status (worker_errors), whichever worker.
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 ") and b"meinheld" not in head.lower(), head
    assert set(json.loads(body)) >= {"error", "message"}, body
    assert json.loads(body)["error"] == ANSWERS[expected][1], body
    assert answer.lower().count(b"\r\ncontent-length:") == 1, answer[:400]
    assert "Traceback" not in server.output()
    assert server.request("GET", "/cache/smuggled")[0] == 404
    assert server.request("GET", "/health")[0] == 200


@pytest.mark.parametrize("framing", ["chunked", "length"])
def test_the_unread_body_of_a_get_is_never_read_as_the_next_request(server: Server, framing: str) -> None:
    """A GET's body, which the application never reads, is read as a body
    all the same: a write hidden inside it is not served, and the request
    pipelined after it is, whatever the reads it arrives in."""
    if framing == "chunked":
        head = b"GET /health HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
        body = b"%x\r\n%s\r\n0\r\n\r\n" % (len(PUT_SMUGGLED), PUT_SMUGGLED)
    else:
        head = b"GET /health HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % len(PUT_SMUGGLED)
        body = PUT_SMUGGLED
    stream = head + body + b"GET /cache/smuggled HTTP/1.1\r\nHost: x\r\n\r\n"
    server.request("DELETE", "/cache/smuggled")
    for cut in (len(stream), len(head), len(head) + 20, len(stream) - 10):
        with socket.create_connection((server.host, server.port), timeout=10) as sock:
            sock.sendall(stream[:cut])
            time.sleep(0.01)
            sock.sendall(stream[cut:])
            buffer = bytearray()
            answers = [read_response(sock, buffer)[0] for _ in range(2)]
        assert answers == [200, 404], (cut, answers)


def test_a_chunk_extension_split_at_any_byte_is_read_whole(server: Server) -> None:
    """meinheld walks a chunk extension's grammar byte by byte (patch 0030),
    keeping its place between reads: each cut of the chunk line is read."""
    head = b"PUT /cache/ext HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nContent-Type: application/json\r\n\r\n"
    raw = head + b'5;a="x;\\"y";b=c\r\n"ext"\r\n0\r\n\r\n'
    for cut in range(len(head), len(raw)):
        with socket.create_connection((server.host, server.port), timeout=10) as sock:
            sock.sendall(raw[:cut])
            time.sleep(0.002)
            sock.sendall(raw[cut:])
            status, _, body = read_response(sock, bytearray())
        assert status in (200, 201), (cut, body)
    assert server.request("GET", "/cache/ext")[2] == b'"ext"'


def test_bytes_that_begin_no_request_after_a_complete_one_are_answered_after_it(server: Server) -> None:
    """A complete write, then in the same packet a line that begins no
    request: the write is served (201), the line refused (400) after it, and
    the connection closed. meinheld refused the complete write instead
    (patch 0027), and served it when the line came in a later read."""
    server.request("DELETE", "/cache/smuggled")
    answer = send_raw(server, PUT_SMUGGLED + b"get / HTTP/1.1\r\nHost: x\r\n\r\n")
    statuses = [int(part.split(b" ", 1)[0]) for part in answer.split(b"HTTP/1.1 ")[1:]]
    assert statuses == [201, 400], answer
    assert json.loads(answer.rpartition(b"\r\n\r\n")[2])["error"] == "bad_request"
    assert server.request("GET", "/cache/smuggled")[0] == 200


def test_the_server_header_names_the_server_without_its_version(server: Server) -> None:
    """No version banner: meinheld's build writes "meinheld" (patch 0025),
    gunicorn "gunicorn"; the worker's own error answers have none."""
    _, headers, _ = server.request("GET", "/health")
    assert headers["server"] == {"meinheld": "meinheld", "gthread": "gunicorn"}[server.kind]  # type: ignore[attr-defined]
    answer = send_raw(server, b"GET /health HTTP/1.1\r\n\r\n")
    assert answer.startswith(b"HTTP/1.1 400 ") and b"\r\nserver:" not in answer.lower(), answer


def test_a_repeated_header_costs_nothing_after_its_request(server: Server) -> None:
    """meinheld joined a repeated header's values and kept the intermediate
    string: 11 MB over these 20,000 requests (patch 0026)."""
    request = b"GET /health HTTP/1.1\r\nHost: x\r\nX-R: " + b"a" * 500 + b"\r\nX-R: " + b"b" * 500 + b"\r\n\r\n"
    [worker] = server.workers()

    def send(count: int) -> None:
        with socket.create_connection((server.host, server.port), timeout=10) as sock:
            buffer = bytearray()
            for _ in range(count):
                sock.sendall(request)
                assert read_response(sock, buffer)[0] == 200

    send(2_000)  # warm-up
    before = rss(worker)
    send(20_000)
    grown = rss(worker) - before
    assert grown < 1 * MiB, f"{server.kind} worker grew {grown} bytes over 20,000 requests"  # type: ignore[attr-defined]


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


def test_a_request_split_at_any_byte_is_read_whole(server: Server) -> None:
    """Each cut of one request into two reads (as TCP segmentation may make
    it), among them a header name cut just before its colon, which handed
    meinheld's header callback an empty piece (a zero-length array)."""
    raw = (
        b"PUT /cache/split HTTP/1.1\r\nHost: x\r\nX-Name: v\r\nContent-Type: application/json\r\n"
        b'Content-Length: 7\r\n\r\n"split"'
    )
    for cut in range(1, len(raw)):
        with socket.create_connection((server.host, server.port), timeout=10) as sock:
            sock.sendall(raw[:cut])
            time.sleep(0.002)
            sock.sendall(raw[cut:])
            status, _, _ = read_response(sock, bytearray())
        assert status in (200, 201), cut
    assert server.request("GET", "/cache/split")[2] == b'"split"'
