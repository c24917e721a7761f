"""Worker kinds by name (as gunicorn's own registry), and when meinheld is safe.

meinheld is the fast worker, but it reads greenlet's internal structure
through a bundled greenlet 0.4 header: with greenlet >= 2 it reads garbage
whenever a write would block (crashes, a response sent twice). So it can only
be used on CPython < 3.12 (newer ones cannot build a greenlet < 2, and 3.13
cannot build meinheld at all) with greenlet 1.x. Its stock gunicorn worker has
three defects, so CacheGrid brings its own (meinheld_worker.py).

Even there, meinheld 1.0.2 leaks about 4 KiB of native memory per request
(measured: a bare meinheld server with a constant WSGI app, no gunicorn, no
access log, grew by 4.0 KiB per request over 64,000 requests; the same with
CacheGrid). A cache server cannot shed that by restarting its worker, since a
restart empties the cache, so ``auto`` picks gthread, and ``meinheld`` must
be asked for (for benchmarks, or short-lived nodes) and warns at start-up.
"""

from __future__ import annotations

import sys
from importlib import metadata

WORKERS: dict[str, str] = {
    "meinheld": "cachegrid.daemon.meinheld_worker.MeinheldWorker",
    "gthread": "gthread",
}
KINDS = ("auto", *WORKERS)
MEINHELD_LEAK = (
    "meinheld 1.0.2 leaks about 4 KiB of memory per request; the worker grows until it is restarted, "
    "and a restart empties the cache: prefer --worker gthread for a long-running node"
)


def meinheld_problem() -> str | None:
    """Why meinheld cannot be used here, or None when it is safe."""
    if sys.version_info >= (3, 12):
        return f"meinheld is unsafe on Python {sys.version_info.major}.{sys.version_info.minor} (it needs < 3.12)"
    try:
        version = metadata.version("greenlet")
    except metadata.PackageNotFoundError:
        return "greenlet is not installed"
    if int(version.split(".")[0]) >= 2:
        return f"greenlet {version} is installed and meinheld is unsafe with greenlet >= 2 (install greenlet 1.x)"
    try:
        import meinheld.server  # noqa: F401
    except ImportError as error:
        return f"meinheld is not installed ({error})"
    return None


def choose(kind: str) -> tuple[str, str]:
    """The worker (name, gunicorn worker class) for ``kind``; ValueError with
    the reason when ``meinheld`` is asked for where it is unsafe."""
    if kind not in KINDS:
        raise ValueError(f"unknown worker {kind!r}; choose one of {', '.join(KINDS)}")
    if kind == "auto":
        kind = "gthread"  # not meinheld: see MEINHELD_LEAK
    elif kind == "meinheld":
        problem = meinheld_problem()
        if problem:
            raise ValueError(f"cannot use the meinheld worker: {problem}; use --worker gthread")
    return kind, WORKERS[kind]
