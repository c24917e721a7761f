"""Serving the app with gunicorn: exactly one worker, fed from the settings.

``serve(settings)`` embeds gunicorn (a ``BaseApplication`` whose options come
from the settings; nothing is read from gunicorn's command line or config
files). The cache lives in the worker process, so:

- there is exactly one worker: every worker would hold a cache of its own.
  ``workers`` is forced to 1 (``WEB_CONCURRENCY``, which gunicorn would
  otherwise read, is ignored), ``on_starting`` refuses any other count, and
  ``nworkers_changed`` puts the count back to 1 after a SIGTTIN;
- the app (and the engine's sweeper thread) is built in the worker, after the
  fork (``preload_app`` off), since threads do not survive ``fork``;
- ``max_requests`` stays 0: a worker restart reloads the last snapshot
  (docs/snapshots.md; kept by default: snapshot_default.py), or with
  snapshots off empties the cache; on SIGHUP ``on_reload`` asks the old
  worker for a fresh one first.

The same hooks are exported for plain gunicorn (``gunicorn -c
python:cachegrid.daemon.server cachegrid.daemon.wsgi:app``), which is how
they also refuse ``-w 2`` and ``WEB_CONCURRENCY=3`` there.

Logs go to stderr: errors with tracebacks and, when ``access_log`` is on,
one line per request, batched (accesslog.py; both workers write the same
line).
"""

from __future__ import annotations

import atexit
import http.client
import json
import logging
import secrets
import sys
import time
from typing import Any

from gunicorn.app.base import BaseApplication
from gunicorn.glogging import Logger
from pydantic import SecretStr

from ..config import MiB, Settings

# Not `from . import accesslog`: gunicorn reads this module's names as its
# settings when it is a config file (-c python:...), and accesslog is one.
from .accesslog import AccessLog, format_line
from .snapshot_default import with_default_snapshot
from .workers import choose

log = logging.getLogger("cachegrid.server")

ONE_WORKER = (
    "CacheGrid runs exactly one worker process: each worker would hold a separate cache "
    "(run more nodes instead, one per port)"
)


class StderrLogger(Logger):
    """gunicorn's logger, with the access log on stderr like everything else,
    through CacheGrid's batched access log (accesslog.py) rather than a
    logging record per request."""

    def setup(self, cfg: Any) -> None:
        super().setup(cfg)
        self.lines = AccessLog() if cfg.accesslog else None
        if self.lines:
            atexit.register(self.lines.close)

    def access(self, resp: Any, req: Any, environ: dict[str, Any], request_time: Any) -> None:
        if self.lines is None:
            return
        status = resp.status.split(None, 1)[0] if isinstance(resp.status, str) else resp.status
        milliseconds = request_time.seconds * 1000 + request_time.microseconds // 1000
        self.lines.write(
            format_line(
                environ.get("REMOTE_ADDR", "-"),
                environ.get("REQUEST_METHOD", "-"),
                environ.get("RAW_URI", "-"),
                environ.get("SERVER_PROTOCOL", "-"),
                status,
                getattr(resp, "sent", None) or "-",
                milliseconds,
            )
        )


def on_starting(server: Any) -> None:
    if server.cfg.workers != 1:
        server.log.error("%s; refusing to start with %d workers", ONE_WORKER, server.cfg.workers)
        sys.exit(1)


def nworkers_changed(server: Any, new_value: int | None, old_value: int | None) -> None:
    if new_value is not None and new_value > 1:
        server.log.warning("%s; ignoring the request for %d workers", ONE_WORKER, new_value)
        server._num_workers = 1


# Read by plain gunicorn when this module is its config (-c python:...). The
# worker count is left to gunicorn (-w, WEB_CONCURRENCY, else 1) so that
# on_starting can refuse a wrong one loudly.
# The worker is auto's choice, as for `cachegrid serve`; no access log unless
# asked for (--access-logfile -).
worker_class = choose("auto")[1]
threads = 4
max_requests = 0
logger_class = "cachegrid.daemon.server.StderrLogger"
errorlog = "-"
control_socket_disable = True


def hand_over_snapshot(settings: Settings, log: Any, poll: float = 0.05) -> bool:
    """SIGHUP (``on_reload``, in the master, before the new worker starts):
    ask the running worker for a fresh snapshot over HTTP and wait for it,
    at most ``timeout`` seconds, so that the new worker loads the cache as it
    is now. What the old worker answers after that snapshot, until it exits,
    is not handed over (docs/snapshots.md). True when the snapshot was written."""
    host = {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}.get(settings.host, settings.host)
    headers = {"Authorization": f"Bearer {settings.auth_token.get_secret_value()}"} if settings.auth_token else {}

    def call(method: str) -> tuple[int, dict[str, Any]]:
        connection = http.client.HTTPConnection(host, settings.port, timeout=5)
        try:
            connection.request(method, "/admin/snapshot", headers=headers)
            response = connection.getresponse()
            return response.status, json.loads(response.read() or b"{}")
        finally:
            connection.close()

    deadline = time.monotonic() + settings.timeout

    def finished(state: dict[str, Any]) -> dict[str, Any]:
        while state.get("running") and time.monotonic() < deadline:
            time.sleep(poll)
            state = call("GET")[1]
        return state

    try:
        status, state = call("POST")
        if status == 409 and state.get("error") == "snapshot_running":  # an interval one: then a fresh one
            finished(state["state"])
            status, state = call("POST")
        if status != 202:
            raise OSError(f"POST /admin/snapshot answered {status}: {state.get('message')}")
        state = finished(state)
    except (OSError, ValueError, KeyError) as error:
        log.warning("SIGHUP: no fresh snapshot for the new worker (%s); it loads the last one on disk", error)
        return False
    last = state.get("last", {})
    if state.get("running") or last.get("result") != "ok":
        log.warning(
            "SIGHUP: the snapshot for the new worker did not succeed (%s); it loads the last one on disk",
            last.get("error") or "still running",
        )
        return False
    log.info("SIGHUP: handed over a snapshot of %s entries to the new worker", last.get("entries"))
    return True


class CacheGridServer(BaseApplication):
    """gunicorn, configured from CacheGrid's settings."""

    def __init__(self, settings: Settings, worker_class: str, worker: str | None = None) -> None:
        self.settings = settings
        self.worker_kind = worker  # the kind (meinheld, gthread), for /stats
        self.options = {
            "bind": [f"{settings.host}:{settings.port}"],
            "workers": 1,
            "worker_class": worker_class,
            "threads": settings.threads,
            "timeout": settings.timeout,
            "graceful_timeout": settings.graceful_timeout,
            "keepalive": settings.keepalive,
            "max_requests": 0,
            "preload_app": False,
            "loglevel": settings.log_level,
            "logger_class": "cachegrid.daemon.server.StderrLogger",
            "accesslog": "-" if settings.access_log else None,
            "errorlog": "-",
            "proc_name": f"cachegrid:{settings.node_id}",
            "control_socket_disable": True,
            "on_starting": on_starting,
            "nworkers_changed": nworkers_changed,
            "post_fork": self._remember_worker,
        }
        if settings.snapshot_path is not None:
            self.options["on_reload"] = self._hand_over
        self.worker: Any = None
        super().__init__()

    def _hand_over(self, server: Any) -> None:
        hand_over_snapshot(self.settings, server.log)

    def _remember_worker(self, server: Any, worker: Any) -> None:
        # In the worker: its heartbeat is what the snapshot load keeps going.
        self.worker = worker

    def load_config(self) -> None:
        for key, value in self.options.items():
            if key in self.cfg.settings:
                self.cfg.set(key, value)

    def load(self) -> Any:
        # Runs in the worker, after the fork: the engine and its sweeper live there.
        from .app import create_app

        return create_app(
            self.settings, worker=self.worker_kind, heartbeat=self.worker.notify if self.worker is not None else None
        )


def browser_url(host: str, port: int) -> str:
    """Where a browser on this machine finds a server listening on ``host``."""
    host = {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}.get(host, host)
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


def serve(settings: Settings) -> None:
    """Run the server in the foreground until it is stopped."""
    kind, worker_class, not_meinheld = choose(settings.worker)
    if kind == "gthread":
        from .gthread_worker import ThreadWorker

        ThreadWorker.header_timeout = settings.header_timeout
        ThreadWorker.body_timeout = settings.body_timeout or settings.header_timeout
        ThreadWorker.body_limit = settings.max_body_size + MiB  # as meinheld's, below
    if kind == "meinheld":
        from .meinheld_worker import MeinheldWorker

        # meinheld refuses larger bodies itself (413 and a reset) before the
        # app sees them; up to this, the app answers 413 with a JSON body.
        MeinheldWorker.body_limit = settings.max_body_size + MiB
        MeinheldWorker.body_timeout = settings.body_timeout or settings.header_timeout
    logging.basicConfig(
        level=settings.log_level.upper(), format="[%(asctime)s] [%(levelname)s] %(message)s", stream=sys.stderr
    )
    settings = with_default_snapshot(settings)
    if settings.acl_file is not None and settings.auth_token is None:
        # SIGHUP's snapshot handover (hand_over_snapshot) asks the worker over
        # HTTP: with an ACL file alone it needs a token of its own, one that
        # never leaves this process (it is the ACL's "auth_token" grant).
        settings = settings.model_copy(update={"auth_token": SecretStr(secrets.token_urlsafe(32))})
    detail = f" with {settings.threads} threads" if kind == "gthread" else ""
    log.info(
        "CacheGrid node %s on %s:%d: worker %s%s, policy %s, max %d items / %s MiB",
        settings.node_id,
        settings.host,
        settings.port,
        kind,
        detail,
        settings.eviction_policy,
        settings.max_size,
        f"{settings.max_memory_mb:g}",
    )
    if kind == "gthread" and not_meinheld:
        log.warning("worker gthread, not meinheld: %s", not_meinheld)
    if settings.auth_token is None and settings.host not in ("127.0.0.1", "localhost", "::1"):
        log.warning(
            "listening on %s without an auth token: anyone who can reach it can read and change the "
            "cache (set CACHEGRID_AUTH_TOKEN)",
            settings.host,
        )
    url = browser_url(settings.host, settings.port)
    log.info("dashboard: %s/dashboard, API docs: %s/docs", url, url)
    CacheGridServer(settings, worker_class, kind).run()
