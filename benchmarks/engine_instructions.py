"""Instructions per engine operation, counted by callgrind, of two source trees.

Run it on demand (it is not a test; it needs valgrind)::

    .venv/bin/python benchmarks/engine_instructions.py [--before TREE] [--after TREE]
        [--ops N] [--policies lru,tinylfu]

``--before`` defaults to the commit ``main`` (exported with ``git archive``
into a temporary directory), ``--after`` to the tree this file is in.

Wall-clock timings of a refactor's few per cent drown in the noise of a
shared machine; instruction counts do not. For every (tree, policy,
operation) a small driver (``DRIVER`` below) runs under
``valgrind --tool=callgrind`` with ``PYTHONPATH`` set to the tree and
``PYTHONHASHSEED`` fixed (hash values decide the dict probes and the
frequency sketch's counters, so a fixed seed makes a run repeat itself):

- it builds a ``Cache`` of the policy with ``max_size`` entries, fills it
  (every operation starts from a full store), and builds every key the
  operations will use;
- then it runs ``--ops`` of one operation: ``get`` (a hit, ``Cache.get``),
  ``get_entry`` (a hit, ``Cache.get_entry``: the daemon's GET), ``set``
  (replacing a held key with a value of the same size) or ``insert``
  (a new key into the full store: each evicts one entry).

With ``--requests`` it counts whole HTTP requests instead: the daemon's
WSGI app (``create_app`` with the default settings, the engine the daemon
builds) called in process for a GET hit and a PUT replacing the value of
``user:000042`` (``REQUEST_DRIVER``): the request path without the server's
sockets, which a wall-clock A/B (ab_fast_default.py) drowns in noise.

A baseline run does the same setup and no operation; its count, subtracted
and divided by ``--ops``, leaves the instructions of one operation (with the
loop's own few). Snapshots and the sweeper are off (the driver never starts
the cache). The table gives both trees' figures and after ÷ before.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent.parent
OPERATIONS = ("get", "get_entry", "set", "insert")
SEED = "0"

DRIVER = r"""
import sys
from cachegrid.engine import Cache

policy, operation, ops, size = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
cache = Cache(policy, max_size=size, cleanup_interval=3600)
value = b'{"name":"Alice","id":12345}'
held = [f"user:{i}" for i in range(size)]
for key in held:
    cache.set(key, value)
reads = [held[i % size] for i in range(ops)]
fresh = [f"new:{i}" for i in range(ops)]
if operation == "get":
    get = cache.get
    for key in reads:
        get(key)
elif operation == "get_entry":
    get_entry = cache.get_entry
    for key in reads:
        get_entry(key)
elif operation == "set":
    set_ = cache.set
    for key in reads:
        set_(key, value)
elif operation == "insert":
    set_ = cache.set
    for key in fresh:
        set_(key, value)
assert len(cache) == size
"""

REQUEST_DRIVER = r"""
import io
import sys

from cachegrid.config import Settings
from cachegrid.daemon import create_app

method, ops = sys.argv[2], int(sys.argv[3])  # (argv[1], the policy, has no meaning here)
app = create_app(Settings())
body = b'{"name":"Alice","age":30}'


def call(method):
    environ = {
        "REQUEST_METHOD": method, "PATH_INFO": "/cache/user:000042", "QUERY_STRING": "",
        "SERVER_NAME": "127.0.0.1", "SERVER_PORT": "8080", "SERVER_PROTOCOL": "HTTP/1.1",
        "wsgi.url_scheme": "http", "wsgi.input": io.BytesIO(body), "wsgi.errors": sys.stderr,
        "CONTENT_LENGTH": str(len(body)), "CONTENT_TYPE": "application/json",
    }
    statuses = []
    b"".join(app(environ, lambda status, headers, exc_info=None: statuses.append(status)))
    assert statuses[0][:1] == "2", statuses


call("PUT")
if method != "none":
    for _ in range(ops):
        call(method)
"""
REQUESTS = ("GET", "PUT")


def instructions(tree: Path, driver: Path, policy: str, operation: str, ops: int, size: int) -> int:
    """Instructions callgrind counted in one run of the driver."""
    with tempfile.TemporaryDirectory() as scratch:
        out = Path(scratch) / "callgrind.out"
        env = dict(os.environ, PYTHONPATH=str(tree), PYTHONHASHSEED=SEED)
        subprocess.run(
            [
                "valgrind",
                "--tool=callgrind",
                f"--callgrind-out-file={out}",
                sys.executable,
                str(driver),
                policy,
                operation,
                str(ops),
                str(size),
            ],
            env=env,
            check=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for line in out.read_text().splitlines():
            if line.startswith(("summary:", "totals:")):
                return int(line.split()[1])
    raise RuntimeError("callgrind wrote no total")


def per_operation(tree: Path, driver: Path, policy: str, ops: int, size: int) -> dict[str, float]:
    baseline = instructions(tree, driver, policy, "none", ops, size)
    return {
        operation: (instructions(tree, driver, policy, operation, ops, size) - baseline) / ops
        for operation in OPERATIONS
    }


def requests_cost(tree: Path, driver: Path, method: str, ops: int) -> float:
    """Instructions of one request of ``method`` (the start-up subtracted)."""
    baseline = instructions(tree, driver, "-", "none", ops, 0)
    return (instructions(tree, driver, "-", method, ops, 0) - baseline) / ops


def export_commit(commit: str, into: Path) -> Path:
    """The tree of ``commit`` of this repository, written out under ``into``."""
    into.mkdir(parents=True, exist_ok=True)
    archive = subprocess.run(["git", "archive", commit], cwd=HERE, check=True, capture_output=True).stdout
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive, check=True)
    return into


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--before", type=Path, help="source tree (default: the commit main)")
    parser.add_argument("--after", type=Path, default=HERE, help="source tree (default: this one)")
    parser.add_argument("--ops", type=int, default=20_000, help="operations per run")
    parser.add_argument("--size", type=int, default=10_000, help="max_size of the cache (entries)")
    parser.add_argument("--policies", default="lru,tinylfu")
    parser.add_argument("--requests", action="store_true", help="count whole requests through the daemon's app")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        driver = Path(scratch) / "driver.py"
        driver.write_text(REQUEST_DRIVER if args.requests else DRIVER)
        # Not into the driver's directory: Python puts a script's directory
        # first on sys.path, so every run would import the exported package.
        before = args.before or export_commit("main", Path(scratch) / "before")
        if args.requests:
            print(f"{'request':10} {'before':>10} {'after':>10} {'after/before':>13}")
            old = {m: requests_cost(before, driver, m, args.ops) for m in REQUESTS}
            new = {m: requests_cost(args.after, driver, m, args.ops) for m in REQUESTS}
            for method in REQUESTS:
                print(f"{method:10} {old[method]:10.0f} {new[method]:10.0f} {new[method] / old[method]:13.3f}")
            return
        print(f"{'policy':10} {'operation':10} {'before':>10} {'after':>10} {'after/before':>13}")
        for policy in args.policies.split(","):
            old = per_operation(before, driver, policy, args.ops, args.size)
            new = per_operation(args.after, driver, policy, args.ops, args.size)
            for operation in OPERATIONS:
                ratio = new[operation] / old[operation]
                print(f"{policy:10} {operation:10} {old[operation]:10.0f} {new[operation]:10.0f} {ratio:13.3f}")


if __name__ == "__main__":
    main()
