"""Fixtures and helpers shared by every test package (tests/conftest.py
loads this module as a plugin, so no conftest imports another).

- ``start_server``: start real servers (cachegrid.testing) in a test, all
  stopped when it ends (killed at once: a test that examines a
  graceful one calls ``stop()`` itself);
- ``stub``: local HTTP hosts that answer every request with a fixed status,
  or drop the connection: failing hosts on purpose;
- ``worker_kinds()``: the worker kinds to run a test under, meinheld skipped
  with the reason where CacheGrid's build is not usable;
- ``median_seconds(call)``: the median time of a call, for the few tests
  whose issue asks for a time (compared with another call's, generously).
"""

from __future__ import annotations

import http.server
import socket
import threading
import time
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest

from cachegrid.daemon.workers import meinheld_problem
from cachegrid.percentile import percentile
from cachegrid.testing import ServerProcess


def median_seconds(call: Callable[[], Any], rounds: int = 50) -> float:
    """The median time of ``call()`` over ``rounds`` runs."""
    times = []
    for _ in range(rounds):
        started = time.perf_counter()
        call()
        times.append(time.perf_counter() - started)
    return percentile(sorted(times), 0.5)


def worker_kinds() -> list[Any]:
    problem = meinheld_problem()
    return [
        pytest.param("meinheld", marks=pytest.mark.skipif(problem is not None, reason=problem or "")),
        "gthread",
    ]


@pytest.fixture
def start_server() -> Iterator[Any]:
    started: list[ServerProcess] = []

    def start(
        *args: str, env: dict[str, str] | None = None, cwd: Path | None = None, healthy: bool = True
    ) -> ServerProcess:
        server = ServerProcess(*args, env=env, cwd=cwd)
        started.append(server)
        if healthy:
            server.wait_healthy()
        return server

    yield start
    for server in started:  # what a test examines of a stop, it stops itself
        server.kill()


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
