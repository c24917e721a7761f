"""Real CacheGrid servers for tests and benchmarks: ``cachegrid serve`` in a
subprocess on 127.0.0.1 and an ephemeral port, talked to over HTTP.

What CacheGrid's own test suite and benchmarks start their servers with,
and what a project that tests against a real CacheGrid can use the same way
(falcon's ``falcon.testing`` is the model)::

    from cachegrid.testing import running

    with running("--max-size", "100") as server:
        status, headers, body = server.request("GET", "/health")

Every wait is bounded, and ``stop()`` (which ``running`` calls) leaves no
process behind: SIGTERM, then SIGKILL of the process group and of any
worker still alive.

``stop()`` is gunicorn's graceful stop (SIGTERM): requests in flight
finish, and idle keep-alive connections are waited for (up to the
``keepalive`` setting, 5 s, under meinheld), about 1.5 s at the least.
``kill()``, and ``running(..., graceful=False)`` at the end of the block,
end the server at once: for a server whose stop nothing examines, such as a
fixture's once its tests are done.

``FakeClock`` is the other half, for tests that need no server: a clock
that moves only when the test moves it, to hand to ``Cache(..., clock=)``
(or the daemon's ``build_cache``) so that TTLs, stale windows and leases
expire on the test's word instead of after real sleeps::

    clock = FakeClock()
    cache = Cache("lru", max_size=100, clock=clock)
    cache.set("k", b"v", 10)
    clock.tick(11)
    assert cache.get("k") is None
"""

from __future__ import annotations

import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

CLI = str(Path(sys.executable).with_name("cachegrid"))
START_TIMEOUT = 30.0


class FakeClock:
    """A clock the test moves by hand: time passes only through ``tick()``
    (or by setting ``now``). Called, it answers the current time, as
    ``time.monotonic`` does."""

    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def tick(self, seconds: float) -> None:
        self.now += seconds


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port free on ``host`` now (the kernel's choice of an ephemeral one)."""
    with socket.socket() as probe:
        probe.bind((host, 0))
        return probe.getsockname()[1]


def children(pid: int) -> list[int]:
    """Direct child processes of ``pid`` (gunicorn's workers of a master)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid:
                found.append(int(entry.name))
    return found


SNAPSHOT_PLACES = frozenset({"CACHEGRID_SNAPSHOT_PATH", "XDG_STATE_HOME", "STATE_DIRECTORY"})


class ServerProcess:
    """One `cachegrid serve` process on 127.0.0.1, its output in a file.

    Its environment is the caller's without any ``CACHEGRID_*`` variable,
    plus ``env``; ``--port`` defaults to a free one. Every wait is bounded.
    It keeps no snapshots unless ``env`` names where (``CACHEGRID_SNAPSHOT_PATH``,
    ``XDG_STATE_HOME`` or ``STATE_DIRECTORY``) or ``--snapshot-path`` is given:
    ``cachegrid serve`` keeps them in the user's state directory by default,
    and a test's server must neither write there nor load another's data."""

    def __init__(self, *args: str, env: dict[str, str] | None = None, cwd: Path | None = None) -> None:
        self.port = int(args[args.index("--port") + 1]) if "--port" in args else free_port()
        self.host = "127.0.0.1"
        environment = {k: v for k, v in os.environ.items() if not k.startswith("CACHEGRID_")}
        if not SNAPSHOT_PLACES.intersection(env or {}):
            environment["CACHEGRID_SNAPSHOT_PATH"] = ""
        environment.update(env or {})
        self.log_path = Path(os.environ.get("TMPDIR", "/tmp")) / f"cachegrid-server-{self.port}.log"
        self.log = self.log_path.open("wb")
        command = [CLI, "serve", "--host", self.host, *args]
        if "--port" not in args:
            command += ["--port", str(self.port)]
        self.process = subprocess.Popen(
            command, env=environment, cwd=cwd, stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True
        )

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def output(self) -> str:
        self.log.flush()
        return self.log_path.read_text(errors="replace")

    def connection(self, timeout: float = 10.0) -> http.client.HTTPConnection:
        return http.client.HTTPConnection(self.host, self.port, timeout=timeout)

    def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        headers: dict[str, str] | None = None,
        raw: bytes | None = None,
        timeout: float = 10.0,
    ) -> tuple[int, dict[str, str], bytes]:
        connection = self.connection(timeout)
        try:
            payload = raw if raw is not None else (None if body is None else json.dumps(body).encode())
            connection.request(method, path, body=payload, headers=headers or {})
            response = connection.getresponse()
            return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
        finally:
            connection.close()

    def wait_healthy(self, timeout: float = START_TIMEOUT) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"the server exited with {self.process.returncode}:\n{self.output()}")
            try:
                if self.request("GET", "/health", timeout=2)[0] == 200:
                    return
            except OSError:
                pass
            time.sleep(0.1)
        raise AssertionError(f"the server did not become healthy within {timeout} s:\n{self.output()}")

    def workers(self) -> list[int]:
        return children(self.process.pid)

    def stop(self) -> int | None:
        """gunicorn's graceful stop (SIGTERM), its return code (``end_group``)."""
        try:
            return end_group(self.process)
        finally:
            self.log.close()

    def kill(self) -> int | None:
        """SIGKILL at once (``end_group``): for a server whose stop nothing
        examines (a fixture's, once its tests are done)."""
        try:
            return end_group(self.process, graceful=False)
        finally:
            self.log.close()


def end_group(process: subprocess.Popen[Any], graceful: bool = True, timeout: float = 15.0) -> int | None:
    """End a server started in a session of its own, its return code.
    Graceful: SIGTERM, and up to ``timeout`` seconds for it to exit; then
    (or at once when not graceful) SIGKILL of its process group, so that no
    worker, snapshot child or hung master is left behind."""
    if graceful and process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            pass
    workers = children(process.pid) if process.poll() is None else []
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):  # the whole group has exited already
        pass
    for pid in workers:  # one that left the group: never leave a worker behind
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    process.wait(timeout=10)
    return process.returncode


@contextmanager
def running(*args: str, env: dict[str, str] | None = None, graceful: bool = True) -> Iterator[ServerProcess]:
    """A healthy server for the duration of the block, stopped after it
    (``stop()``), or killed (``kill()``) when not ``graceful``."""
    server = ServerProcess(*args, env=env)
    try:
        server.wait_healthy()
        yield server
    finally:
        if graceful:
            server.stop()
        else:
            server.kill()
