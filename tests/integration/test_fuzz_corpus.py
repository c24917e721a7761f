"""The fuzz corpus replayed against the default server, as the regular build
serves it (no sanitizers): every input of ``fuzz/corpus`` (the minimized
corpus of the fuzz campaigns) and ``fuzz/regressions`` (the inputs that once
found a bug) is sent in the pieces its cut points make, to a real meinheld
worker on 127.0.0.1. The test fails on a crash (the worker restarted or a
traceback logged), a hang (no close within seconds of the input's end) or a
5xx answer other than the meant ones (``fuzz/wire.py``). Bounded: a few
hundred short connections, a few seconds.

The layout of an input, and how answers are read, are ``fuzz/wire.py``'s
(the fuzz harnesses share them); the first tests pin that module without a
server."""

from __future__ import annotations

import select
import socket
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from cachegrid.daemon.workers import meinheld_problem
from cachegrid.testing import ServerProcess as Server
from cachegrid.testing import running
from fuzz import wire

FUZZ = Path(__file__).resolve().parent.parent.parent / "fuzz"
HANG_SECONDS = 5.0
PIECE_GAP = 0.002  # without the fuzz build's read counter: a pause lets each piece be read alone, mostly


def inputs() -> list[Path]:
    return sorted(path for folder in ("corpus", "regressions") for path in (FUZZ / folder).iterdir() if path.is_file())


def test_an_input_names_its_cut_points_before_its_bytes() -> None:
    raw = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"
    assert wire.split(wire.encode(raw)) == [raw]
    assert wire.split(wire.encode(raw, [20, 3, 3])) == [raw[:3], raw[3:20], raw[20:]]
    assert b"".join(wire.split(wire.encode(raw, [0, len(raw)]))) == raw
    assert wire.split(b"\x07\x01") == [b"\x07\x01"]  # too short for its cuts: one piece
    assert wire.split(b"") == []
    with pytest.raises(ValueError):
        wire.encode(raw, list(range(8)))


def test_answers_are_read_one_after_another_and_only_unmeant_5xx_are_faults() -> None:
    answers = (
        b"HTTP/1.1 200 OK\r\nContent-Length: 19\r\n\r\nHTTP/1.1 500 inside"
        b"HTTP/1.0 400 Bad Request\r\ncontent-length: 0\r\n\r\n"
        b"HTTP/1.1 502 Bad Gateway\r\n\r\n"
    )
    assert wire.statuses(answers) == [200, 400, 502]
    assert wire.statuses(b"garbage HTTP/1.1 500 x\r\n\r\n") == []
    assert wire.faults([200, 400, 500, 501, 503, 505, 504]) == [500, 504]


def test_the_corpus_and_the_seeds_are_there() -> None:
    assert len(list((FUZZ / "seeds").iterdir())) >= 40
    assert inputs(), "fuzz/corpus and fuzz/regressions are empty"


def exchange(address: tuple[str, int], pieces: list[bytes]) -> bytes:
    received = b""
    with socket.create_connection(address, timeout=HANG_SECONDS) as sock:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            for number, piece in enumerate(pieces):
                if number:
                    time.sleep(PIECE_GAP)
                sock.sendall(piece)
            sock.shutdown(socket.SHUT_WR)
        except OSError:  # reset, broken pipe, not connected
            pass  # the server refused early and closed: its answer is read below
        deadline = time.monotonic() + HANG_SECONDS
        while True:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([sock], [], [], left)[0]:
                raise AssertionError(f"no close {HANG_SECONDS} s after the input ended; got {received[:200]!r}")
            try:
                chunk = sock.recv(65536)
            except ConnectionResetError:
                return received
            if not chunk:
                return received
            received += chunk


# Bugs the fuzzers found whose fixes are proposed (fuzz/proposed) but not yet
# in the product's patch set: an input that breaks the server the way one of
# them does is counted, and the test ends as an expected failure naming the
# patch; any other failure fails it. Remove an entry once its fix has landed.
OPEN_FINDINGS: dict[str, Callable[[bytes], bool]] = {
    # None now: the trailer crash is fixed by patch 0019, the refused upgrade's
    # pending exception by 0022. A finding not yet fixed goes here, named by
    # its proposed patch, with a test of the inputs it explains.
}


def alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def broken(server: Server, workers: list[int]) -> str | None:
    """How the server is broken after an input, or None."""
    if not all(alive(pid) for pid in workers):
        return "the worker died (it crashed)"
    try:
        status = server.request("GET", "/health")[0]
    except OSError as error:
        return f"GET /health failed: {error}"
    return None if status == 200 else f"GET /health answered {status}"


def wait_for_worker(server: Server) -> list[int]:
    deadline = time.monotonic() + 30
    while not (workers := server.workers()) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert workers, "no worker"
    return workers


@pytest.mark.skipif(meinheld_problem() is not None, reason=meinheld_problem() or "")
def test_the_default_server_survives_the_corpus_without_a_hang_or_a_5xx() -> None:
    env = {"CACHEGRID_LOADTEST_ENABLED": "false", "CACHEGRID_MAX_SIZE": "1000"}
    known: dict[str, list[str]] = {}
    with running("--worker", "meinheld", env=env, graceful=False) as server:
        workers = wait_for_worker(server)
        address = (server.host, server.port)
        replayed = 0
        for path in inputs():
            data = path.read_bytes()
            if wire.STREAM_PATH in data:
                continue  # an event stream never ends by itself (see fuzz/wire.py)
            name = str(path.relative_to(FUZZ))
            received = exchange(address, wire.split(data))
            bad = wire.faults(wire.statuses(received))
            assert not bad, f"{name}: answered {bad}: {received[:300]!r}"
            replayed += 1
            problem = broken(server, workers)
            if problem is None:
                continue
            raw = b"".join(wire.split(data))
            patch = next((patch for patch, matches in OPEN_FINDINGS.items() if matches(raw)), None)
            assert patch is not None, f"{name}: {problem}"
            known.setdefault(patch, []).append(name)
            server.wait_healthy()  # a crashed worker is restarted by gunicorn; a pending error is spent
            workers = wait_for_worker(server)
            assert broken(server, workers) is None
        assert replayed > 0
        assert "Traceback" not in server.output() or known
    if known:
        pytest.xfail(
            "; ".join(f"fuzz/proposed/{patch} not landed: {', '.join(names)}" for patch, names in known.items())
        )
