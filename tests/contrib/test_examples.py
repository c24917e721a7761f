"""The example apps of examples/ (one per framework), run as the README
says, against a real server (CACHEGRID_URL names it instead of make serve's
127.0.0.1:8080)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from cachegrid.testing import ServerProcess as Server
from cachegrid.testing import free_port

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
START_TIMEOUT = 60.0


def environment(server: Server) -> dict[str, str]:
    return {**os.environ, "CACHEGRID_URL": server.url}


def fetch(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=10) as answer:
        return json.loads(answer.read())


@contextmanager
def web_app(command: list[str], port: int, server: Server) -> Iterator[str]:
    """The app ``command`` starts, once it answers on ``port``; stopped after the block."""
    process = subprocess.Popen(
        command,
        cwd=ROOT,
        env=environment(server),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            try:
                urllib.request.urlopen(base + "/visits", timeout=2).close()
                break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    process.kill()
                    raise AssertionError(f"{command} did not start:\n{process.communicate()[0].decode()}") from None
                time.sleep(0.2)
        yield base
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


def test_the_django_example(live: Server) -> None:
    port = free_port()
    command = [str(BIN / "python"), "examples/django_app.py", "runserver", f"127.0.0.1:{port}", "--noreload"]
    with web_app(command, port, live) as base:
        first = fetch(base + "/")
        assert fetch(base + "/") == first  # the cached page
        counted = fetch(base + "/visits")["visits"]
        assert fetch(base + "/visits")["visits"] == counted + 1


def test_the_flask_example(live: Server) -> None:
    port = free_port()
    command = [str(BIN / "flask"), "--app", "examples/flask_app.py", "run", "--port", str(port)]
    with web_app(command, port, live) as base:
        first = fetch(base + "/")
        assert fetch(base + "/") == first
        square = fetch(base + "/square/12")
        assert square["square"] == 144 and fetch(base + "/square/12") == square  # memoized
        counted = fetch(base + "/visits")["visits"]
        assert fetch(base + "/visits")["visits"] == counted + 1


def test_the_dogpile_example(live: Server) -> None:
    def run() -> list[str]:
        done = subprocess.run(
            [str(BIN / "python"), "examples/dogpile_app.py"],
            cwd=ROOT,
            env=environment(live),
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        )
        return done.stdout.splitlines()

    first, second = run(), run()
    assert first[3] == "report(2026) invalidated: the next call makes it again"
    made_first, made_second = made_at(first[:3]), made_at(second[:3])
    assert made_first[0] == made_first[2]  # 2025 made once, then read from the region
    assert made_second[0] == made_second[2] == made_first[0]  # the next run reads the first run's value
    assert made_second[1] != made_first[1]  # 2026 was invalidated by the first run: made again


def made_at(lines: list[str]) -> list[str]:
    return [re.search(r"made at ([0-9.]+)", line).group(1) for line in lines]  # type: ignore[union-attr]


def test_the_basic_usage_example(live: Server) -> None:
    done = subprocess.run(
        [str(BIN / "python"), "basic_usage.py"],  # from its folder, as the product description runs it
        cwd=ROOT / "examples" / "python",
        env=environment(live),
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    lines = done.stdout.splitlines()
    assert lines[0] == "User: {'name': 'Alice', 'age': 30}"
    assert lines[1] in ("Session TTL: 3600 s", "Session TTL: 3599 s")
    assert lines[2] == (
        "Products: {'product:1': {'name': 'Widget', 'price': 19.99}, 'product:2': {'name': 'Gadget', 'price': 29.99}}"
    )
    size = int(lines[3].removeprefix("Cache size: "))  # the server may hold the other examples' keys too
    assert size >= 5 and lines[4] == "App name: MyApp"
