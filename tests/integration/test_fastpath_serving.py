"""The fast path on a real server, under each worker: the bytes of its answers.

tests/daemon/test_fastpath.py compares the two paths in process; here each
read is sent over one keep-alive socket twice, as a plain read (the fast
path's) and with an extra query parameter that no responder reads (which
hands it to falcon), and the two answers must be the same bytes: status
line, header lines as the worker writes them, body. Only the ``Date`` line
and the values of ``X-Cache-TTL`` and ``X-Cache-Fresh`` (milliseconds pass
between the two) are left out of the comparison (and the ETag's value in
the PUTs', each a new version). A PUT is handed to falcon by an ``Accept`` header, which no
responder of a PUT reads.
"""

from __future__ import annotations

import re
import socket
from collections.abc import Iterator

import pytest

from cachegrid.testing import ServerProcess, running
from tests.fixtures import worker_kinds

TOKEN = "fast-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture(scope="module", params=worker_kinds())
def server(request: pytest.FixtureRequest) -> Iterator[ServerProcess]:
    env = {"CACHEGRID_AUTH_TOKEN": TOKEN, "CACHEGRID_MAX_VALUE_SIZE": "1500", "CACHEGRID_MAX_BODY_SIZE": "4096"}
    with running("--worker", request.param, env=env, graceful=False) as started:
        for key, body, headers, query in [
            ("user:42", b'{"name":"Alice","age":30}', {}, ""),
            ("timed", b"[1,2,3]", {}, "?ttl=600"),
            ("tagged", b'"t"', {}, "?tags=a,b"),
            ("stale", b"1", {}, "?ttl=600&stale=600"),
            ("fresh", b"1", {}, "?ttl=600&stale=600"),
            ("bin", bytes(range(256)), {"Content-Type": "application/octet-stream"}, ""),
            ("%D0%BA%D0%BB%D1%8E%D1%87", b'"unicode"', {}, ""),
            ("a%2Fb", b'"slash"', {}, ""),
        ]:
            headers = {"Content-Type": "application/json", **AUTH, **headers}
            status = started.request("PUT", f"/cache/{key}{query}", raw=body, headers=headers)[0]
            assert status in (200, 201), key
        assert started.request("POST", "/cache/stale/stale", headers=AUTH)[0] == 200  # stale now, kept
        yield started


def exchange(sock: socket.socket, method: str, target: str, headers: dict[str, str], body: bytes = b"") -> bytes:
    """One request on ``sock`` and its answer, as bytes (Content-Length framed)."""
    lines = [f"{method} {target} HTTP/1.1", "Host: 127.0.0.1"] + [f"{k}: {v}" for k, v in headers.items()]
    if method == "PUT":
        lines.append(f"Content-Length: {len(body)}")
    sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode() + body)
    answer = b""
    while b"\r\n\r\n" not in answer:
        chunk = sock.recv(65536)
        assert chunk, "the server closed the connection"
        answer += chunk
    head, _, body = answer.partition(b"\r\n\r\n")
    length = int(re.search(rb"(?im)^content-length: *(\d+)", head).group(1))  # type: ignore[union-attr]
    wanted = 0 if method == "HEAD" else length
    while len(body) < wanted:
        chunk = sock.recv(65536)
        assert chunk, "the server closed the connection"
        body += chunk
    assert len(body) == wanted
    return head + b"\r\n\r\n" + body


def comparable(answer: bytes) -> bytes:
    head, _, body = answer.partition(b"\r\n\r\n")
    lines = [line for line in head.split(b"\r\n") if not line.lower().startswith(b"date:")]
    lines = [re.sub(rb"(?i)^(x-cache-(?:ttl|fresh): )[0-9.]+$", rb"\1<seconds>", line) for line in lines]
    lines = [re.sub(rb'(?i)^(etag: )"[^"]*"$', rb"\1<etag>", line) for line in lines]
    return b"\r\n".join(lines) + b"\r\n\r\n" + body


READS = [
    ("GET", "/cache/user:42", AUTH),
    ("HEAD", "/cache/user:42", AUTH),
    ("GET", "/cache/missing", AUTH),
    ("HEAD", "/cache/missing", AUTH),
    ("GET", "/cache/timed", AUTH),
    ("GET", "/cache/tagged", AUTH),
    ("GET", "/cache/stale", AUTH),
    ("GET", "/cache/fresh", AUTH),
    ("GET", "/cache/bin", AUTH),
    ("GET", "/cache/bin", {**AUTH, "Accept": "*/*"}),
    ("GET", "/cache/%D0%BA%D0%BB%D1%8E%D1%87", AUTH),
    ("GET", "/cache/a%2Fb", AUTH),
    ("GET", "/cache/user:42", {}),
    ("GET", "/cache/user:42", {"Authorization": "Bearer wrong"}),
]


def test_a_plain_read_and_falcon_s_answer_are_the_same_bytes(server: ServerProcess) -> None:
    with socket.create_connection((server.host, server.port), timeout=10) as sock:
        for method, target, headers in READS:
            fast = exchange(sock, method, target, headers)
            slow = exchange(sock, method, target + "?unread=1", headers)
            assert comparable(fast) == comparable(slow), (method, target, headers)
            assert fast.startswith(b"HTTP/1.1 "), fast
        assert b"x-cache-stale: true" in exchange(sock, "GET", "/cache/stale", AUTH).lower()
        assert b"x-cache-fresh: " in exchange(sock, "GET", "/cache/fresh", AUTH).lower()


JSON = {**AUTH, "Content-Type": "application/json"}
WRITES = [
    ("/cache/{}", JSON, b'{"name":"Bob"}'),
    ("/cache/{}?ttl=60", JSON, b"[1,2]"),
    ("/cache/{}", {**AUTH}, b'"no content type"'),
    ("/cache/{}", JSON, b'"' + b"x" * 2000 + b'"'),  # past max_value_size: the engine's 413
]


def once(server: ServerProcess, target: str, headers: dict[str, str], body: bytes) -> bytes:
    """A PUT on a connection of its own: gthread closes one after a 413."""
    with socket.create_connection((server.host, server.port), timeout=10) as sock:
        return exchange(sock, "PUT", target, headers, body)


def test_a_plain_write_and_falcon_s_answer_are_the_same_bytes(server: ServerProcess) -> None:
    slow = {"Accept": "application/json"}
    for number, (target, headers, body) in enumerate(WRITES):
        mine, falcons = f"w:{number}", f"v:{number}"
        created = once(server, target.format(mine), headers, body)
        expected = once(server, target.format(falcons), {**headers, **slow}, body)
        assert comparable(created) == comparable(expected).replace(falcons.encode(), mine.encode()), target
        expected = once(server, target.format(mine), {**headers, **slow}, body)
        assert comparable(once(server, target.format(mine), headers, body)) == comparable(expected), target
