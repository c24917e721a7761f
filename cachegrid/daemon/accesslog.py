"""The access log: one line per request, written to stderr in batches.

Off by default (``access_log``), as in Redis, memcached and gunicorn itself.
When it is on, its cost per request is what a busy cache notices: a line
through the ``logging`` module (a record, a formatter, a lock, a write
system call) takes about as long as serving a small value. So each line is
formatted with one f-string and appended to a list, and the list goes out in
one write when it holds ``batch`` lines or when ``interval`` seconds have
passed since the last write, whichever comes first; a background thread
writes what an idle server still holds, and ``close()`` (at worker exit)
writes the rest. A line can so appear up to ``interval`` late, never lost on
a clean stop; a ``kill -9`` loses at most that much.

Both workers write the same line, gunicorn's ``%(h)s "%(r)s" %(s)s %(b)s
%(M)sms``: client address, request line (method, target as sent, protocol),
status, bytes sent, milliseconds::

    127.0.0.1 "GET /cache/user:1 HTTP/1.1" 200 25 0ms
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable
from typing import IO

BATCH_LINES = 512
INTERVAL_SECONDS = 1.0


def format_line(
    remote: str, method: str, target: str, protocol: str, status: object, sent: object, milliseconds: object
) -> str:
    return f'{remote} "{method} {target} {protocol}" {status} {sent} {milliseconds}ms\n'


class AccessLog:
    """Lines kept in memory and written together; safe to call from threads
    (appending to a list and swapping it out are atomic)."""

    def __init__(
        self,
        stream: IO[str] | None = None,
        batch: int = BATCH_LINES,
        interval: float = INTERVAL_SECONDS,
        clock: Callable[[], float] = time.monotonic,
        background: bool = True,
    ) -> None:
        self.stream = stream if stream is not None else sys.stderr
        self.batch = batch
        self.interval = interval
        self.clock = clock
        self.lines: list[str] = []
        self.written_at = clock()
        self._stop = threading.Event()
        self._flusher: threading.Thread | None = None
        self._background = background

    def write(self, line: str) -> None:
        lines = self.lines
        lines.append(line)
        if len(lines) >= self.batch or self.clock() - self.written_at >= self.interval:
            self.flush()
        elif self._flusher is None and self._background:
            self._start_flusher()

    def flush(self) -> None:
        self.written_at = self.clock()
        lines, self.lines = self.lines, []
        if lines:
            try:
                self.stream.write("".join(lines))
                self.stream.flush()
            except (OSError, ValueError):  # stderr closed or gone: nothing to tell
                pass

    def flush_if_due(self) -> None:
        """Write what is held if ``interval`` has passed since the last write:
        what an idle server's periodic caller (a thread, meinheld's watchdog) does."""
        if self.lines and self.clock() - self.written_at >= self.interval:
            self.flush()

    def close(self) -> None:
        self._stop.set()
        self.flush()

    def _start_flusher(self) -> None:
        self._flusher = threading.Thread(target=self._flush_forever, name="cachegrid-access-log", daemon=True)
        self._flusher.start()

    def _flush_forever(self) -> None:
        while not self._stop.wait(self.interval):
            self.flush_if_due()
