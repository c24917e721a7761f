"""Worker kinds by name (as gunicorn's own registry), and when meinheld is usable.

meinheld, a C event loop, is the fast worker and ``auto``'s choice, but only
CacheGrid's own build of it (``cachegrid/meinheld_build``: the 1.0.2 sdist
with our patch set, version ``1.0.2+cachegrid.<digest of the patches>``) on
``greenlet >= 2.0.1``. Anything else is refused with the reason:

- a stock meinheld reads greenlet's object through a bundled greenlet 0.4
  header (memory corruption with greenlet >= 2) and loses keep-alive
  connections after a large response;
- greenlet < 2.0.1 never frees a greenlet's frame chunk: 4 KiB leaked per
  request, and a cache cannot shed that by restarting its worker (a restart
  empties the cache);
- a build from another patch set than this checkout's is stale: rebuild it.

Where it is refused, ``auto`` runs gthread and says why at start; an explicit
``--worker meinheld`` fails with the reason. Its stock gunicorn worker has
three defects, so CacheGrid brings its own (meinheld_worker.py); its gthread
worker reads request heads in its event loop (gthread_worker.py).
"""

from __future__ import annotations

import re
from importlib import metadata

from ..meinheld_build import GREENLET_REQUIREMENT, LOCAL_TAG, expected_version

WORKERS: dict[str, str] = {
    "meinheld": "cachegrid.daemon.meinheld_worker.MeinheldWorker",
    "gthread": "cachegrid.daemon.gthread_worker.ThreadWorker",
}
KINDS = ("auto", *WORKERS)
BUILD_HINT = "python -m cachegrid.meinheld_build (make setup runs it)"
MIN_GREENLET = (2, 0, 1)


def _release(version: str) -> tuple[int, ...]:
    """The numeric release of a version string: '2.0.0.post0' -> (2, 0, 0)."""
    match = re.match(r"\d+(\.\d+)*", version)
    return tuple(int(number) for number in match.group().split(".")) if match else ()


def meinheld_problem() -> str | None:
    """Why meinheld cannot be used here, or None when CacheGrid's build is."""
    try:
        greenlet = metadata.version("greenlet")
    except metadata.PackageNotFoundError:
        return f"greenlet is not installed (meinheld needs {GREENLET_REQUIREMENT})"
    if _release(greenlet) < MIN_GREENLET:
        return (
            f"greenlet {greenlet} leaks 4 KiB per request (fixed in 2.0.1); "
            f"install {GREENLET_REQUIREMENT} and CacheGrid's meinheld: {BUILD_HINT}"
        )
    try:
        version = metadata.version("meinheld")
    except metadata.PackageNotFoundError:
        return f"meinheld is not installed; build CacheGrid's: {BUILD_HINT}"
    want = expected_version()
    if f"+{LOCAL_TAG}." not in version:
        return (
            f"meinheld {version} is the stock build, which corrupts memory with greenlet >= 2 and "
            f"stalls keep-alive connections; build CacheGrid's: {BUILD_HINT}"
        )
    if version != want:
        return f"meinheld {version} was built from another patch set than this one ({want}); rebuild: {BUILD_HINT}"
    try:
        import meinheld.server  # noqa: F401
    except ImportError as error:
        return f"meinheld {version} does not load ({error}); rebuild: {BUILD_HINT}"
    return None


def choose(kind: str) -> tuple[str, str, str | None]:
    """The worker (name, gunicorn worker class, why not meinheld) for ``kind``.

    ``auto`` is meinheld where CacheGrid's build is usable, else gthread with
    the reason; ``meinheld`` where it is not raises ValueError with it."""
    if kind not in KINDS:
        raise ValueError(f"unknown worker {kind!r}; choose one of {', '.join(KINDS)}")
    problem = meinheld_problem() if kind in ("auto", "meinheld") else None
    if kind == "auto":
        kind = "gthread" if problem else "meinheld"
    elif kind == "meinheld" and problem:
        raise ValueError(f"cannot use the meinheld worker: {problem}; use --worker gthread")
    return kind, WORKERS[kind], problem
