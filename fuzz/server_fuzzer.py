"""Whole-server fuzz harness: CacheGrid's app on a sanitizer build of our meinheld, in this process.

Run it from ``fuzz/.venv`` (``fuzz/build.py`` makes it) the way ``make fuzz``
does, with atheris's AddressSanitizer runtime preloaded and Python's own
allocator off, so that every object meinheld frees goes back to malloc where
ASan watches it::

    LD_PRELOAD=$(fuzz/.venv/bin/python -c 'import atheris; print(atheris.path())')/asan_with_fuzzer.so \\
    PYTHONMALLOC=malloc ASAN_OPTIONS=detect_leaks=0 \\
    fuzz/.venv/bin/python fuzz/server_fuzzer.py -dict=fuzz/http.dict fuzz/build/server-corpus fuzz/corpus

How it works: meinheld's loop runs the app in a thread of its own, listening
on 127.0.0.1 (an ephemeral port); meinheld's epoll wait releases the GIL.
For each input (the layout of ``fuzz/wire.py``: the cut points come from the
input, so the fuzzer chooses them) the harness opens a connection and sends
the pieces one at a time, waiting after each until meinheld has read all it
was sent (the fuzz build's ``server._fuzz_bytes_read()``), so that every
piece is parsed by a read of its own: a header name split just before its
colon arrives as two reads, as TCP can deliver it. Then it half-closes and
reads every answer up to the server's close. An input fails (atheris keeps
it as a crash file) when

- ASan or UBSan report anything (a memory error or undefined behaviour in
  meinheld's C, the parser included): the process aborts;
- the server does not close the connection within ``FUZZ_HANG_SECONDS``
  (default 5) of the half-close, or meinheld's thread has died: a hang;
- an answer is a 5xx other than the three meant ones (``wire.faults``);
- ``GET /health``, sent after every input on a keep-alive connection of its
  own, does not get a 200: the input left the server broken for others (a
  Python exception left pending in meinheld's thread fails the next request,
  whoever sends it), and the crash file is the input that did it.

Event streams (``/events``) never end by themselves, so the app is wrapped
to answer 404 for them; ``POST /test/load`` is off in the settings.
"""

from __future__ import annotations

import os
import select
import socket
import sys
import threading
import time
from pathlib import Path
from typing import Any

import atheris

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from meinheld import server  # noqa: E402  (after atheris: its coverage hooks first)

from cachegrid.config import Settings  # noqa: E402
from cachegrid.daemon.app import create_app  # noqa: E402
from fuzz import wire  # noqa: E402

HANG_SECONDS = float(os.environ.get("FUZZ_HANG_SECONDS", "5"))
PIECE_WAIT = 0.25  # meinheld stops reading while the app runs or after an error: then move on
BODY_LIMIT = 64 * 1024


class Hang(Exception):
    """The server neither answered nor closed in time, or its loop died."""


class ServerFault(Exception):
    """The server answered a 5xx that is not one of the meant ones."""


def without_streams(app: Any) -> Any:
    def wrapped(environ: dict[str, Any], start_response: Any) -> Any:
        if environ.get("PATH_INFO", "").startswith(wire.STREAM_PATH.decode()):
            start_response("404 Not Found", [("Content-Type", "application/json"), ("Content-Length", "2")])
            return [b"{}"]
        return app(environ, start_response)

    return wrapped


def start_server() -> tuple[tuple[str, int], threading.Thread]:
    settings = Settings(
        max_size=1000,
        max_body_size=BODY_LIMIT,
        loadtest_enabled=False,
        access_log=False,
        cleanup_interval=1,
    )
    app = without_streams(create_app(settings, worker="meinheld"))
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", 0))
    listener.listen(128)
    listener.setblocking(False)
    server.set_keepalive(5)
    server.set_access_logger(None)
    server.set_max_content_length(BODY_LIMIT)
    server.set_listen_socket([listener.fileno()])
    loop = threading.Thread(target=server.run, args=(app,), name="meinheld", daemon=True)
    loop.start()
    start_server.listener = listener  # type: ignore[attr-defined]  # kept open for the loop
    return listener.getsockname(), loop


def drain(sock: socket.socket, received: bytearray) -> bool:
    """Read what has arrived; whether the server has closed its side."""
    while select.select([sock], [], [], 0)[0]:
        try:
            chunk = sock.recv(65536)
        except (ConnectionResetError, BrokenPipeError):
            return True
        if not chunk:
            return True
        received += chunk
    return False


def exchange(address: tuple[str, int], pieces: list[bytes]) -> bytes:
    """Send the pieces one read apart, half-close, return all that came back."""
    received = bytearray()
    base = server._fuzz_bytes_read()
    sent = 0
    with socket.create_connection(address, timeout=HANG_SECONDS) as sock:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        closed = False
        for piece in pieces:
            try:
                sock.sendall(piece)
            except (ConnectionResetError, BrokenPipeError):
                closed = True
                break
            sent += len(piece)
            deadline = time.monotonic() + PIECE_WAIT
            while server._fuzz_bytes_read() - base < sent and time.monotonic() < deadline:
                if drain(sock, received):
                    closed = True
                    break
                time.sleep(0.00005)
            if closed:
                break
        try:
            sock.shutdown(socket.SHUT_WR)
        except OSError:
            closed = True
        deadline = time.monotonic() + HANG_SECONDS
        while not closed:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([sock], [], [], left)[0]:
                raise Hang(
                    f"no close from the server {HANG_SECONDS} s after the input ended; got {bytes(received[:200])!r}"
                )
            closed = drain(sock, received)
    return bytes(received)


class HealthProbe:
    """``GET /health`` on one keep-alive connection, opened again when closed."""

    REQUEST = b"GET /health HTTP/1.1\r\nHost: fuzz\r\n\r\n"

    def __init__(self, address: tuple[str, int]) -> None:
        self.address = address
        self.sock: socket.socket | None = None

    def status(self) -> int:
        for _ in range(2):  # a connection the server closed meanwhile: once more on a new one
            if self.sock is None:
                self.sock = socket.create_connection(self.address, timeout=HANG_SECONDS)
            received = b""
            try:
                self.sock.sendall(self.REQUEST)
                while b"\r\n\r\n" not in received or not wire.statuses(received):
                    chunk = self.sock.recv(65536)
                    if not chunk:
                        break
                    received += chunk
            except TimeoutError as error:
                raise Hang("GET /health got no answer") from error
            except OSError:
                pass
            if codes := wire.statuses(received):
                if b"Connection: close" in received:
                    self.sock.close()
                    self.sock = None
                return codes[0]
            self.sock.close()
            self.sock = None
        return 0


def check_setup() -> None:
    """Refuse a run that would hide what it is meant to find."""
    if os.environ.get("PYTHONMALLOC") != "malloc":
        sys.exit("server_fuzzer: run with PYTHONMALLOC=malloc (pymalloc hides use-after-free from ASan)")
    if not hasattr(server, "_fuzz_bytes_read"):
        sys.exit("server_fuzzer: this meinheld is not the fuzz build (python fuzz/build.py makes fuzz/.venv)")


def main() -> None:
    check_setup()
    address, loop = start_server()
    sys.setswitchinterval(0.0005)  # hand the GIL to meinheld's thread promptly
    probe = HealthProbe(address)

    def test_one_input(data: bytes) -> None:
        if not loop.is_alive():
            raise Hang("meinheld's loop thread has died")
        received = exchange(address, wire.split(data))
        bad = wire.faults(wire.statuses(received))
        if bad:
            raise ServerFault(f"answered {bad}: {received[:300]!r}")
        health = probe.status()
        if health != 200:
            raise ServerFault(f"GET /health answered {health} after this input")

    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
