"""A gunicorn worker that runs the app on meinheld, without the stock one's defects.

meinheld's own ``meinheld.gmeinheld.MeinheldWorker`` is broken under
gunicorn >= 20: it monkey-patches gunicorn's ``Logger.error``/``access``
(the patch reaches the master, which then dies when a worker is killed), its
heartbeat touches the ctime of the worker's temp file while gunicorn checks
the mtime (so the worker timeout never fires), and it maps SIGTERM to an
immediate stop. This worker:

- hands meinheld small logger adapters instead of patching gunicorn's Logger;
  the access adapter writes CacheGrid's batched access log (accesslog.py), the
  same line as under gthread, and skips the empty entries meinheld reports
  when a keep-alive connection closes;
- beats the heartbeat through ``server.set_watchdog``, which meinheld calls
  about once a second from its loop, with gunicorn's own ``notify()``;
- limits request bodies with ``server.set_max_content_length``, and the
  wait for each piece of one with ``server.set_body_timeout`` (our build's
  patch 0021; whole seconds, rounded up);
- on SIGTERM stops accepting and lets requests in flight finish within the
  graceful timeout; on SIGINT/SIGQUIT stops at once. meinheld installs its own
  C-level handlers when its loop starts, so the watchdog puts ours back on its
  first call;
- handles a signal when it arrives: Python runs a signal's handler only when
  Python code runs, which in an idle meinheld loop is the watchdog's next
  call, up to a second later (every stop took over a second). A greenlet in
  meinheld's loop waits on the pipe that gunicorn has Python write each
  signal to (``signal.set_wakeup_fd``), so the handler runs at once.

It is imported only when chosen (workers.py decides when that is safe).
"""

from __future__ import annotations

import math
import os
import signal
import sys
from typing import Any

from gunicorn.workers.base import Worker
from meinheld import server

from . import accesslog, events


class AccessLog:
    """meinheld's access logger: ``access(environ)`` once per response, into
    CacheGrid's batched access log (accesslog.py)."""

    def __init__(self, lines: accesslog.AccessLog) -> None:
        self.lines = lines

    def access(self, environ: dict[str, Any]) -> None:
        method = environ.get("REQUEST_METHOD")
        if not method:  # a keep-alive connection closed between requests
            return
        self.lines.write(
            accesslog.format_line(
                environ.get("REMOTE_ADDR", "-"),
                method,
                environ.get("RAW_URI") or environ.get("PATH_INFO", "-"),
                environ.get("SERVER_PROTOCOL", "-"),
                environ.get("STATUS_CODE", "-"),
                environ.get("SEND_BYTES", "-"),
                environ.get("REQUEST_TIME", "-"),
            )
        )


class ErrorLog:
    """meinheld's error logger: ``error(type, value, traceback)``."""

    def __init__(self, log: Any) -> None:
        self.log = log

    def error(self, kind: type[BaseException], value: BaseException, traceback: Any) -> None:
        self.log.error("error in the meinheld worker", exc_info=(kind, value, traceback))


class MeinheldWorker(Worker):
    body_limit = 16 * 1024 * 1024  # set by the application before the worker starts
    body_timeout = 10.0  # likewise

    def init_process(self) -> None:
        self._signals_restored = False
        self._exit_now = False
        self.access_lines: accesslog.AccessLog | None = None
        super().init_process()

    def run(self) -> None:
        # meinheld calls the watchdog about once a second: it writes what
        # the access log holds, so no flusher thread is needed.
        self.access_lines = accesslog.AccessLog(background=False) if self.cfg.accesslog is not None else None
        server.set_access_logger(AccessLog(self.access_lines) if self.access_lines else None)
        server.set_error_logger(ErrorLog(self.log))
        server.set_keepalive(int(self.cfg.keepalive))
        server.set_picoev_max_fd(self.cfg.worker_connections)
        server.set_max_content_length(self.body_limit)
        server.set_body_timeout(math.ceil(self.body_timeout))
        server.set_watchdog(self.watchdog)
        server.set_listen_socket([sock.fileno() for sock in self.sockets])
        # A first beat now: until the worker's first beat its heartbeat file
        # holds its creation time, which gunicorn cannot compare with its
        # monotonic clock, so a worker hung in its first second (before
        # meinheld's first watchdog call) would never time out.
        self.notify()
        try:
            server.run(self.wsgi)
        except KeyboardInterrupt:
            pass
        finally:
            if self.access_lines:
                self.access_lines.close()

    def watchdog(self) -> None:
        if not self._signals_restored:
            signal.signal(signal.SIGTERM, self.handle_exit)
            signal.signal(signal.SIGINT, self.handle_quit)
            signal.signal(signal.SIGQUIT, self.handle_quit)
            self._signals_restored = True
            server.spawn(self.wake_on_signals)  # in the loop: spawn needs it running
        if self._exit_now:
            sys.exit(0)
        self.notify()
        if self.access_lines:
            self.access_lines.flush_if_due()
        if self.ppid != os.getppid():
            self.log.info("Parent changed, shutting down: %s", self)
            server.stop(int(self.cfg.graceful_timeout))

    def wake_on_signals(self) -> None:
        """A greenlet: wait for gunicorn's signal pipe (non-blocking) to be
        readable, so that the Python code here runs a signal's handler as
        soon as the signal arrives; until the worker stops. meinheld counts
        the wait as activity, so it ends with the worker's ``alive``."""
        try:
            while self.alive:
                server.trampoline(self.PIPE[0], read=True)
                try:
                    while os.read(self.PIPE[0], 64):
                        pass
                except BlockingIOError:
                    pass
        except SystemExit:
            # handle_quit ran here, where an exception only reaches meinheld's
            # error log: meinheld is stopping (at once when no connection is
            # left), and the watchdog's next call exits if it has not.
            self._exit_now = True

    def handle_exit(self, sig: int, frame: Any) -> None:
        """SIGTERM: graceful; stop accepting, finish what is in flight
        (event streams never finish: they are ended now)."""
        self.alive = False
        events.close_all()
        server.stop(max(1, int(self.cfg.graceful_timeout)))

    def handle_quit(self, sig: int, frame: Any) -> None:
        """SIGINT / SIGQUIT: stop now."""
        self.alive = False
        if self.access_lines:
            self.access_lines.close()
        server.stop()
        sys.exit(0)
