"""How long a stop takes: the meinheld worker handles a signal when it
arrives, not at its watchdog's next call.

Python runs a signal's handler only when Python code runs; an idle meinheld
loop runs none but the watchdog, once a second, and waits a full second in
the kernel after a signal interrupts it. Every stop of an idle server took
over a second (systemd's restarts, every test server's stop); now a
greenlet waits on gunicorn's signal pipe and runs the handler at once
(cachegrid/daemon/meinheld_worker.py). A graceful stop closes idle
keep-alive connections at once and serves a request it has begun to read
(patch 0012 of cachegrid/meinheld_build). What else a graceful stop waits for
is tested in test_serving.py (the request in flight) and test_snapshot.py
(the snapshot at shutdown).
"""

from __future__ import annotations

import json
import signal
import socket
import time
from collections.abc import Callable

import pytest

from cachegrid.daemon.workers import meinheld_problem
from cachegrid.testing import ServerProcess as Server

ROUNDS = 3
# The old worker could not stop an idle server in less than a second (the
# kernel wait the signal interrupts is restarted whole); the best of three
# stops under this bound says the handler ran before it, even on a busy machine.
WELL_UNDER_THE_WATCHDOG = 1.0


def idle_server_stop_seconds(start_server: Callable[..., Server], signum: int) -> float:
    server = start_server("--worker", "meinheld")
    server.request("GET", "/health")
    time.sleep(1.2)  # past the watchdog's first call, which puts the worker's handlers in place
    started = time.monotonic()
    server.process.send_signal(signum)
    assert server.process.wait(timeout=30) == 0, server.output()
    return time.monotonic() - started


@pytest.mark.skipif(meinheld_problem() is not None, reason=meinheld_problem() or "")
@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM graceful", "SIGINT quick"])
def test_an_idle_meinheld_server_stops_without_waiting_for_the_watchdog(
    start_server: Callable[..., Server], signum: int
) -> None:
    seconds = [idle_server_stop_seconds(start_server, signum) for _ in range(ROUNDS)]
    assert min(seconds) < WELL_UNDER_THE_WATCHDOG, seconds


# A graceful stop closes the keep-alive connections that wait for their next
# request at once; before, it waited for each one's keep-alive timeout (5 s
# by default: over 6 s to stop a server with one idle pooled client). The bound
# is generous: the stop takes well under a second, the old one over 5 s.
IDLE_CLIENT_STOP_BOUND = 2.5
REQUEST = b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"


def read_response(sock: socket.socket) -> tuple[bytes, bytes]:
    """One whole response from ``sock``: its head and its body."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        assert chunk, f"the connection closed mid-response: {data!r}"
        data += chunk
    head, body = data.split(b"\r\n\r\n", 1)
    fields = dict(line.lower().split(b":", 1) for line in head.split(b"\r\n")[1:])
    assert b"content-length" in fields, head
    length = int(fields[b"content-length"])
    while len(body) < length:
        chunk = sock.recv(65536)
        assert chunk, f"the connection closed mid-body: {head + body!r}"
        body += chunk
    assert len(body) == length, (head, body)
    return head, body


def keep_alive_client(server: Server) -> socket.socket:
    """A connection that has had one response and stays open, idle."""
    sock = socket.create_connection((server.host, server.port), timeout=10)
    sock.sendall(REQUEST)
    head, _ = read_response(sock)
    assert head.startswith(b"HTTP/1.1 200") and b"connection: keep-alive" in head.lower(), head
    return sock


def closed_by_the_server(sock: socket.socket) -> bool:
    try:
        return sock.recv(65536) == b""
    except ConnectionResetError:
        return True


@pytest.mark.skipif(meinheld_problem() is not None, reason=meinheld_problem() or "")
def test_a_graceful_stop_closes_idle_keep_alive_connections_at_once(start_server: Callable[..., Server]) -> None:
    server = start_server("--worker", "meinheld")
    time.sleep(1.2)  # past the watchdog's first call, which puts the worker's handlers in place
    with keep_alive_client(server) as idle:
        started = time.monotonic()
        server.process.send_signal(signal.SIGTERM)
        assert server.process.wait(timeout=30) == 0, server.output()
        seconds = time.monotonic() - started
        assert seconds < IDLE_CLIENT_STOP_BOUND, seconds
        assert closed_by_the_server(idle)


@pytest.mark.skipif(meinheld_problem() is not None, reason=meinheld_problem() or "")
def test_a_graceful_stop_serves_a_keep_alive_request_it_has_begun_to_read(start_server: Callable[..., Server]) -> None:
    server = start_server("--worker", "meinheld")
    time.sleep(1.2)
    with keep_alive_client(server) as idle, keep_alive_client(server) as busy:
        head, rest = REQUEST.split(b"\r\n", 1)
        busy.sendall(head + b"\r\n")  # a new request's first line, no more yet
        time.sleep(0.3)  # read by the server
        server.process.send_signal(signal.SIGTERM)
        assert closed_by_the_server(idle)  # the stop has run
        assert server.process.poll() is None, server.output()
        busy.sendall(rest)
        head, body = read_response(busy)
        assert head.startswith(b"HTTP/1.1 200") and b"connection: close" in head.lower(), head
        assert json.loads(body)["status"] == "healthy"
        assert closed_by_the_server(busy)
        assert server.process.wait(timeout=30) == 0, server.output()
