"""The batched access log: lines held, then written together, none lost."""

from __future__ import annotations

import io

from cachegrid.daemon.accesslog import AccessLog, format_line
from cachegrid.testing import FakeClock


def test_lines_are_held_until_the_batch_is_full_or_the_interval_has_passed() -> None:
    stream, clock = io.StringIO(), FakeClock(0.0)
    log = AccessLog(stream, batch=3, interval=1.0, clock=clock, background=False)
    log.write("a\n")
    log.write("b\n")
    assert stream.getvalue() == ""
    log.write("c\n")  # the batch is full
    assert stream.getvalue() == "a\nb\nc\n"
    log.write("d\n")
    log.flush_if_due()
    assert stream.getvalue() == "a\nb\nc\n"  # not yet a second since the last write
    clock.now = 1.5
    log.flush_if_due()
    assert stream.getvalue() == "a\nb\nc\nd\n"
    log.write("e\n")
    log.close()  # at exit, the rest
    assert stream.getvalue().endswith("d\ne\n")


def test_both_workers_write_gunicorns_line() -> None:
    assert format_line("127.0.0.1", "GET", "/cache/k?x=1", "HTTP/1.1", 200, 25, 0) == (
        '127.0.0.1 "GET /cache/k?x=1 HTTP/1.1" 200 25 0ms\n'
    )
