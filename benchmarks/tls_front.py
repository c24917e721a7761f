"""What TLS at the front costs a plain GET: nginx with TLS ÷ nginx without, interleaved.

Run it on demand (it is not a test; it needs ``wrk``, ``nginx`` and ``openssl``)::

    nice -n 19 .venv/bin/python benchmarks/tls_front.py [--rounds 5] [--duration 5] [--output tls.md]

One server of this tree (``cachegrid serve --port N``, the default worker)
and two nginx fronts before it, from ``cachegrid nginx-config``: the same
configuration but for ``--tls-cert/--tls-key`` (a certificate of a CA made
for the run by ``openssl``, ECDSA P-256). The cell is GET hit of one small
JSON value, ``wrk -t1 -c32``, and for scale the server asked directly.
wrk keeps its 32 connections open, so this is the steady state: each
request pays the encryption of its bytes, not a handshake (a client that
keeps its connections, as CacheGrid's do, pays one per connection). Each
round warms every target up, then runs the cells in a seeded shuffled
order; the report gives each round's req/s, the medians, the ratio TLS ÷
plain and the per-round ratios' range. Everything shares the machine's
cores: the server's worker, nginx's workers and wrk. On a busy machine the
req/s swing with the neighbours' load, so the report also gives the CPU
time nginx's workers spent per request in each front (from /proc, before
and after each run), which the load of others does not change much: what
TLS adds to nginx's own work.
"""

from __future__ import annotations

import argparse
import http.client
import os
import random
import shutil
import signal
import ssl
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

from harness import (
    Server,
    Workload,
    exit_on_sigterm,
    log,
    machine_section,
    port_only,
    publish,
    require_tools,
    run_wrk,
    table,
)

from cachegrid.cluster.nginx import Node, Tls, render_single
from cachegrid.testing import children, free_port

ROOT = Path(__file__).resolve().parent.parent
KEY = "user:000042"
VALUE = b'{"name":"Alice","age":30}'
GET = Workload("get", "GET hit", "/cache/" + KEY, "get.lua")
CELLS = ("direct", "nginx", "nginx+TLS")


def make_certificate(directory: Path) -> Tls:
    """A CA and a certificate for 127.0.0.1 it signed (wrk does not verify; nginx serves the chain)."""

    def openssl(*arguments: str) -> None:
        subprocess.run(["openssl", *arguments], cwd=directory, check=True, capture_output=True, timeout=60)

    curve = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    openssl("req", "-x509", *curve, "-keyout", "ca.key", "-out", "ca.pem", "-days", "1", "-subj", "/CN=bench CA")
    openssl("req", *curve, "-keyout", "server.key", "-out", "server.csr", "-subj", "/CN=127.0.0.1")
    (directory / "server.ext").write_text("subjectAltName=IP:127.0.0.1\n")
    openssl(
        "x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
        "-out", "server.pem", "-days", "1", "-extfile", "server.ext",
    )  # fmt: skip
    return Tls(directory / "server.pem", directory / "server.key")


class Nginx:
    """nginx on ``cachegrid nginx-config``'s text for one server, as a foreground process."""

    def __init__(self, name: str, directory: Path, upstream: int, tls: Tls | None) -> None:
        self.name = name
        self.port = free_port()
        self.tls = tls
        directory.mkdir()
        config = directory / "nginx.conf"
        config.write_text(render_single(Node(f"127.0.0.1:{upstream}"), f"127.0.0.1:{self.port}", directory, tls))
        nginx = shutil.which("nginx") or "/usr/sbin/nginx"
        self.process = subprocess.Popen(
            [nginx, "-p", str(directory), "-c", str(config), "-g", "daemon off;"],
            stdout=subprocess.DEVNULL,
            stderr=(directory / "nginx.out").open("wb"),
            start_new_session=True,
        )
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise SystemExit(f"{name}: nginx exited: {(directory / 'nginx.out').read_text()}")
            try:
                if self.health() == 200:
                    return
            except OSError:
                time.sleep(0.1)
        raise SystemExit(f"{name}: nginx did not answer within 20 s")

    def health(self) -> int:
        if self.tls is None:
            connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=5)
        else:  # verified against the run's CA: the front serves what a client would check
            context = ssl.create_default_context(cafile=str(self.tls.cert.with_name("ca.pem")))
            connection = http.client.HTTPSConnection("127.0.0.1", self.port, timeout=5, context=context)
        try:
            connection.request("GET", "/health")
            return connection.getresponse().status
        finally:
            connection.close()

    def cpu_seconds(self) -> float:
        """User and system CPU time of nginx's workers so far."""
        total = 0
        for pid in children(self.process.pid):
            try:
                fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            total += int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15 of stat)
        return total / os.sysconf("SC_CLK_TCK")

    def url(self, path: str) -> str:
        return f"{'https' if self.tls else 'http'}://127.0.0.1:{self.port}{path}"

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGQUIT)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--duration", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--output", type=Path)
    args = parser.parse_args()
    require_tools()
    for tool in ("nginx", "openssl"):
        if shutil.which(tool) is None and not Path(f"/usr/sbin/{tool}").exists():
            raise SystemExit(f"{tool} is not installed; install it with `apt-get install -y {tool}`")
    exit_on_sigterm()
    runs: dict[str, list[float]] = {cell: [] for cell in CELLS}
    cpu: dict[str, list[float]] = {front: [] for front in CELLS[1:]}  # nginx's µs of CPU per request
    with tempfile.TemporaryDirectory(prefix="cachegrid-tls-") as scratch:
        work_dir = Path(scratch)
        tls = make_certificate(work_dir)
        settings = {"PYTHONPATH": str(ROOT), "CACHEGRID_SNAPSHOT_PATH": ""}  # this tree's cachegrid
        for number in range(1, args.rounds + 1):
            server = Server.cachegrid(f"server{number}", [], work_dir, settings, bind=port_only)
            fronts: list[Nginx] = []
            try:
                server.wait_ready()
                if server.request("PUT", GET.path, VALUE)[0] not in (200, 201):
                    raise SystemExit(f"PUT {GET.path} was refused")
                fronts = [
                    Nginx("nginx", work_dir / f"plain{number}", server.port, None),
                    Nginx("nginx+TLS", work_dir / f"tls{number}", server.port, tls),
                ]
                urls = {"direct": server.url(GET.path)} | {front.name: front.url(GET.path) for front in fronts}
                for url in urls.values():
                    run_wrk(url, GET, 32, args.warmup, 1)
                order = list(CELLS)
                random.Random(f"{args.seed}:{number}").shuffle(order)
                by_name = {front.name: front for front in fronts}
                for cell in order:
                    front = by_name.get(cell)
                    before = front.cpu_seconds() if front else 0.0
                    run = run_wrk(urls[cell], GET, 32, args.duration, 1)
                    if run.errors:
                        raise SystemExit(f"{cell}: wrk errors {run.errors}")
                    runs[cell].append(run.rps)
                    if front:
                        cpu[cell].append((front.cpu_seconds() - before) / run.requests * 1e6)
                log(f"round {number}: " + ", ".join(f"{cell} {runs[cell][-1]:.0f} req/s" for cell in order))
            finally:
                for front in fronts:
                    front.stop()
                server.stop()
                time.sleep(0.2)
    publish([machine_section([nginx_version()]), "", *report(runs), "", *cpu_report(cpu)], args.output)


def cpu_report(cpu: dict[str, list[float]]) -> list[str]:
    rows = [
        [f"round {i + 1}", f"{plain:.1f}", f"{tls:.1f}", f"{tls / plain:.2f}×"]
        for i, (plain, tls) in enumerate(zip(cpu["nginx"], cpu["nginx+TLS"], strict=True))
    ]
    plain, tls = statistics.median(cpu["nginx"]), statistics.median(cpu["nginx+TLS"])
    rows.append(["median", f"{plain:.1f}", f"{tls:.1f}", f"{tls / plain:.2f}× (+{tls - plain:.1f} µs)"])
    header = ["GET hit, c32", "nginx µs CPU/request", "nginx with TLS µs CPU/request", "TLS ÷ plain"]
    return ["## nginx's CPU time per request", "", table(header, rows)]


def report(runs: dict[str, list[float]]) -> list[str]:
    ratios = [tls / plain for tls, plain in zip(runs["nginx+TLS"], runs["nginx"], strict=True)]
    rows = [
        [f"round {i + 1}", *(f"{runs[cell][i]:.0f}" for cell in CELLS), f"{ratio:.3f}×"]
        for i, ratio in enumerate(ratios)
    ]
    medians = {cell: statistics.median(values) for cell, values in runs.items()}
    rows.append(
        [
            "median",
            *(f"{medians[cell]:.0f}" for cell in CELLS),
            f"{medians['nginx+TLS'] / medians['nginx']:.3f}× (rounds {min(ratios):.3f}–{max(ratios):.3f})",
        ]
    )
    header = ["GET hit, c32", "direct req/s", "via nginx req/s", "via nginx with TLS req/s", "TLS ÷ plain via nginx"]
    return ["## GET through nginx with TLS ÷ without", "", table(header, rows)]


def nginx_version() -> str:
    nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    text = subprocess.run([nginx, "-v"], capture_output=True, text=True, timeout=10).stderr.strip()
    return text.replace("nginx version: ", "")


if __name__ == "__main__":
    main()
