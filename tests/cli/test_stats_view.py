"""The live stats view: the pure ``render`` (to a file-backed console), the
rates of ``History``, and ``cachegrid stats --watch`` on a real terminal (a
pty) ended by Ctrl-C."""

from __future__ import annotations

import io
import os
import pty
import select
import signal
import subprocess
import time
from typing import Any

from rich.console import Console

from cachegrid.cli.stats_view import History, line, render, sparkline
from cachegrid.client import SyncCacheGridClient
from cachegrid.config import MiB
from cachegrid.testing import CLI
from cachegrid.testing import ServerProcess as Server


def stats(uptime: float, **counters: Any) -> dict[str, Any]:
    document = {
        "hits": 0,
        "misses": 0,
        "sets": 0,
        "deletes": 0,
        "evictions": 0,
        "expired": 0,
        "rejected_too_large": 0,
        "rejected_full": 0,
        "current_size": 10,
        "max_size": 100,
        "memory_usage_bytes": 128 * MiB,
        "max_memory_bytes": 512 * MiB,
        "hit_ratio": 0.0,
        "policy": "lru",
        "uptime_seconds": uptime,
        "memory_usage_mb": 128.0,
        "max_memory_mb": 512.0,
        "node_id": "node-1",
    }
    document.update(counters)
    return document


def text_of(renderable: Any) -> str:
    console = Console(file=io.StringIO(), width=100)
    console.print(renderable)
    return console.file.getvalue()  # type: ignore[attr-defined]


def test_render_shows_hit_ratio_rates_and_the_memory_bar() -> None:
    history = History()
    history.add(stats(10.0, hits=100, misses=100, sets=50, evictions=5, expired=1, hit_ratio=0.5))
    latest = stats(12.0, hits=400, misses=200, sets=150, deletes=50, evictions=25, expired=11, hit_ratio=0.6667)
    history.add(latest)
    text = text_of(render(latest, history))
    assert "hit ratio" in text and "66.7 % since start" in text
    assert "75.0 % last refresh" in text  # 300 hits of 400 lookups between the two
    assert "ops/s" in text and "275.0" in text  # (300 + 100 + 100 + 50) / 2 s
    assert "128.0 MiB / 512.0 MiB (25.0 %)" in text
    assert "━" in text  # the bar
    assert "10 / 100" in text
    assert "evictions/s" in text and "10.0" in text
    assert "expirations/s" in text and "5.0" in text
    assert "node-1" in text and "lru" in text


def test_render_of_the_first_refresh_has_no_rates_yet() -> None:
    history = History()
    first = stats(1.0, hits=5)
    history.add(first)
    text = text_of(render(first, history))
    assert "ops/s" in text and "-" in text
    assert "last refresh" not in text


def test_history_keeps_the_last_refreshes_and_restarts_with_the_server() -> None:
    history = History(size=3)
    for second in range(6):
        history.add(stats(float(second), sets=10 * second))
    assert history.series("sets") == [10.0, 10.0, 10.0]
    history.add(stats(0.5, sets=1))  # uptime went back: a new server, new counters
    assert history.rate("sets") is None and history.series("sets") == []


def test_sparkline_scales_to_the_largest_value() -> None:
    assert sparkline([0, 5, 10]) == "▁▅█"
    assert sparkline([0, 0]) == "▁▁"
    assert sparkline([]) == ""


def test_plain_line_names_every_value() -> None:
    history = History()
    history.add(stats(1.0))
    history.add(stats(2.0, sets=20))
    assert line(stats(2.0, sets=20), history).split() == [
        "uptime=2.0",
        "ops/s=20.0",
        "hit_ratio=0.0000",
        "memory_mb=128.000/512.000",
        "items=10/100",
        "evictions/s=0.0",
        "expirations/s=0.0",
    ]


def test_render_accepts_a_real_stats_document(cli_server: Server) -> None:
    with SyncCacheGridClient([cli_server.url]) as client:
        history = History()
        history.add(client.stats())
        client.set("stats-view:k", 1)
        client.get("stats-view:k")
        latest = client.stats()
        history.add(latest)
    text = text_of(render(latest, history))
    assert "hit ratio" in text and "ops/s" in text and "MiB (" in text


def test_watch_on_a_terminal_ends_cleanly_on_ctrl_c(cli_server: Server) -> None:
    parent, child = pty.openpty()
    environment = {k: v for k, v in os.environ.items() if not k.startswith("CACHEGRID_")}
    environment.update(CACHEGRID_URL=cli_server.url, COLUMNS="100", LINES="30", TERM="xterm")
    process = subprocess.Popen(
        [CLI, "stats", "--watch", "--interval", "0.1"],
        stdin=subprocess.DEVNULL,
        stdout=child,
        stderr=child,
        env=environment,
        start_new_session=True,
        # a runner started with SIGINT ignored would pass that on: Ctrl-C must work
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    os.close(child)
    output = b""
    try:
        output += read_until(parent, lambda seen: seen.count(b"ops/s") >= 3, timeout=20)
        process.send_signal(signal.SIGINT)
        process.wait(timeout=10)
        output += read_until(parent, lambda seen: False, timeout=0.5)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=10)
        os.close(parent)
    text = output.decode(errors="replace")
    assert process.returncode == 0, text
    assert "Traceback" not in text and "KeyboardInterrupt" not in text
    assert "hit ratio" in text and "memory" in text


def read_until(fd: int, done: Any, timeout: float) -> bytes:
    """What the pty shows until ``done(seen)`` or ``timeout`` seconds or its end."""
    seen = b""
    deadline = time.monotonic() + timeout
    while not done(seen) and time.monotonic() < deadline:
        ready, _, _ = select.select([fd], [], [], max(0.0, min(0.2, deadline - time.monotonic())))
        if not ready:
            continue
        try:
            chunk = os.read(fd, 65536)
        except OSError:  # EIO: every process holding the terminal exited
            break
        if not chunk:
            break
        seen += chunk
    return seen
