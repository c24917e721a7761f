"""REMOTE_ADDR belongs to the connection a request came on, per worker kind.

A request on a kept-alive connection must report its own client's address,
not that of whichever client connected last: meinheld once kept the address
as a pointer into ``inet_ntoa``'s single static buffer, which the next
accepted connection overwrote (our build's patch 0037). The cheapest place to
see REMOTE_ADDR is the access log's first field. On Linux the whole of
127/8 reaches the loopback interface, so binding the client sockets to
127.0.0.2 and 127.0.0.3 gives two clients with different addresses.
"""

from __future__ import annotations

import re
import socket
import time
from collections.abc import Callable

import pytest

from cachegrid.testing import ServerProcess as Server
from tests.fixtures import worker_kinds
from tests.integration.test_serving import read_response


def connect_from(source: str, server: Server) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.settimeout(10)
    sock.bind((source, 0))
    sock.connect((server.host, server.port))
    return sock


def get(sock: socket.socket, buffer: bytearray, target: str) -> int:
    sock.sendall(f"GET {target} HTTP/1.1\r\nHost: cachegrid\r\n\r\n".encode())
    status, headers, _ = read_response(sock, buffer)
    assert headers.get("connection", "").lower() != "close", headers  # A must stay open
    return status


def logged_clients(server: Server, targets: list[str]) -> dict[str, str]:
    """The client address of each target's access log line, once all are written."""
    found: dict[str, str] = {}
    deadline = time.monotonic() + 10  # lines are written in batches, at least once a second
    while time.monotonic() < deadline:
        for target in targets:
            match = re.search(rf'(\S+) "GET {re.escape(target)} HTTP/1.1"', server.output())
            if match:
                found[target] = match.group(1)
        if len(found) == len(targets):
            break
        time.sleep(0.1)
    return found


@pytest.mark.parametrize("kind", worker_kinds())
def test_a_kept_alive_request_reports_its_own_client_address(kind: str, start_server: Callable[..., Server]) -> None:
    server = start_server("--worker", kind, env={"CACHEGRID_ACCESS_LOG": "true"})
    marker = f"/cache/remote-{time.monotonic_ns()}"
    first_a, only_b, second_a = f"{marker}-a1", f"{marker}-b1", f"{marker}-a2"
    a, a_buffer = connect_from("127.0.0.2", server), bytearray()
    b, b_buffer = None, bytearray()
    try:
        assert get(a, a_buffer, first_a) == 404
        # B is accepted (and its request answered) while A waits, kept alive.
        b = connect_from("127.0.0.3", server)
        assert get(b, b_buffer, only_b) == 404
        assert get(a, a_buffer, second_a) == 404
    finally:
        a.close()
        if b is not None:
            b.close()
    clients = logged_clients(server, [first_a, only_b, second_a])
    assert clients == {first_a: "127.0.0.2", only_b: "127.0.0.3", second_a: "127.0.0.2"}, clients
