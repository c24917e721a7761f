"""CacheGrid's load generator: HTTP load on a server, measured the way wrk and
redis-benchmark measure, not the way a Python HTTP client would.

``cachegrid loadtest`` (cachegrid/cli/loadtest.py) is a thin adapter over it,
and benchmarks/loadtest_vs_wrk.py runs it against wrk. It imports nothing of
the CLI and, like the client, knows only the HTTP contract::

    from cachegrid.loadgen import Plan, Target, run
    report = run(Target.parse("http://127.0.0.1:8080"), Plan(requests=10_000))

``run`` writes the plan's keys as they are (``key:0`` ... by default), for a
scratch server such as a benchmark's; ``run_apart`` is the one for a server
that holds data: keys of its own, no eviction, deleted afterwards.

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
- ``keyspace.py``: ``run_apart``: a run on keys of its own, capped to the
  server's free room, deleted afterwards (what ``cachegrid loadtest`` runs:
  a load test never touches the server's data);
- ``calls.py``: the plain HTTP calls outside the timed loop (the check, the
  fill, the server-side ``POST /test/load``);
- ``errors.py``: ``LoadError``, with the HTTP status a server refused with,
  and ``Refused``, a server the load test will not write to.
"""

from __future__ import annotations

from .calls import OPERATION_TYPES, server_side
from .errors import LoadError, Refused
from .keyspace import ApartReport, random_prefix, run_apart
from .plan import Plan, Target, check_prefix, default_processes
from .results import Report
from .runner import run

__all__ = [
    "OPERATION_TYPES",
    "ApartReport",
    "LoadError",
    "Plan",
    "Refused",
    "Report",
    "Target",
    "check_prefix",
    "default_processes",
    "random_prefix",
    "run",
    "run_apart",
    "server_side",
]
