from __future__ import annotations

import http.server
import socket
import threading
from typing import Callable, Iterator

import pytest

from ..integration.conftest import Server, free_port, running
from ..integration.conftest import start_server as start_server  # noqa: F401  (a fixture, re-exported)


@pytest.fixture(scope="package")
def live() -> Iterator[Server]:
    """One real server shared by the client tests (each test uses its own keys)."""
    with running() as server:
        yield server


@pytest.fixture
def dead_host() -> str:
    """An address where nothing listens."""
    return f"127.0.0.1:{free_port()}"


class Stub:
    """A local HTTP host that answers every request with a fixed status (or
    drops the connection), counting requests: a failing host on purpose."""

    def __init__(self, status: int | None, body: bytes = b'{"error": "stub", "message": "stub"}') -> None:
        self.requests = 0
        stub = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def _answer(self) -> None:
                stub.requests += 1
                length = int(self.headers.get("Content-Length") or 0)
                self.rfile.read(length)
                if status is None:  # read the request, answer nothing
                    self.connection.shutdown(socket.SHUT_RDWR)
                    return
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = _answer

            def log_message(self, *args: object) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.host = f"127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def stub() -> Iterator[Callable[..., Stub]]:
    made: list[Stub] = []

    def make(status: int | None, body: bytes = b'{"error": "stub", "message": "stub"}') -> Stub:
        made.append(Stub(status, body))
        return made[-1]

    yield make
    for instance in made:
        instance.close()
