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
  whose issue asks for a time (compared with another call's, generously);
- ``clock``: a ``cachegrid.testing.FakeClock`` at 1000.0, moved by hand
  (FakeClock lives in the package: a project that embeds the engine wants
  it for the same reason the suite does);
- ``SYSTEMD_UNITS``, ``SYSTEMD_SERVICES`` and ``unit_value()``: the
  systemd units of the repository and a reader of their settings, for the
  deployment and the integration tests.

A helper that tests of more than one package use lives here (or, if users
of CacheGrid would want it too, in ``cachegrid.testing``), never in one
package's conftest or test module that the others import.
"""

from __future__ import annotations

import http.server
import os
import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from cachegrid.daemon.workers import meinheld_problem
from cachegrid.percentile import percentile
from cachegrid.testing import FakeClock, ServerProcess

REPO = Path(__file__).resolve().parents[1]
SYSTEMD_UNITS = REPO / "systemd"
SYSTEMD_SERVICES = {
    # unit file -> the unit name to check (an instance for the template)
    "cachegrid.service": "cachegrid.service",
    "cachegrid@.service": "cachegrid@8081.service",
}


def examples(full: int) -> int:
    """How many examples a property test draws: ``full`` in the whole suite,
    a quarter (at least 10) in ``make test-fast``, the developer's loop that
    must stay under a minute; CI runs the whole suite, every example."""
    return max(10, full // 4) if os.environ.get("CACHEGRID_FAST_TESTS_ONLY") == "1" else full


def unit_value(text: str, key: str) -> list[str]:
    """Every value of ``key=`` in a unit file (no continuation lines here)."""
    return [line.split("=", 1)[1].strip() for line in text.splitlines() if line.startswith(f"{key}=")]


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
def clock() -> FakeClock:
    return FakeClock()


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


class LocalHost:
    """A local HTTP host on a free port of 127.0.0.1, serving ``handler`` on a thread until ``close()``."""

    def serve(self, handler: type[http.server.BaseHTTPRequestHandler]) -> None:
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.host = f"127.0.0.1:{self.server.server_address[1]}"
        # shutdown() waits for the loop to look at its flag: every 0.5 s by
        # default, half a second of every test's teardown.
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class Stub(LocalHost):
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

        self.serve(Handler)


@pytest.fixture
def stub() -> Iterator[Callable[..., Stub]]:
    made: list[Stub] = []

    def make(status: int | None, body: bytes = b'{"error": "stub", "message": "stub"}') -> Stub:
        made.append(Stub(status, body))
        return made[-1]

    yield make
    for instance in made:
        instance.close()
