"""CacheGrid's load generator: HTTP load on a server, measured the way wrk and
redis-benchmark measure, not the way a Python HTTP client would.

``cachegrid loadtest`` (cachegrid/cli/loadtest.py) is a thin adapter over it,
and benchmarks/loadtest_vs_wrk.py runs it against wrk. It imports nothing of
the CLI and, like the client, knows only the HTTP contract::

    from cachegrid.loadgen import Plan, Target, run
    report = run(Target.parse("http://127.0.0.1:8080"), Plan(requests=10_000))

Where things live:

- ``plan.py``: ``Target`` (the server) and ``Plan`` (what to run), and how a
  plan is shared out among the processes (``split``, ``budgets``);
- ``wire.py``: the requests as pre-built bytes, the request mix, and the
  minimal response framing (Content-Length);
- ``client.py``: ``Client``, one non-blocking connection with its read and
  write handlers (redis-benchmark's ``client``), and ``Load``, what one
  process's connections share;
- ``worker.py``: one process's selector loop over its connections;
- ``runner.py``: ``run``: the fill, the worker processes, their start
  together, Ctrl-C, and the merge;
- ``results.py``: the latency histogram, each worker's ``WorkerResult`` and
  the merged ``Report``;
- ``calls.py``: the plain HTTP calls outside the timed loop (the check, the
  fill, the server-side ``POST /test/load``);
- ``errors.py``: ``LoadError``, with the HTTP status a server refused with.
"""

from __future__ import annotations

from .calls import OPERATION_TYPES, server_side
from .errors import LoadError
from .plan import Plan, Target, default_processes
from .results import Report
from .runner import run

__all__ = ["OPERATION_TYPES", "LoadError", "Plan", "Report", "Target", "default_processes", "run", "server_side"]
