"""The worker gives its heap's free memory back to the OS (daemon/heap.py),
on real servers: after a fill and a clear, its RSS falls back near where it
started once a trim has run; with ``memory_trim_interval = 0`` it stays up,
which is glibc keeping the freed memory, and what the trim is for.

No fixed sleeps for the trim: the test waits for /stats' trim counter."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

import pytest

from cachegrid.testing import ServerProcess as Server

from .test_worker_hardening import rss

ENTRIES = 40_000
CHUNK = 1_000
VALUE = "x" * 1_000  # past pymalloc's 512 bytes: every value is glibc's to keep or give back
WAIT = 60.0  # seconds for the trims to show; a trim takes milliseconds, the interval is half a second
MiB = 1024 * 1024


def stats(server: Server) -> dict[str, Any]:
    status, _, body = server.request("GET", "/stats")
    assert status == 200, body
    return json.loads(body)


def fill(server: Server) -> None:
    for chunk in range(ENTRIES // CHUNK):
        items = {f"trim:{chunk}:{i}": VALUE for i in range(CHUNK)}
        status, _, body = server.request("POST", "/cache/batch/set", {"items": items})
        assert status == 200, body
    assert stats(server)["current_size"] == ENTRIES


def clear(server: Server) -> None:
    status, _, body = server.request("DELETE", "/cache?confirm=true")
    assert status == 200 and json.loads(body)["cleared"] == ENTRIES, body


def settled_trims(server: Server, since: float) -> dict[str, Any]:
    """/stats once a trim that began after ``since`` found nothing more to
    give back (a cleared cache is freed in slices: a few trims may be needed)."""
    deadline = time.monotonic() + WAIT
    while time.monotonic() < deadline:
        document = stats(server)
        last_at = document["memory_trim_last_at"]
        if last_at is not None and last_at > since and document["memory_trim_last_released_bytes"] < MiB:
            return document
        time.sleep(0.1)
    raise AssertionError(f"no settled trim within {WAIT} s: {document}\n{server.output()}")


@pytest.mark.slow
def test_the_worker_gives_freed_memory_back_after_a_clear(start_server: Callable[..., Server]) -> None:
    env = {"CACHEGRID_MAX_SIZE": str(2 * ENTRIES), "CACHEGRID_MEMORY_TRIM_INTERVAL": "0.5"}
    server = start_server(env=env)
    [worker] = server.workers()
    assert stats(server)["memory_trim_enabled"] is True
    started = rss(worker)
    fill(server)
    full = rss(worker)
    grown = full - started
    assert grown > 30 * MiB, (started, full)  # 40,000 values of 1 KB: the heap did grow
    cleared_at = time.time()
    clear(server)
    document = settled_trims(server, cleared_at)
    after = rss(worker)
    assert full - after > grown // 2, (started, full, after, document)
    assert document["memory_trims"] >= 1 and document["memory_trim_released_bytes"] > grown // 2, document
    # Nothing happens any more: an idle server does not trim.
    trims = document["memory_trims"]
    server.request("GET", "/health")
    time.sleep(1.5)  # three intervals
    assert stats(server)["memory_trims"] == trims

    # The same without trimming: glibc keeps the freed memory inside its heap.
    waited = time.time() - cleared_at
    control = start_server(env=env | {"CACHEGRID_MEMORY_TRIM_INTERVAL": "0"})
    [control_worker] = control.workers()
    assert stats(control)["memory_trim_enabled"] is False and "memory_trims" not in stats(control)
    control_started = rss(control_worker)
    fill(control)
    control_full = rss(control_worker)
    clear(control)
    time.sleep(waited)
    control_after = rss(control_worker)
    assert control_full - control_after < (control_full - control_started) // 2, (
        control_started,
        control_full,
        control_after,
    )
