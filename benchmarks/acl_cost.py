"""What an ACL of many tokens costs a plain GET: ACL ÷ no auth, interleaved.

Run it on demand (it is not a test; it needs ``wrk``)::

    .venv/bin/python benchmarks/acl_cost.py [--tokens 100] [--rounds 5] [--duration 5] [--output acl.md]

Two servers of this tree, started as a user starts one (``cachegrid serve
--port N``, the default worker), differ only in their settings: one has no
token at all, the other ``CACHEGRID_ACL_FILE`` naming a file of ``--tokens``
tokens. The token wrk presents is the *last* entry with a prefix that
covers the key (the decision compares every entry whatever matches, so
which one it is should not matter; the last is the least favourable to a
loop that would stop early). The cell is GET hit of one small JSON value,
``wrk -t1 -c32`` (lua/get_auth.lua sends the header; the no-auth server
ignores it). Each round starts both servers afresh, warms both up, then runs
the two cells in a seeded shuffled order; the report gives each round's
req/s, the medians, their ratio and the per-round ratios' range.
"""

from __future__ import annotations

import argparse
import hashlib
import http.client
import os
import random
import statistics
import tempfile
import time
from pathlib import Path

from harness import Server, Workload, log, port_only, publish, require_tools, run_wrk, table

ROOT = Path(__file__).resolve().parent.parent
KEY = "app:user:000042"
VALUE = b'{"name":"Alice","age":30}'
GET = Workload("get", "GET hit", "/cache/" + KEY, "get_auth.lua")
TOKEN = "bench-token-last"


def acl_file(directory: Path, count: int) -> Path:
    """``count`` tokens; the benchmark's is the last."""
    lines = []
    for number in range(count):
        token = TOKEN if number == count - 1 else f"bench-token-{number}"
        digest = hashlib.sha256(token.encode()).hexdigest()
        lines += ["[[tokens]]", f'name = "t{number}"', f'sha256 = "{digest}"']
        lines += [f'prefixes = ["app{number}:", "app:"]', 'permissions = ["read", "write"]', ""]
    path = directory / "acl.toml"
    path.write_text("\n".join(lines))
    return path


def store(server: Server) -> None:
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    try:
        headers = {"Content-Type": "application/json", "Authorization": f"Bearer {TOKEN}"}
        connection.request("PUT", GET.path, body=VALUE, headers=headers)
        status = connection.getresponse().status
    finally:
        connection.close()
    if status not in (200, 201):
        raise SystemExit(f"{server.name}: PUT {GET.path} answered {status}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tokens", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--duration", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--output", type=Path)
    args = parser.parse_args()
    require_tools()
    os.environ["CACHEGRID_BENCH_TOKEN"] = TOKEN  # read by lua/get_auth.lua
    runs: dict[str, list[float]] = {"plain": [], "acl": []}
    with tempfile.TemporaryDirectory(prefix="cachegrid-acl-") as scratch:
        work_dir = Path(scratch)
        tree = {"PYTHONPATH": str(ROOT), "CACHEGRID_SNAPSHOT_PATH": ""}  # this tree's cachegrid, no snapshots
        settings = {"plain": tree, "acl": tree | {"CACHEGRID_ACL_FILE": str(acl_file(work_dir, args.tokens))}}
        for number in range(1, args.rounds + 1):
            servers = {
                name: Server.cachegrid(name, [], work_dir, env, bind=port_only) for name, env in settings.items()
            }
            try:
                for server in servers.values():
                    server.wait_ready()
                    store(server)
                    run_wrk(server.url(GET.path), GET, 32, args.warmup, 1)
                order = list(servers)
                random.Random(f"{args.seed}:{number}").shuffle(order)
                for name in order:
                    run = run_wrk(servers[name].url(GET.path), GET, 32, args.duration, 1)
                    if run.errors:
                        raise SystemExit(f"{name}: wrk errors {run.errors}")
                    runs[name].append(run.rps)
                log(f"round {number}: " + ", ".join(f"{n} {runs[n][-1]:.0f} req/s" for n in order))
            finally:
                for server in servers.values():
                    server.stop()
                time.sleep(0.2)
    ratios = [acl / plain for acl, plain in zip(runs["acl"], runs["plain"], strict=True)]
    rows = [
        [f"round {i + 1}", f"{p:.0f}", f"{a:.0f}", f"{r:.3f}×"]
        for i, (p, a, r) in enumerate(zip(runs["plain"], runs["acl"], ratios, strict=True))
    ]
    median = statistics.median(runs["acl"]) / statistics.median(runs["plain"])
    rows.append(
        [
            "median",
            f"{statistics.median(runs['plain']):.0f}",
            f"{statistics.median(runs['acl']):.0f}",
            f"{median:.3f}× (rounds {min(ratios):.3f}–{max(ratios):.3f})",
        ]
    )
    text = table(["GET hit, c32", "no auth req/s", f"ACL of {args.tokens} req/s", "ACL ÷ no auth"], rows)
    publish([f"## GET with an ACL of {args.tokens} tokens ÷ no auth", "", text], args.output)


if __name__ == "__main__":
    main()
