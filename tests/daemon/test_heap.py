"""The heap trimmer (cachegrid/daemon/heap.py): it trims only after work, is
off at interval 0 and without glibc, stops at once, and calls C through a
handle that releases the GIL. The RSS it gives back on a real server is in
tests/integration/test_memory_trim.py."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import falcon.testing
import pytest

from cachegrid.config import ConfigError, load_settings
from cachegrid.daemon.app import create_app
from cachegrid.daemon.heap import RSS_STEP, HeapTrimmer, engine_activity, find_malloc_trim, start_trimmer, trim_fields
from cachegrid.engine import Cache

MALLOC_TRIM, ORIGIN = find_malloc_trim()
needs_glibc = pytest.mark.skipif(MALLOC_TRIM is None, reason=ORIGIN)
THREAD = "cachegrid-heap-trim"


@pytest.fixture
def cache() -> Cache:
    return Cache("lru", max_size=10_000)


def settle(trimmer: HeapTrimmer) -> None:
    """Tick until a tick does not trim: the trims after work (and the looks
    again after a trim that gave back much) come to an end."""
    for _ in range(50):
        if not trimmer.maybe_trim():
            return
    raise AssertionError(f"still trimming after 50 ticks: {trim_fields(trimmer)}")


@needs_glibc
def test_nothing_done_means_no_trim(cache: Cache) -> None:
    trimmer = HeapTrimmer(60, engine_activity(cache), MALLOC_TRIM)
    assert not trimmer.maybe_trim()  # nothing since it was made
    cache.set("k", b"1")
    assert trimmer.maybe_trim() and trimmer.trims == 1
    settle(trimmer)
    trims = trimmer.trims
    for _ in range(5):
        assert not trimmer.maybe_trim()
    cache.stats(), cache.peek_entry("k")  # looking is not work
    assert not trimmer.maybe_trim() and trimmer.trims == trims
    cache.get("absent")  # a miss is
    assert trimmer.maybe_trim() and trimmer.trims == trims + 1


@needs_glibc
def test_every_kind_of_engine_work_counts(cache: Cache) -> None:
    cache.set("k", b"1", ttl=0.05)
    trimmer = HeapTrimmer(60, engine_activity(cache), MALLOC_TRIM)
    for work in (
        lambda: cache.get("k"),
        lambda: cache.delete("k"),
        lambda: cache.set("j", b"2"),
        lambda: cache.clear(),
    ):
        settle(trimmer)
        work()
        assert trimmer.maybe_trim()


@needs_glibc
def test_a_grown_rss_counts_as_work_without_the_engine(cache: Cache) -> None:
    trimmer = HeapTrimmer(60, engine_activity(cache), MALLOC_TRIM)
    settle(trimmer)
    held = b"x" * (8 * RSS_STEP)  # written, so resident: what a large request body leaves
    assert trimmer.maybe_trim()
    del held


@needs_glibc
def test_the_fields_report_each_trim(cache: Cache) -> None:
    trimmer = HeapTrimmer(2.5, engine_activity(cache), MALLOC_TRIM)
    fields = trim_fields(trimmer)
    assert fields["memory_trim_enabled"] is True and fields["memory_trim_interval_seconds"] == 2.5
    assert (fields["memory_trims"], fields["memory_trim_last_at"]) == (0, None)
    before = time.time()
    cache.set("k", b"1")
    assert trimmer.maybe_trim()
    fields = trim_fields(trimmer)
    assert fields["memory_trims"] == 1 and fields["memory_trim_last_at"] >= round(before, 3) - 0.001
    assert fields["memory_trim_last_seconds"] >= 0 and fields["memory_trim_last_released_bytes"] >= 0
    assert fields["memory_trim_released_bytes"] == fields["memory_trim_last_released_bytes"]


def test_without_malloc_trim_it_is_a_no_op(cache: Cache) -> None:
    trimmer = HeapTrimmer(10, engine_activity(cache), None)
    trimmer.start()
    cache.set("k", b"1")
    assert not trimmer.enabled and not trimmer.maybe_trim() and trimmer.trims == 0
    assert THREAD not in {thread.name for thread in threading.enumerate()}
    assert trim_fields(trimmer) == {"memory_trim_enabled": False}


def test_interval_0_starts_nothing(cache: Cache) -> None:
    trimmer = start_trimmer(cache, 0)
    assert not trimmer.enabled and trimmer._thread is None
    assert trim_fields(trimmer) == {"memory_trim_enabled": False}


@needs_glibc
def test_the_thread_trims_after_work_and_stops_without_waiting_for_its_interval(cache: Cache) -> None:
    trimmer = start_trimmer(cache, 0.1)
    try:
        cache.set("k", b"1")
        deadline = time.monotonic() + 30
        while trimmer.trims == 0 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert trimmer.trims >= 1
    finally:
        trimmer.stop()
    assert trimmer._thread is None
    patient = start_trimmer(cache, 3600)
    thread = patient._thread
    assert thread is not None and thread.is_alive()
    patient.stop()  # waits at most a second; the thread must have ended by then, not in an hour
    assert not thread.is_alive()


def test_the_setting_defaults_to_10_s_and_0_turns_it_off(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)  # no etc/cachegrid.toml of the checkout
    assert load_settings().memory_trim_interval == 10
    monkeypatch.setenv("CACHEGRID_MEMORY_TRIM_INTERVAL", "0")
    settings = load_settings()
    assert settings.memory_trim_interval == 0
    client = falcon.testing.TestClient(create_app(settings))
    assert client.simulate_get("/stats").json["memory_trim_enabled"] is False
    assert "cachegrid_memory_trims" not in client.simulate_get("/metrics").text
    (tmp_path / "c.toml").write_text("[cachegrid]\nmemory_trim_interval = 2.5\n")
    assert load_settings(tmp_path / "c.toml").memory_trim_interval == 0  # the environment wins over the file
    monkeypatch.delenv("CACHEGRID_MEMORY_TRIM_INTERVAL")
    assert load_settings(tmp_path / "c.toml").memory_trim_interval == 2.5


@pytest.mark.parametrize("value", ["-1", "often", "0.01", "inf", "nan", "86401"])
def test_a_bad_interval_stops_start_up_naming_the_setting(monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    monkeypatch.setenv("CACHEGRID_MEMORY_TRIM_INTERVAL", value)
    with pytest.raises(ConfigError) as raised:
        load_settings()
    message = str(raised.value)
    assert message.startswith("invalid setting memory_trim_interval ") and "\n" not in message
    assert "CACHEGRID_MEMORY_TRIM_INTERVAL" in message and repr(value) in message


@needs_glibc
def test_the_served_app_reports_its_trims_in_stats_and_metrics(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("CACHEGRID_MEMORY_TRIM_INTERVAL", "0.1")
    client = falcon.testing.TestClient(create_app(load_settings()))
    assert client.simulate_put("/cache/k", json={"n": 1}).status_code == 201
    deadline = time.monotonic() + 30
    while client.simulate_get("/stats").json["memory_trims"] == 0 and time.monotonic() < deadline:
        time.sleep(0.05)
    document = client.simulate_get("/stats").json
    assert document["memory_trim_enabled"] is True and document["memory_trims"] >= 1
    assert f"cachegrid_memory_trims_total {float(document['memory_trims'])}" in client.simulate_get("/metrics").text


# A thread blocked in read(2) through the handle (the kernel says so: the
# thread's /proc syscall entry is read of the pipe): the main thread must still
# run Python to see it and write what the reader waits for. Were the GIL held
# during the call (ctypes.PyDLL does that), this program would never end.
READ_SYSCALL = {"x86_64": 0, "aarch64": 63}.get(os.uname().machine)
GIL_CHECK = """
import ctypes, os, sys, threading, time
from cachegrid.daemon.heap import process_library
library = process_library()
readable, writable = os.pipe()
buffer = ctypes.create_string_buffer(1)
done = []
reader = threading.Thread(target=lambda: done.append(library.read(readable, buffer, 1)))
reader.start()
while True:
    with open(f"/proc/self/task/{reader.native_id}/syscall") as entry:
        fields = entry.read().split()
    if fields[0] == sys.argv[1] and int(fields[1], 16) == readable:
        break  # the reader is inside read(2), in C
    time.sleep(0.01)
os.write(writable, b"!")
reader.join()
print(done[0], buffer.raw.decode())
"""


@needs_glibc
@pytest.mark.skipif(READ_SYSCALL is None, reason="read(2)'s number is known here for x86_64 and aarch64 only")
def test_a_call_through_the_handle_releases_the_gil() -> None:
    finished = subprocess.run(
        [sys.executable, "-c", GIL_CHECK, str(READ_SYSCALL)], capture_output=True, text=True, timeout=60
    )
    assert (finished.returncode, finished.stdout.strip()) == (0, "1 !"), finished.stderr
