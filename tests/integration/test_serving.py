"""The real daemon, per worker kind: `cachegrid serve` under gunicorn on
127.0.0.1, spoken to over real sockets."""

from __future__ import annotations

import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from cachegrid.testing import CLI, free_port, running
from cachegrid.testing import ServerProcess as Server
from tests.fixtures import worker_kinds

MiB = 1024 * 1024
LARGE_LIMITS = {"CACHEGRID_MAX_VALUE_SIZE": str(16 * MiB), "CACHEGRID_MAX_BODY_SIZE": str(20 * MiB)}


@pytest.fixture(scope="module", params=worker_kinds())
def server(request: pytest.FixtureRequest) -> Iterator[Server]:
    """One server per worker kind, shared by the tests that change nothing global."""
    with running("--worker", request.param, env=LARGE_LIMITS, graceful=False) as instance:
        instance.kind = request.param  # type: ignore[attr-defined]
        yield instance


def read_response(sock: socket.socket, buffer: bytearray) -> tuple[int, dict[str, str], bytes]:
    """One HTTP response from ``sock`` (Content-Length framed); leftovers stay in ``buffer``."""
    while b"\r\n\r\n" not in buffer:
        chunk = sock.recv(65536)
        if not chunk:
            raise AssertionError(f"connection closed mid-response: {bytes(buffer)!r}")
        buffer += chunk
    head, _, rest = bytes(buffer).partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {name.strip().lower(): value.strip() for name, _, value in (line.partition(":") for line in lines[1:])}
    length = int(headers.get("content-length", "0"))
    while len(rest) < length:
        chunk = sock.recv(65536)
        if not chunk:
            raise AssertionError("connection closed mid-body")
        rest += chunk
    buffer[:] = rest[length:]
    return status, headers, rest[:length]


def test_the_server_says_which_worker_it_runs(server: Server) -> None:
    assert f"worker {server.kind}" in server.output()  # type: ignore[attr-defined]
    assert len(server.workers()) == 1


def test_keep_alive_reuses_one_connection_for_1000_requests(server: Server) -> None:
    server.request("PUT", "/cache/keepalive", {"n": 1})
    connection = server.connection()
    try:
        connection.connect()
        first_socket = connection.sock
        for _ in range(1000):
            connection.request("GET", "/cache/keepalive")
            response = connection.getresponse()
            assert response.status == 200 and response.read() == b'{"n":1}'
            assert not response.will_close
            assert connection.sock is first_socket
    finally:
        connection.close()


def test_pipelined_requests_are_answered_in_order(server: Server) -> None:
    for i in range(5):
        server.request("PUT", f"/cache/pipe{i}", i)
    with socket.create_connection((server.host, server.port), timeout=10) as sock:
        sock.sendall(b"".join(f"GET /cache/pipe{i} HTTP/1.1\r\nHost: x\r\n\r\n".encode() for i in range(5)))
        buffer = bytearray()
        answers = [read_response(sock, buffer) for _ in range(5)]
    assert [(status, body) for status, _, body in answers] == [(200, str(i).encode()) for i in range(5)]


def test_chunked_put_is_read_whole(server: Server) -> None:
    connection = server.connection()
    try:
        parts = [b'{"chunked": ', b'"yes", "n": [', b"1, 2, 3]}"]
        connection.request(
            "PUT", "/cache/chunked", body=iter(parts), encode_chunked=True, headers={"Transfer-Encoding": "chunked"}
        )
        response = connection.getresponse()
        assert response.status == 201, response.read()
        response.read()
    finally:
        connection.close()
    assert server.request("GET", "/cache/chunked")[2] == b'{"chunked":"yes","n":[1,2,3]}'


def test_expect_100_continue(server: Server) -> None:
    body = b'{"expect": true}'
    with socket.create_connection((server.host, server.port), timeout=10) as sock:
        sock.sendall(
            b"PUT /cache/expect HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Expect: 100-continue\r\nContent-Length: %d\r\n\r\n" % len(body)
        )
        sock.settimeout(0.5)
        try:
            interim = sock.recv(100)
        except TimeoutError:
            interim = b""
        assert interim.startswith(b"HTTP/1.1 100 Continue\r\n\r\n"), interim  # before the body, both workers
        sock.settimeout(10)
        started = time.monotonic()
        sock.sendall(body)
        buffer = bytearray()
        status, _, answer = read_response(sock, buffer)
        if status == 100:
            status, _, answer = read_response(sock, buffer)
    assert status == 201, answer
    assert time.monotonic() - started < 1.0
    assert server.request("GET", "/cache/expect")[2] == b'{"expect":true}'


def test_a_12_mb_value_reaches_a_slow_reader_whole_and_once_and_the_connection_lives_on(server: Server) -> None:
    value = "x" * (12 * MiB)
    assert server.request("PUT", "/cache/big", value)[0] == 201
    expected = json.dumps(value).encode()
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16384)
        sock.settimeout(20)
        sock.connect((server.host, server.port))
        sock.sendall(b"GET /cache/big HTTP/1.1\r\nHost: x\r\n\r\n")
        received = bytearray()
        deadline = time.monotonic() + 30
        while b"\r\n\r\n" not in received:
            received += sock.recv(4096)
        head, _, body = bytes(received).partition(b"\r\n\r\n")
        length = int(
            next(line.split(b":")[1] for line in head.split(b"\r\n") if line.lower().startswith(b"content-length"))
        )
        body = bytearray(body)
        reads = 0
        while len(body) < length and time.monotonic() < deadline:
            chunk = sock.recv(65536)
            assert chunk, "connection closed before the whole body arrived"
            body += chunk
            reads += 1
            if reads % 8 == 0:
                time.sleep(0.005)  # a slow reader: the server's writes block
        assert length == len(expected) and bytes(body[:length]) == expected
        # Nothing after the body: no second response on the connection.
        sock.settimeout(0.5)
        try:
            extra = bytes(body[length:]) + sock.recv(65536)
        except TimeoutError:
            extra = bytes(body[length:])
        assert extra == b""
        # The same connection is still read: the next request is answered at
        # once, not left to the keep-alive timeout (the meinheld build's 0002).
        sock.settimeout(5)
        sock.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
        started = time.monotonic()
        status, _, answer = read_response(sock, bytearray())
        assert status == 200 and b'"status"' in answer and time.monotonic() - started < 4


def test_a_body_over_the_limit_is_413_and_the_server_goes_on(server: Server) -> None:
    too_big = b'"' + b"y" * (20 * MiB + 10) + b'"'
    try:
        status, _, answer = server.request("PUT", "/cache/toobig", raw=too_big, timeout=30)
        assert status == 413, answer
    except (ConnectionError, http.client.HTTPException):
        pass  # a server may also reset the connection after its 413
    assert server.request("GET", "/cache/toobig")[0] == 404
    assert server.request("GET", "/health")[0] == 200


def test_a_value_over_the_value_limit_is_a_json_413(server: Server) -> None:
    status, _, answer = server.request("PUT", "/cache/toolarge", raw=json.dumps("z" * (16 * MiB)).encode(), timeout=30)
    assert status == 413 and json.loads(answer)["error"] == "value_too_large"


@pytest.mark.parametrize("kind", worker_kinds())
def test_every_request_is_one_access_log_line_when_it_is_on(kind: str, start_server: Callable[..., Server]) -> None:
    server = start_server("--worker", kind, env={"CACHEGRID_ACCESS_LOG": "true"})
    marker = f"/cache/logged-{time.monotonic_ns()}"
    for _ in range(3):
        server.request("GET", marker)
    deadline = time.monotonic() + 10  # lines are written in batches, at least once a second
    while time.monotonic() < deadline:
        lines = [line for line in server.output().splitlines() if marker in line]
        if len(lines) >= 3:
            break
        time.sleep(0.1)
    assert len(lines) == 3 and all(f'"GET {marker} HTTP/1.1" 404 ' in line for line in lines), lines
    assert '"- - ' not in server.output() and "- - HTTP/1.0" not in server.output()


def test_the_access_log_is_off_by_default(server: Server) -> None:
    marker = f"/cache/unlogged-{time.monotonic_ns()}"
    server.request("GET", marker)
    time.sleep(1.5)  # past the access log's batch interval
    assert marker not in server.output()


# -- process life ---------------------------------------------------------------


@pytest.mark.parametrize("kind", worker_kinds())
def test_kill_9_of_the_worker_brings_a_new_empty_one(kind: str, start_server: Callable[..., Server]) -> None:
    server = start_server("--worker", kind)
    server.request("PUT", "/cache/before", 1)
    [worker] = server.workers()
    os.kill(worker, signal.SIGKILL)
    server.wait_healthy(timeout=10)  # fails, with the log, if the master dies or nothing answers
    assert server.process.poll() is None, "the master died"
    assert server.workers() and server.workers() != [worker]
    assert server.request("GET", "/cache/before")[0] == 404  # the cache went with the worker


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time of a process so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@pytest.mark.parametrize("kind", worker_kinds())
def test_sigterm_finishes_the_request_in_flight_and_exits_0(kind: str, start_server: Callable[..., Server]) -> None:
    # A request that takes seconds on any machine: 3 million engine operations.
    server = start_server("--worker", kind, env={"CACHEGRID_LOADTEST_MAX_OPERATIONS": "3000000"})
    answer: dict[str, Any] = {}

    def slow_request() -> None:
        try:
            answer["result"] = server.request(
                "POST", "/test/load?num_operations=3000000&operation_type=mixed", timeout=90
            )
        except Exception as error:  # reported by the assertion below
            answer["error"] = error

    [worker] = server.workers()
    idle = cpu_seconds(worker)
    thread = threading.Thread(target=slow_request)
    thread.start()
    # The worker burning CPU says the load test is running: nothing else is.
    deadline = time.monotonic() + 30
    while cpu_seconds(worker) - idle < 0.3 and time.monotonic() < deadline:
        time.sleep(0.02)
    assert thread.is_alive(), answer  # still in flight when the signal comes
    server.process.send_signal(signal.SIGTERM)
    thread.join(timeout=90)
    assert "error" not in answer, answer
    status, _, body = answer["result"]
    report = json.loads(body)
    assert status == 200 and report["num_operations"] == 3000000
    # Longer than the 1 s meinheld grants by itself: the graceful stop is ours.
    assert report["duration_seconds"] > 1.0
    assert server.process.wait(timeout=40) == 0


@pytest.mark.parametrize("kind", worker_kinds())
def test_a_silent_worker_is_replaced_after_the_timeout(kind: str, start_server: Callable[..., Server]) -> None:
    server = start_server("--worker", kind, env={"CACHEGRID_TIMEOUT": "2"})
    [worker] = server.workers()
    os.kill(worker, signal.SIGSTOP)  # no more heartbeats
    try:
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and server.workers() in ([worker], []):
            time.sleep(0.2)
        assert server.workers() and worker not in server.workers(), server.output()
    finally:
        try:
            os.kill(worker, signal.SIGKILL)
        except ProcessLookupError:
            pass
    server.wait_healthy(timeout=15)


@pytest.mark.parametrize("kind", worker_kinds())
def test_sigttin_does_not_start_a_second_worker(kind: str, start_server: Callable[..., Server]) -> None:
    server = start_server("--worker", kind)
    os.kill(server.process.pid, signal.SIGTTIN)
    time.sleep(2)
    assert len(server.workers()) == 1
    assert "exactly one worker" in server.output()


def test_web_concurrency_is_ignored_by_serve(start_server: Callable[..., Server]) -> None:
    server = start_server(env={"WEB_CONCURRENCY": "3"})
    time.sleep(1)
    assert len(server.workers()) == 1


def test_serve_refuses_more_workers() -> None:
    result = subprocess.run([CLI, "serve", "--workers", "2"], capture_output=True, text=True, timeout=30)
    assert result.returncode == 2 and "exactly one worker" in result.stderr


@pytest.mark.parametrize(("extra", "env"), [(["-w", "2"], {}), ([], {"WEB_CONCURRENCY": "3"})])
def test_plain_gunicorn_with_our_config_refuses_more_workers(extra: list[str], env: dict[str, str]) -> None:
    environment = {k: v for k, v in os.environ.items() if not k.startswith("CACHEGRID_")} | env
    command = [
        str(Path(sys.executable).with_name("gunicorn")),
        "-c",
        "python:cachegrid.daemon.server",
        "--bind",
        f"127.0.0.1:{free_port()}",
        *extra,
        "cachegrid.daemon.wsgi:app",
    ]
    process = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=environment, start_new_session=True
    )
    try:
        _, stderr = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)
    assert process.returncode != 0
    assert "exactly one worker" in stderr


def test_unsafe_or_unknown_worker_is_refused_with_the_reason() -> None:
    result = subprocess.run([CLI, "serve", "--worker", "eventlet"], capture_output=True, text=True, timeout=30)
    assert result.returncode == 3 and "worker" in result.stderr


# -- settings through a real start ----------------------------------------------------


def test_settings_precedence_flag_over_env_over_toml_over_default(
    tmp_path: Path, start_server: Callable[..., Server]
) -> None:
    config = tmp_path / "node.toml"
    config.write_text(
        '[cachegrid]\nmax_size = 7\nnode_id = "from-toml"\neviction_policy = "lfu"\nmax_key_length = 100\n'
    )
    server = start_server(
        "--config",
        str(config),
        "--max-size",
        "9",
        env={"CACHEGRID_NODE_ID": "from-env", "CACHEGRID_MAX_KEY_LENGTH": "50"},
    )
    stats = json.loads(server.request("GET", "/stats")[2])
    assert stats["max_size"] == 9  # flag
    assert stats["node_id"] == "from-env"  # environment
    assert stats["policy"] == "lfu"  # file
    assert stats["max_memory_bytes"] == 512 * MiB  # default
    assert server.request("PUT", "/cache/" + "k" * 51, 1)[0] == 400  # environment beats file


def test_a_bad_setting_stops_start_up_with_one_line(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CACHEGRID_")} | {"CACHEGRID_MAX_SIZE": "-5"}
    result = subprocess.run(
        [CLI, "serve", "--port", str(free_port())], capture_output=True, text=True, timeout=30, env=env
    )
    assert result.returncode == 3
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "max_size" in lines[0] and "CACHEGRID_MAX_SIZE" in lines[0]
    assert "Traceback" not in result.stderr


def test_auto_is_cachegrids_meinheld_or_says_why_not(start_server: Callable[..., Server]) -> None:
    from cachegrid.daemon.workers import meinheld_problem
    from cachegrid.meinheld_build import missing_tools

    output = start_server().output()
    problem = meinheld_problem()
    if problem is None:
        assert "worker meinheld" in output and "leak" not in output
    else:
        assert "worker gthread" in output and f"not meinheld: {problem}" in output
    # Where the build can run (a C compiler), make setup must have produced a usable meinheld.
    assert missing_tools() is not None or problem is None, problem


@pytest.mark.parametrize("kind", worker_kinds())
def test_access_log_can_be_switched_off(kind: str, start_server: Callable[..., Server]) -> None:
    server = start_server("--worker", kind, env={"CACHEGRID_ACCESS_LOG": "false"})
    for _ in range(3):
        server.request("GET", "/cache/unlogged")
    time.sleep(0.3)
    assert "/cache/unlogged" not in server.output() and "/health" not in server.output()
